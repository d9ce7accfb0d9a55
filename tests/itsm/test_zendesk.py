"""Zendesk contract: exact requests, the idempotency key, and how each kind of failure is handled."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta

import pytest
import requests
import responses

from socialitsm.itsm import adapter_for
from socialitsm.models import ItsmConnection
from socialitsm.services.incidents import incident_update
from socialitsm.services.itsm_sync import itsm_link_pull, itsm_link_sync

from ..factories import ReplyFactory
from .conftest import DESCRIPTION, NOW, body, make_link

pytestmark = pytest.mark.django_db

BASE = "https://acme.zendesk.com"
TICKETS = f"{BASE}/api/v2/tickets"
TICKET = {
    "id": 4711,
    "url": f"{TICKETS}/4711.json",
    "external_id": "socialitsm:INC0001001",
    "status": "new",
    "priority": "high",
    "updated_at": "2026-11-26T09:00:00Z",
}
AUTH = "Basic " + base64.b64encode(b"desk@example.com/token:tok").decode()


@pytest.fixture
def connection(suite_settings):
    return ItsmConnection.objects.create(
        name="Zendesk",
        slug="zendesk",
        kind="zendesk",
        base_url=BASE,
        credentials={"email": "desk@example.com", "api_token": "tok", "webhook_secret": "whsec"},
        field_map={"groups": {"Network": "360001"}},
    )


@pytest.fixture
def link(connection, incident):
    return make_link(connection, incident)


def lookup(mock, tickets):
    return mock.get(
        TICKETS,
        match=[responses.matchers.query_param_matcher({"external_id": "socialitsm:INC0001001"})],
        json={"tickets": tickets, "count": len(tickets)},
    )


def test_create_looks_up_external_id_then_posts_with_an_idempotency_key(link, http_mock, frozen):
    lookup(http_mock, [])
    http_mock.post(TICKETS, status=201, json={"ticket": TICKET, "audit": {"id": 90001}})
    link = itsm_link_sync(link=link)
    create = http_mock.calls[1]
    assert body(create) == {
        "ticket": {
            "subject": "VPN down again",
            "comment": {
                "body": f"{DESCRIPTION}\n\nSocialITSM INC0001001: https://social.example.com/incidents/INC0001001/",
                "public": False,
            },
            "priority": "high",
            "type": "incident",
            "external_id": "socialitsm:INC0001001",
            "tags": ["socialitsm"],
            "group_id": 360001,
        }
    }
    assert create.request.headers["Idempotency-Key"] == str(link.idempotency_key)
    assert create.request.headers["Authorization"] == AUTH
    assert (link.status, link.remote_id, link.remote_key, link.remote_url) == (
        "ok",
        "4711",
        "#4711",
        f"{BASE}/agent/tickets/4711",
    )


def test_retry_after_a_timed_out_create_links_the_ticket_and_keeps_the_idempotency_key(link, http_mock, frozen):
    lookup(http_mock, [])
    http_mock.post(TICKETS, body=requests.exceptions.ReadTimeout("read timed out"))
    http_mock.post(TICKETS, status=201, json={"ticket": TICKET}, headers={"x-idempotency-lookup": "hit"})
    assert itsm_link_sync(link=link).status == "pending"
    # Zendesk's own search has not indexed it yet: the replayed key returns the original ticket.
    frozen.shift(timedelta(seconds=30))
    link = itsm_link_sync(link=link)
    assert (link.status, link.remote_id) == ("ok", "4711")
    posts = [c for c in http_mock.calls if c.request.method == "POST"]
    assert len(posts) == 2
    assert posts[0].request.headers["Idempotency-Key"] == posts[1].request.headers["Idempotency-Key"]
    assert posts[0].request.body == posts[1].request.body


def test_retry_finds_the_ticket_by_external_id(link, http_mock, frozen):
    lookup(http_mock, [])
    http_mock.post(TICKETS, body=requests.exceptions.ReadTimeout("read timed out"))
    itsm_link_sync(link=link)
    http_mock.replace(responses.GET, TICKETS, json={"tickets": [TICKET], "count": 1})
    http_mock.put(f"{TICKETS}/4711", json={"ticket": TICKET})
    frozen.shift(timedelta(seconds=30))
    link = itsm_link_sync(link=link)
    assert (link.status, link.remote_id) == ("ok", "4711")
    assert [c.request.method for c in http_mock.calls] == ["GET", "POST", "GET", "PUT"]
    assert body(http_mock.calls[3]) == {
        "ticket": {"subject": "VPN down again", "priority": "high", "group_id": 360001, "assignee_id": None}
    }


@pytest.mark.parametrize(
    ("status", "payload", "headers", "outcome", "error", "retry"),
    [
        (401, {"error": "Couldn't authenticate you"}, {}, "failed", "authentication refused (HTTP 401", None),
        (
            422,
            {
                "error": "RecordInvalid",
                "description": "Record validation errors",
                "details": {"subject": [{"description": "Subject: is too long"}]},
            },
            {},
            "failed",
            "Subject: is too long",
            None,
        ),
        (429, {"error": "TooManyRequests"}, {"Retry-After": "93"}, "pending", "HTTP 429", 93),
        (500, {"error": "InternalError"}, {}, "pending", "HTTP 500", 30),
    ],
)
def test_create_failures(link, http_mock, frozen, status, payload, headers, outcome, error, retry):
    lookup(http_mock, [])
    http_mock.post(TICKETS, status=status, json=payload, headers=headers)
    link = itsm_link_sync(link=link)
    assert (link.status, link.remote_id) == (outcome, "")
    assert error in link.last_error
    assert link.next_attempt_at == (NOW + timedelta(seconds=retry) if retry else None)


@pytest.fixture
def created(link, http_mock, frozen):
    lookup(http_mock, [])
    http_mock.post(TICKETS, status=201, json={"ticket": TICKET})
    link = itsm_link_sync(link=link)
    http_mock.calls.reset()
    return link


def test_changes_and_comments(created, http_mock, agent):
    http_mock.put(f"{TICKETS}/4711", json={"ticket": TICKET, "audit": {"id": 90101}})
    incident_update(incident=created.incident, actor=agent, state="on_hold", assignment_group=None)
    reply = ReplyFactory(incident=created.incident, agent=agent, text="Fixed now?", status="sent", sent_at=NOW)
    itsm_link_sync(link=created)
    assert [body(c) for c in http_mock.calls] == [
        {"ticket": {"status": "hold", "group_id": None}},
        {
            "ticket": {
                "comment": {
                    "body": f"Public reply by agent.anna to {reply.post.author.handle} on Replay:\n\nFixed now?",
                    "public": True,
                }
            }
        },
    ]
    assert created.deliveries.get(reply=reply).remote_ref == "90101"


def test_pull_solved_resolves_here(created, http_mock):
    http_mock.get(f"{TICKETS}/4711", json={"ticket": {**TICKET, "status": "solved"}})
    itsm_link_pull(link=created)
    created.incident.refresh_from_db()
    assert created.incident.state == "resolved"


def test_zendesk_signed_webhook_is_accepted(connection):
    adapter = adapter_for(connection)
    payload = b'{"ticket_id": "4711"}'
    signature = base64.b64encode(hmac.new(b"whsec", b"1732611600" + payload, hashlib.sha256).digest()).decode()
    headers = {"X-Zendesk-Webhook-Signature": signature, "X-Zendesk-Webhook-Signature-Timestamp": "1732611600"}
    assert adapter.webhook_signature_valid(headers, payload)
    assert not adapter.webhook_signature_valid(headers, b'{"ticket_id": "4712"}')
    assert adapter.webhook_remote_id({"ticket_id": "4711"}) == "4711"


def test_zendesk_webhook_signature_with_non_ascii_characters_is_refused(connection):
    adapter = adapter_for(connection)
    headers = {"X-Zendesk-Webhook-Signature": "sig\xe9", "X-Zendesk-Webhook-Signature-Timestamp": "17326\xe9"}
    assert not adapter.webhook_signature_valid(headers, b'{"ticket_id": "4711"}')


def test_internal_note_is_a_private_zendesk_comment(created, http_mock, agent):
    from socialitsm.services.notes import note_add

    http_mock.put(f"{TICKETS}/4711", json={"ticket": TICKET, "audit": {"id": 90102}})
    note_add(incident=created.incident, author=agent, text="Asked for their office by DM.")
    itsm_link_sync(link=created)
    assert [body(c) for c in http_mock.calls] == [
        {
            "ticket": {
                "comment": {
                    "body": "Internal note by agent.anna (not sent to the poster):\n\nAsked for their office by DM.",
                    "public": False,
                }
            }
        }
    ]
