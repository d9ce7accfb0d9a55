"""Outbound webhook adapter: every audit event, signed, retried, logged; and the inbound endpoint."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import responses
from rest_framework.test import APIClient

from socialitsm.itsm.base import SIGNATURE_HEADER, sign
from socialitsm.models import IncidentEvent, ItsmConnection, ItsmDelivery
from socialitsm.services.events import event_record
from socialitsm.services.itsm_sync import itsm_link_sync

from .conftest import NOW, make_link

pytestmark = pytest.mark.django_db

HOOK = "https://hooks.example.com/itsm"


@pytest.fixture
def connection(suite_settings):
    return ItsmConnection.objects.create(
        name="Hook", slug="hook", kind="webhook", base_url=HOOK, credentials={"secret": "s3cret"}
    )


@pytest.fixture
def link(connection, incident, frozen):
    event_record(incident, IncidentEvent.Kind.OPENED, message="complaint score 0.91")
    return make_link(connection, incident)


def test_each_event_is_delivered_once_signed_with_the_incident_snapshot(link, http_mock, incident):
    http_mock.post(HOOK, status=204)
    link = itsm_link_sync(link=link)
    assert link.status == "ok"
    opened, linked = IncidentEvent.objects.order_by("pk")
    calls = http_mock.calls
    assert len(calls) == 2
    first = calls[0].request
    assert first.headers[SIGNATURE_HEADER] == sign("s3cret", first.body)
    assert first.headers["Idempotency-Key"] == f"hook:{opened.pk}"
    assert first.headers["X-SocialITSM-Event"] == "opened"
    assert json.loads(first.body) == {
        "id": opened.pk,
        "event": "opened",
        "occurred_at": "2026-11-26T09:00:00+00:00",
        "actor": None,
        "field": "",
        "old_value": "",
        "new_value": "",
        "message": "complaint score 0.91",
        "incident": {
            "number": "INC0001001",
            "short_description": "VPN down again",
            "state": "new",
            "impact": 2,
            "urgency": 1,
            "priority": 2,
            "service": "VPN",
            "assignment_group": "Network",
            "assignee": "",
            "opened_at": incident.opened_at.isoformat(),
            "resolved_at": None,
            "url": "https://social.example.com/incidents/INC0001001/",
        },
    }
    assert json.loads(calls[1].request.body)["event"] == "itsm_linked"
    assert linked.kind == "itsm_linked"
    itsm_link_sync(link=link)
    assert len(http_mock.calls) == 2


def test_any_event_kind_flows_out_without_code_changes(link, http_mock, incident):
    http_mock.post(HOOK, status=200)
    itsm_link_sync(link=link)
    IncidentEvent.objects.create(incident=incident, kind="sla_breached", message="resolution target missed")
    itsm_link_sync(link=link)
    body = json.loads(http_mock.calls[-1].request.body)
    assert (body["event"], body["message"]) == ("sla_breached", "resolution target missed")


def test_failed_delivery_is_retried_with_backoff_and_logged(link, http_mock, frozen):
    http_mock.post(HOOK, status=502)
    link = itsm_link_sync(link=link)
    assert (link.status, link.next_attempt_at) == ("pending", NOW + timedelta(seconds=30))
    delivery = ItsmDelivery.objects.get(action="event")
    assert (delivery.status, delivery.detail) == ("retrying", "HTTP 502")
    http_mock.replace(responses.POST, HOOK, status=200)
    frozen.shift(timedelta(seconds=30))
    link = itsm_link_sync(link=link)
    assert link.status == "ok"
    assert list(ItsmDelivery.objects.filter(action="event").values_list("status", "attempts")) == [("ok", 2), ("ok", 1)]


def test_receiver_refusal_fails_the_link(link, http_mock):
    http_mock.post(HOOK, status=410, body="gone")
    link = itsm_link_sync(link=link)
    assert (link.status, link.last_error) == ("failed", "HTTP 410 from hooks.example.com: gone")


# Inbound: a suite calls us.


@pytest.fixture
def fake_connection(db):
    return ItsmConnection.objects.create(
        name="Suite",
        slug="suite",
        kind="fake",
        base_url="https://suite.example.com",
        credentials={"webhook_secret": "inbound"},
    )


INBOUND_SECRET = "inbound"


def post_hook(payload: bytes, secret: str | None = INBOUND_SECRET, slug: str = "suite"):
    headers = {f"HTTP_{SIGNATURE_HEADER.upper().replace('-', '_')}": sign(secret, payload)} if secret else {}
    return APIClient().post(f"/api/v1/itsm/{slug}/webhook/", payload, content_type="application/json", **headers)


def test_inbound_webhook_pulls_the_named_record(
    fake_connection, incident, fake_suite, django_capture_on_commit_callbacks
):
    link = make_link(fake_connection, incident)
    itsm_link_sync(link=link)
    fake_suite.tickets["1"].status = "resolved"
    with django_capture_on_commit_callbacks(execute=True):
        response = post_hook(b'{"id": "1"}')
    assert (response.status_code, response.json()) == (202, {"incident": "INC0001001"})
    incident.refresh_from_db()
    assert incident.state == "resolved"
    with django_capture_on_commit_callbacks(execute=True):
        assert post_hook(b'{"id": "1"}').status_code == 202
    assert IncidentEvent.objects.filter(kind="changed", field="state").count() == 1


@pytest.mark.parametrize(
    ("payload", "secret", "slug", "status", "error"),
    [
        (b'{"id": "1"}', None, "suite", 401, "invalid_signature"),
        (b'{"id": "1"}', "wrong", "suite", 401, "invalid_signature"),
        (b'{"id": "1"}', "inbound", "nope", 401, "invalid_signature"),
        (b"not json", "inbound", "suite", 400, "invalid_json"),
        (b'{"status": "solved"}', "inbound", "suite", 400, "no_record"),
        (b'{"id": "999"}', "inbound", "suite", 404, "unknown_record"),
    ],
)
def test_inbound_webhook_refusals(fake_connection, fake_suite, payload, secret, slug, status, error):
    response = post_hook(payload, secret, slug)
    assert (response.status_code, response.json()["error"]) == (status, error)
    assert fake_suite.calls == []


def test_inbound_webhook_with_a_non_ascii_signature_is_refused(fake_connection, fake_suite):
    # HTTP headers arrive as latin-1: a signature with such characters is wrong, not a crash.
    response = APIClient().post(
        "/api/v1/itsm/suite/webhook/",
        b'{"id": "1"}',
        content_type="application/json",
        headers={SIGNATURE_HEADER: "sha256=\xe9t\xe9"},
    )
    assert (response.status_code, response.json()["error"]) == (401, "invalid_signature")
    assert fake_suite.calls == []


@pytest.mark.parametrize("remote_id", ["1\\u0000", "\\ud800", "9" * 129], ids=["nul", "lone-surrogate", "too-long"])
def test_inbound_webhook_naming_an_impossible_record_is_unknown(fake_connection, fake_suite, remote_id):
    # PostgreSQL refuses NUL and lone surrogates in a query: such ids are never linked.
    response = post_hook(f'{{"id": "{remote_id}"}}'.encode())
    assert (response.status_code, response.json()["error"]) == (404, "unknown_record")
    assert fake_suite.calls == []


@pytest.mark.parametrize(
    ("payload", "status", "error"),
    [
        (b"[1, 2]", 400, "no_record"),
        (b'"1"', 400, "no_record"),
        (b'{"id": {"nested": 1}}', 400, "no_record"),
        (b'{"id": true}', 400, "no_record"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "invalid_json"),
        (b"\xff\xfe{}", 400, "invalid_json"),
    ],
    ids=["list", "string", "object-id", "boolean-id", "deep", "not-utf8"],
)
def test_inbound_webhook_odd_bodies_are_clear_4xx(fake_connection, fake_suite, payload, status, error):
    response = post_hook(payload)
    assert (response.status_code, response.json()["error"]) == (status, error)
    assert fake_suite.calls == []


def test_inbound_webhook_too_large_body_is_413(fake_connection, fake_suite, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64
    response = post_hook(b'{"id": "1", "padding": "' + b"x" * 100 + b'"}')
    assert (response.status_code, response.json()["error"]) == (413, "too_large")
    assert fake_suite.calls == []


def test_inbound_webhook_without_a_configured_secret_is_refused(fake_connection):
    fake_connection.credentials = {}
    fake_connection.save()
    assert post_hook(b'{"id": "1"}', secret="").status_code == 401
