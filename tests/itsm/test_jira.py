"""Jira Service Management contract: exact requests, and how each kind of failure is handled."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import requests
import responses

from socialitsm.models import ItsmConnection
from socialitsm.services.incidents import incident_update
from socialitsm.services.itsm_sync import itsm_link_pull, itsm_link_sync

from ..factories import ReplyFactory, UserFactory
from .conftest import DESCRIPTION, NOW, body, make_link

pytestmark = pytest.mark.django_db

BASE = "https://acme.atlassian.net"
SEARCH = f"{BASE}/rest/api/3/search/jql"
REQUEST = f"{BASE}/rest/servicedeskapi/request"
ISSUE = f"{BASE}/rest/api/3/issue/10542"
CREATED = {
    "issueId": "10542",
    "issueKey": "ITSUP-231",
    "requestTypeId": "17",
    "serviceDeskId": "4",
    "currentStatus": {"status": "Waiting for support", "statusCategory": "NEW"},
    "_links": {"web": f"{BASE}/servicedesk/customer/portal/4/ITSUP-231"},
}
FOUND = {
    "id": "10542",
    "key": "ITSUP-231",
    "fields": {"status": {"name": "Waiting for support"}, "updated": "2026-11-26T09:00:00.000+0000"},
}
AUTH = "Basic " + base64.b64encode(b"desk@example.com:tok").decode()
SEARCH_BODY = {"jql": 'labels = "socialitsm:INC0001001"', "fields": ["status", "updated"], "maxResults": 1}


@pytest.fixture
def connection(suite_settings):
    return ItsmConnection.objects.create(
        name="JSM",
        slug="jsm",
        kind="jira",
        base_url=BASE,
        credentials={"email": "desk@example.com", "api_token": "tok"},
        config={"service_desk_id": "4", "request_type_id": "17"},
        field_map={"users": {"agent.anna": "557058:agent-0001"}},
    )


@pytest.fixture
def link(connection, incident):
    return make_link(connection, incident)


def test_create_searches_the_label_then_raises_the_request(link, http_mock, frozen):
    http_mock.post(SEARCH, json={"issues": [], "isLast": True})
    http_mock.post(REQUEST, status=201, json=CREATED)
    link = itsm_link_sync(link=link)
    assert [body(c) for c in http_mock.calls] == [
        SEARCH_BODY,
        {
            "serviceDeskId": "4",
            "requestTypeId": "17",
            "requestFieldValues": {
                "summary": "VPN down again",
                "description": f"{DESCRIPTION}\n\nSocialITSM INC0001001: https://social.example.com/incidents/INC0001001/",
                "priority": {"name": "High"},
                "labels": ["socialitsm:INC0001001"],
            },
        },
    ]
    assert http_mock.calls[1].request.headers["Authorization"] == AUTH
    assert (link.status, link.remote_id, link.remote_key, link.remote_url) == (
        "ok",
        "10542",
        "ITSUP-231",
        f"{BASE}/browse/ITSUP-231",
    )
    assert link.remote_state == "new"


@pytest.mark.parametrize(
    ("status", "payload", "outcome", "error"),
    [
        (401, {"errorMessage": "Client must be authenticated"}, "failed", "authentication refused (HTTP 401"),
        (403, {"errorMessage": "You do not have permission"}, "failed", "authentication refused (HTTP 403"),
        (400, {"errorMessage": "Field 'summary' is required"}, "failed", "Field 'summary' is required"),
        (503, {"errorMessage": "unavailable"}, "pending", "HTTP 503 from acme.atlassian.net"),
    ],
)
def test_create_failures(link, http_mock, frozen, status, payload, outcome, error):
    http_mock.post(SEARCH, json={"issues": []})
    http_mock.post(REQUEST, status=status, json=payload)
    link = itsm_link_sync(link=link)
    assert (link.status, link.remote_id) == (outcome, "")
    assert error in link.last_error
    assert link.next_attempt_at == (NOW + timedelta(seconds=30) if outcome == "pending" else None)


def test_429_with_retry_after_is_honoured(link, http_mock, frozen):
    http_mock.post(SEARCH, status=429, headers={"Retry-After": "7"}, json={})
    link = itsm_link_sync(link=link)
    assert (link.status, link.next_attempt_at) == ("pending", NOW + timedelta(seconds=7))
    assert len(http_mock.calls) == 1


def test_create_that_timed_out_is_found_by_label_on_retry(link, http_mock, frozen):
    http_mock.post(SEARCH, json={"issues": []})
    http_mock.post(REQUEST, body=requests.exceptions.ConnectTimeout("connect timed out"))
    assert itsm_link_sync(link=link).status == "pending"
    http_mock.replace(responses.POST, SEARCH, json={"issues": [FOUND], "isLast": True})
    http_mock.put(ISSUE, status=204)
    frozen.shift(timedelta(seconds=30))
    link = itsm_link_sync(link=link)
    assert (link.status, link.remote_id, link.remote_key) == ("ok", "10542", "ITSUP-231")
    assert [(c.request.method, c.request.url) for c in http_mock.calls] == [
        ("POST", SEARCH),
        ("POST", REQUEST),
        ("POST", SEARCH),
        ("PUT", ISSUE),
    ]
    assert body(http_mock.calls[3]) == {
        "fields": {"summary": "VPN down again", "priority": {"name": "High"}, "assignee": None}
    }


@pytest.fixture
def created(link, http_mock, frozen):
    http_mock.post(SEARCH, json={"issues": []})
    http_mock.post(REQUEST, status=201, json=CREATED)
    link = itsm_link_sync(link=link)
    http_mock.calls.reset()
    return link


def test_state_moves_by_the_transition_leading_to_the_mapped_status(created, http_mock, agent):
    anna = UserFactory(username="agent.anna")
    http_mock.put(ISSUE, status=204)
    http_mock.get(
        f"{ISSUE}/transitions",
        json={
            "transitions": [
                {"id": "21", "name": "Start", "to": {"name": "Work in progress"}},
                {"id": "31", "name": "Resolve this issue", "to": {"name": "Resolved"}},
            ]
        },
    )
    http_mock.post(f"{ISSUE}/transitions", status=204)
    incident_update(incident=created.incident, actor=agent, state="resolved", impact=1, assignee=anna)
    link = itsm_link_sync(link=created)
    assert link.status == "ok"
    assert [(c.request.method, c.request.url) for c in http_mock.calls] == [
        ("PUT", ISSUE),
        ("GET", f"{ISSUE}/transitions"),
        ("POST", f"{ISSUE}/transitions"),
    ]
    assert body(http_mock.calls[0]) == {
        "fields": {"priority": {"name": "Highest"}, "assignee": {"accountId": "557058:agent-0001"}}
    }
    assert body(http_mock.calls[2]) == {"transition": {"id": "31"}}


def test_missing_transition_fails_with_the_available_ones(created, http_mock, agent):
    http_mock.get(f"{ISSUE}/transitions", json={"transitions": [{"id": "21", "to": {"name": "Work in progress"}}]})
    http_mock.get(ISSUE, json=FOUND)
    incident_update(incident=created.incident, actor=agent, state="on_hold")
    link = itsm_link_sync(link=created)
    assert link.status == "failed"
    assert link.last_error == "Jira offers no transition of 10542 to 'Pending' (available: Work in progress)"


def test_comments_use_the_jsm_public_flag(created, http_mock, agent):
    http_mock.post(f"{REQUEST}/10542/comment", status=201, json={"id": "1001", "public": True})
    reply = ReplyFactory(incident=created.incident, agent=agent, text="Fixed?", visibility="direct", status="sent")
    itsm_link_sync(link=created)
    handle = reply.post.author.handle
    assert [body(c) for c in http_mock.calls] == [
        {
            "body": f"Direct message by agent.anna to {handle} on Replay (private; internal note):\n\nFixed?",
            "public": False,
        }
    ]
    assert created.deliveries.get(reply=reply).remote_ref == "1001"


def test_pull_maps_the_status_name(created, http_mock):
    http_mock.get(
        ISSUE,
        match=[responses.matchers.query_param_matcher({"fields": "status,updated"})],
        json={**FOUND, "fields": {"status": {"name": "Resolved"}, "updated": "2026-11-26T09:30:00.000+0000"}},
    )
    link = itsm_link_pull(link=created)
    created.incident.refresh_from_db()
    assert (created.incident.state, link.remote_status) == ("resolved", "Resolved")
    assert link.remote_updated_at == NOW + timedelta(minutes=30)


def test_internal_note_is_a_non_public_jsm_comment(created, http_mock, agent):
    from socialitsm.services.notes import note_add

    http_mock.post(f"{REQUEST}/10542/comment", status=201, json={"id": "1002", "public": False})
    note = note_add(incident=created.incident, author=agent, text="Network team is on the VPN concentrator.")
    itsm_link_sync(link=created)
    assert [body(c) for c in http_mock.calls] == [
        {
            "body": "Internal note by agent.anna (not sent to the poster):\n\nNetwork team is on the VPN concentrator.",
            "public": False,
        }
    ]
    assert created.deliveries.get(event__new_value=f"note {note.pk}").remote_ref == "1002"
