"""Odd answers from ITSM suites, floods of unsigned or badly signed calls, and forged client
addresses: each is refused or recorded, never silently kept pending or counted against others."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import responses
import time_machine
from django.core.cache import caches
from rest_framework.test import APIClient

from socialitsm import ratelimit
from socialitsm.connectors.webhook import sign
from socialitsm.models import IncidentEvent, ItsmConnection, ItsmDelivery, ItsmLink, Post
from socialitsm.services.itsm_sync import itsm_link_pull, itsm_link_sync

from ..factories import ChannelFactory, IncidentFactory, WatchRuleFactory
from ..itsm.conftest import NOW, make_link

# -- ITSM: every answer mapped to the error contract -------------------------------------------------

BASE = "https://suite.example.com"
SUITES = {
    "rt": {
        "credentials": {"token": "tok"},
        "config": {"queue": "Social"},
        "find": ("GET", f"{BASE}/REST/2.0/tickets"),
        "fetch": ("GET", f"{BASE}/REST/2.0/ticket/42"),
        "no_id": {"items": [{"Status": "new"}]},
    },
    "jira": {
        "credentials": {"email": "desk@example.com", "api_token": "tok"},
        "config": {"service_desk_id": "1", "request_type_id": "2"},
        "find": ("POST", f"{BASE}/rest/api/3/search/jql"),
        "fetch": ("GET", f"{BASE}/rest/api/3/issue/42"),
        "no_id": {"issues": [{"key": "SUP-1"}]},
    },
    "zendesk": {
        "credentials": {"email": "desk@example.com", "api_token": "tok"},
        "config": {},
        "find": ("GET", f"{BASE}/api/v2/tickets"),
        "fetch": ("GET", f"{BASE}/api/v2/tickets/42"),
        "no_id": {"tickets": [{"status": "new"}]},
    },
    "servicenow": {
        "credentials": {"username": "svc", "password": "pw"},
        "config": {},
        "find": ("GET", f"{BASE}/api/now/table/incident"),
        "fetch": ("GET", f"{BASE}/api/now/table/incident/42"),
        "no_id": {"result": [{"number": "INC0010001"}]},
    },
}
LOGIN_PAGE = "<!DOCTYPE html><html><head><title>Sign in</title></head><body>Sign in to continue</body></html>"
# (name, answer for responses, link status, the words the stored error carries)
ANSWERS = [
    ("html_200", {"status": 200, "body": LOGIN_PAGE, "content_type": "text/html"}, "failed", "text/html, not JSON"),
    ("plain_200", {"status": 200, "body": "OK", "content_type": "text/plain"}, "failed", "text/plain, not JSON"),
    ("empty_200", {"status": 200, "body": ""}, "failed", "with an empty body where JSON was expected"),
    ("json_list", {"status": 200, "json": ["a", "b"]}, "failed", "JSON of an unexpected shape (list)"),
    ("json_string", {"status": 200, "json": "ok"}, "failed", "JSON of an unexpected shape (str)"),
    ("moved_301", {"status": 301, "headers": {"Location": "https://new.example.com/"}}, "failed", "HTTP 301"),
    ("found_302", {"status": 302, "headers": {"Location": "https://sso.example.com/login"}}, "failed", "HTTP 302"),
    ("temp_307", {"status": 307, "headers": {"Location": "https://other.example.com/"}}, "failed", "HTTP 307"),
    ("bad_gateway_502", {"status": 502, "body": "<html>Bad Gateway</html>"}, "pending", "HTTP 502"),
    ("unavailable_503_empty", {"status": 503, "body": ""}, "pending", "HTTP 503"),
]


@pytest.fixture
def incident(db):
    return IncidentFactory(number="INC0001001", short_description="VPN down again")


def _connection(kind: str) -> ItsmConnection:
    suite = SUITES[kind]
    return ItsmConnection.objects.create(
        name=kind.title(),
        slug=kind,
        kind=kind,
        base_url=BASE,
        credentials=suite["credentials"],
        config=suite["config"],
    )


def _answer(mock: responses.RequestsMock, method: str, url: str, answer: dict) -> None:
    mock.add(method, url, **answer)


def _assert_recorded(link: ItsmLink, status: str, words: str) -> None:
    link.refresh_from_db()
    assert (link.status, link.lease_until, link.attempts, link.remote_id) == (status, None, 1, "")
    assert words in link.last_error
    assert link.last_error_at == NOW
    if status == "pending":
        assert link.next_attempt_at == NOW + timedelta(seconds=30)
        assert not IncidentEvent.objects.filter(kind="itsm_failed").exists()
    else:
        assert link.next_attempt_at is None
        assert IncidentEvent.objects.filter(kind="itsm_failed").count() == 1


@pytest.mark.parametrize("kind", sorted(SUITES))
@pytest.mark.parametrize(("name", "answer", "status", "words"), ANSWERS, ids=[a[0] for a in ANSWERS])
def test_odd_answer_to_the_lookup_is_recorded_on_the_link(
    kind, name, answer, status, words, suite_settings, incident, http_mock, clock
):
    link = make_link(_connection(kind), incident)
    method, url = SUITES[kind]["find"]
    _answer(http_mock, method, url, answer)
    itsm_link_sync(link=link)
    _assert_recorded(link, status, words)
    # The lookup was the only call: nothing was created on the strength of an answer not understood.
    assert len(http_mock.calls) == 1
    delivery = ItsmDelivery.objects.get(link=link)
    assert (delivery.action, delivery.status) == ("create", "retrying" if status == "pending" else "failed")
    assert words in delivery.detail


@pytest.mark.parametrize("kind", sorted(SUITES))
def test_a_record_without_an_id_is_a_readable_permanent_error(kind, suite_settings, incident, http_mock, clock):
    link = make_link(_connection(kind), incident)
    method, url = SUITES[kind]["find"]
    http_mock.add(method, url, json=SUITES[kind]["no_id"])
    itsm_link_sync(link=link)
    _assert_recorded(link, "failed", f"{kind} answered in a shape this adapter cannot read (KeyError:")


@pytest.mark.parametrize("kind", sorted(SUITES))
@pytest.mark.parametrize(("name", "answer", "status", "words"), ANSWERS, ids=[a[0] for a in ANSWERS])
def test_odd_answer_to_a_pull_is_recorded_on_the_link(
    kind, name, answer, status, words, suite_settings, incident, http_mock, clock
):
    link = make_link(_connection(kind), incident)
    ItsmLink.objects.filter(pk=link.pk).update(remote_id="42", status="ok")
    method, url = SUITES[kind]["fetch"]
    _answer(http_mock, method, url, answer)
    itsm_link_pull(link=link)
    link.refresh_from_db()
    assert (link.status, link.lease_until, link.attempts) == (status, None, 1)
    assert words in link.last_error
    assert link.remote_status == ""


def test_a_redirect_names_its_target_and_is_not_followed(suite_settings, incident, http_mock, clock):
    link = make_link(_connection("rt"), incident)
    http_mock.get(f"{BASE}/REST/2.0/tickets", status=302, headers={"Location": "https://sso.example.com/login"})
    sso = http_mock.get("https://sso.example.com/login", body=LOGIN_PAGE, content_type="text/html")
    itsm_link_sync(link=link)
    link.refresh_from_db()
    assert link.last_error == (
        "rt answered HTTP 302 from suite.example.com, redirecting to https://sso.example.com/login: API calls do "
        "not follow redirects; set the connection's base URL to the suite's API address"
    )
    assert sso.call_count == 0


@pytest.mark.parametrize(
    ("answer", "status", "words"),
    [
        ({"status": 200, "body": LOGIN_PAGE, "content_type": "text/html"}, "ok", ""),
        ({"status": 302, "headers": {"Location": "https://elsewhere.example.com/"}}, "failed", "HTTP 302"),
        ({"status": 502}, "pending", "HTTP 502"),
    ],
    ids=["html_200_is_delivered", "redirect_fails", "502_retries"],
)
def test_outbound_webhook_answers(answer, status, words, suite_settings, incident, http_mock, clock):
    connection = ItsmConnection.objects.create(
        name="Hook", slug="hook", kind="webhook", base_url=f"{BASE}/hook", credentials={"secret": "s3cret"}
    )
    link = make_link(connection, incident)
    http_mock.add("POST", f"{BASE}/hook", **answer)
    itsm_link_sync(link=link)
    link.refresh_from_db()
    assert (link.status, link.lease_until) == (status, None)
    assert words in link.last_error
    assert link.attempts == (0 if status == "ok" else 1)


# -- Signed endpoints: floods never use up a channel's bucket -----------------------------------------

SECRET = "whsec-example-0123456789"
INGEST = "/api/v1/ingest/status-hook/"
ITSM_HOOK = "/api/v1/itsm/suite/webhook/"
ATTACKER = "203.0.113.9"
SENDER = "198.51.100.7"
# 30 seconds into a minute: a one-minute window ends 30 seconds later.
FLOOD_NOW = NOW + timedelta(seconds=30)


@pytest.fixture
def limits(settings):
    caches["throttle"].clear()
    settings.SOCIALITSM_THROTTLE_RATES = {"ingest": "3/minute", "ingest_refused": "5/minute"}
    with time_machine.travel(FLOOD_NOW, tick=False) as traveller:
        yield traveller
    caches["throttle"].clear()


@pytest.fixture
def channel(db):
    channel = ChannelFactory(slug="status-hook", network="webhook", config={}, credentials={"secret": SECRET})
    WatchRuleFactory(channel=channel, name="Everything", query="")
    return channel


def one_post(n: int) -> bytes:
    return json.dumps(
        {
            "id": f"p-{n}",
            "text": "VPN down again",
            "created_at": "2026-11-26T08:15:00Z",
            "author": {"id": "u-17", "handle": "@maria"},
        }
    ).encode()


def send(url: str, body: bytes, *, address: str, signature: str | None = None, **extra: str):
    headers = {"HTTP_X_SOCIALITSM_SIGNATURE": signature} if signature is not None else {}
    return APIClient().post(url, body, content_type="application/json", REMOTE_ADDR=address, **headers, **extra)


# (name, url, body, signature) of calls refused for their signature
REFUSED = [
    ("no_signature", INGEST, one_post(0), None),
    ("wrong_signature", INGEST, one_post(0), sign("not-the-secret", one_post(0))),
    ("garbage_signature", INGEST, one_post(0), "sha256=zz"),
    ("unknown_channel", "/api/v1/ingest/nope/", one_post(0), sign(SECRET, one_post(0))),
    ("signature_of_another_body", INGEST, one_post(0), sign(SECRET, one_post(1))),
]


@pytest.mark.parametrize(("name", "url", "payload", "signature"), REFUSED, ids=[r[0] for r in REFUSED])
def test_an_unsigned_flood_is_throttled_per_address_and_leaves_the_channel_alone(
    name, url, payload, signature, limits, channel
):
    flood = [send(url, payload, address=ATTACKER, signature=signature) for _ in range(8)]

    assert [r.status_code for r in flood] == [401] * 5 + [429] * 3
    assert flood[-1].headers["Retry-After"] == "30"
    assert flood[-1].json() == {"error": "throttled", "detail": "Too many calls; try again in 30 seconds."}
    # The sender with the secret still has the channel's whole bucket.
    signed = [send(INGEST, one_post(n), address=SENDER, signature=sign(SECRET, one_post(n))) for n in range(4)]
    assert [r.status_code for r in signed] == [202, 202, 202, 429]
    assert Post.objects.count() == 3


def test_rotating_x_forwarded_for_does_not_escape_the_refused_limit(limits, channel):
    flood = [
        send(INGEST, one_post(0), address=ATTACKER, signature="sha256=00", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
        for n in range(8)
    ]
    assert [r.status_code for r in flood] == [401] * 5 + [429] * 3


def test_a_throttled_address_is_refused_before_its_body_is_read(limits, channel):
    for _ in range(5):
        send(INGEST, one_post(0), address=ATTACKER)
    # Even correctly signed, the address waits out its refused calls; nothing is stored.
    response = send(INGEST, one_post(1), address=ATTACKER, signature=sign(SECRET, one_post(1)))
    assert (response.status_code, response.headers["Retry-After"]) == (429, "30")
    assert Post.objects.count() == 0
    limits.shift(timedelta(seconds=30))
    response = send(INGEST, one_post(1), address=ATTACKER, signature=sign(SECRET, one_post(1)))
    assert response.status_code == 202


def test_too_large_bodies_count_as_refused(limits, channel, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    big = b'{"id": "' + b"x" * 200 + b'"}'
    statuses = [send(INGEST, big, address=ATTACKER, signature=sign(SECRET, big)).status_code for _ in range(7)]
    assert statuses == [413] * 5 + [429] * 2


def test_itsm_webhook_floods_are_throttled_per_address_and_signed_calls_per_connection(limits, db):
    connection = ItsmConnection.objects.create(
        name="Suite", slug="suite", kind="fake", base_url=BASE, credentials={"webhook_secret": "inbound"}
    )
    body = b'{"id": "4711"}'
    flood = [send(ITSM_HOOK, body, address=ATTACKER, signature="sha256=00").status_code for _ in range(7)]
    assert flood == [401] * 5 + [429] * 2
    signed = [send(ITSM_HOOK, body, address=SENDER, signature=sign("inbound", body)) for _ in range(4)]
    # No incident is linked to 4711: answered 404 three times, then the connection's bucket is used up.
    assert [r.status_code for r in signed] == [404, 404, 404, 429]
    assert signed[-1].json()["error"] == "throttled"
    assert connection.links.count() == 0


@pytest.mark.redis
def test_the_channel_bucket_is_shared_by_processes_in_redis(limits, channel, monkeypatch, settings):
    """Two web processes, each with its own Redis client, count against one bucket."""
    from django.core.cache.backends.redis import RedisCache

    processes = [RedisCache(settings.CELERY_BROKER_URL, {"KEY_PREFIX": "socialitsm-test"}) for _ in range(2)]
    processes[0].clear()
    turn = iter(range(100))
    monkeypatch.setattr(ratelimit, "throttle_cache", lambda: processes[next(turn) % 2])

    signed = [send(INGEST, one_post(n), address=SENDER, signature=sign(SECRET, one_post(n))) for n in range(4)]

    assert [r.status_code for r in signed] == [202, 202, 202, 429]
    processes[0].clear()
