"""ServiceNow Table API contract: exact requests, and how each kind of failure is handled."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import requests
import responses

from socialitsm.models import IncidentEvent, ItsmConnection, ItsmDelivery
from socialitsm.services.incidents import incident_update
from socialitsm.services.itsm_sync import itsm_link_pull, itsm_link_sync

from ..factories import ReplyFactory
from .conftest import DESCRIPTION, NOW, body, make_link

pytestmark = pytest.mark.django_db

BASE = "https://acme.service-now.com"
TABLE = f"{BASE}/api/now/table/incident"
SYS_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
FIELDS = "sys_id,number,state,sys_updated_on"
RECORD = {"sys_id": SYS_ID, "number": "INC0010042", "state": "1", "sys_updated_on": "2026-11-26 09:00:00"}
AUTH = "Basic " + base64.b64encode(b"social-desk:pa55").decode()


@pytest.fixture
def connection(suite_settings):
    return ItsmConnection.objects.create(
        name="ServiceNow",
        slug="snow",
        kind="servicenow",
        base_url=BASE,
        credentials={"username": "social-desk", "password": "pa55"},
        config={"contact_type": "social"},
        field_map={"groups": {"Network": "d625dccec0a8016700a222a0f7900d06"}},
    )


@pytest.fixture
def link(connection, incident):
    return make_link(connection, incident)


def lookup(mock, records):
    return mock.get(
        TABLE,
        match=[
            responses.matchers.query_param_matcher(
                {
                    "sysparm_query": "correlation_id=socialitsm:INC0001001",
                    "sysparm_fields": FIELDS,
                    "sysparm_limit": "1",
                }
            )
        ],
        json={"result": records},
    )


CREATE_BODY = {
    "short_description": "VPN down again",
    "description": f"{DESCRIPTION}\n\nSocialITSM INC0001001: https://social.example.com/incidents/INC0001001/",
    "impact": "2",
    "urgency": "1",
    "state": "1",
    "correlation_id": "socialitsm:INC0001001",
    "correlation_display": "SocialITSM",
    "contact_type": "social",
    "assignment_group": "d625dccec0a8016700a222a0f7900d06",
}


def test_create_looks_up_correlation_id_then_posts_the_incident(link, http_mock, frozen):
    lookup(http_mock, [])
    http_mock.post(TABLE, status=201, json={"result": RECORD})
    link = itsm_link_sync(link=link)
    assert [(c.request.method, c.request.url.split("?")[0]) for c in http_mock.calls] == [
        ("GET", TABLE),
        ("POST", TABLE),
    ]
    post = http_mock.calls[1]
    assert body(post) == CREATE_BODY
    assert post.request.headers["Authorization"] == AUTH
    assert post.request.params == {"sysparm_exclude_reference_link": "true", "sysparm_fields": FIELDS}
    assert (link.status, link.remote_id, link.remote_key, link.remote_state) == ("ok", SYS_ID, "INC0010042", "new")
    assert link.remote_url == f"{BASE}/nav_to.do?uri=incident.do?sys_id={SYS_ID}"
    assert link.last_synced_at == NOW
    event = IncidentEvent.objects.get(kind="itsm_linked")
    assert (event.new_value, event.message) == ("ServiceNow INC0010042", link.remote_url)


def test_auth_failure_fails_the_link_with_a_readable_error_and_creates_nothing(link, http_mock, frozen):
    http_mock.get(
        TABLE,
        status=401,
        json={"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"}},
    )
    link = itsm_link_sync(link=link)
    assert link.status == "failed"
    assert link.last_error.startswith("authentication refused (HTTP 401 from acme.service-now.com: ")
    assert "User Not Authenticated" in link.last_error
    assert [c.request.method for c in http_mock.calls] == ["GET"]
    assert IncidentEvent.objects.filter(kind="itsm_failed").count() == 1
    assert ItsmDelivery.objects.get().status == "failed"


def test_429_waits_for_retry_after_then_succeeds(link, http_mock, frozen):
    http_mock.get(
        TABLE,
        status=429,
        headers={"Retry-After": "120"},
        json={"error": {"message": "Rate limit exceeded"}, "status": "failure"},
    )
    link = itsm_link_sync(link=link)
    assert (link.status, link.attempts, link.next_attempt_at) == ("pending", 1, NOW + timedelta(seconds=120))
    assert "HTTP 429" in link.last_error and "retrying at 2026-11-26 09:02:00 UTC" in link.last_error
    http_mock.replace(responses.GET, TABLE, json={"result": []})
    http_mock.post(TABLE, status=201, json={"result": RECORD})
    frozen.shift(timedelta(seconds=120))
    link = itsm_link_sync(link=link)
    assert (link.status, link.attempts, link.last_error, link.next_attempt_at) == ("ok", 0, "", None)


def test_5xx_backs_off_exponentially_and_never_gives_up(link, http_mock, frozen):
    http_mock.get(TABLE, status=503, body="Service Unavailable")
    delays = []
    for _ in range(7):
        link = itsm_link_sync(link=link)
        delays.append((link.next_attempt_at - NOW).total_seconds())
    assert delays == [30, 60, 120, 240, 480, 900, 900]
    assert (link.status, link.attempts) == ("pending", 7)


def test_validation_error_fails_the_link_with_the_suite_message(link, http_mock, frozen):
    lookup(http_mock, [])
    http_mock.post(
        TABLE,
        status=400,
        json={"error": {"message": "Invalid value for field: impact", "detail": None}, "status": "failure"},
    )
    link = itsm_link_sync(link=link)
    assert link.status == "failed"
    assert "HTTP 400 from acme.service-now.com" in link.last_error
    assert "Invalid value for field: impact" in link.last_error


def test_create_that_timed_out_is_found_by_correlation_id_on_retry_not_created_twice(link, http_mock, frozen):
    lookup(http_mock, [])
    http_mock.post(TABLE, body=requests.exceptions.ReadTimeout("read timed out"))
    link = itsm_link_sync(link=link)
    assert (link.status, link.remote_id) == ("pending", "")
    assert link.last_error.startswith("timed out calling acme.service-now.com")
    # The first POST reached ServiceNow after all: the retry finds it and links it.
    http_mock.replace(responses.GET, TABLE, json={"result": [RECORD]})
    http_mock.patch(f"{TABLE}/{SYS_ID}", json={"result": RECORD})
    frozen.shift(timedelta(seconds=30))
    link = itsm_link_sync(link=link)
    assert (link.status, link.remote_id) == ("ok", SYS_ID)
    assert [c.request.method for c in http_mock.calls] == ["GET", "POST", "GET", "PATCH"]
    # A found record may predate later changes here, so every field but a matching state is sent once.
    assert body(http_mock.calls[3]) == {
        "short_description": "VPN down again",
        "impact": "2",
        "urgency": "1",
        "assignment_group": "d625dccec0a8016700a222a0f7900d06",
        "assigned_to": "",
    }
    assert list(ItsmDelivery.objects.values_list("action", "status", "detail")) == [
        ("create", "retrying", "timed out calling acme.service-now.com"),
        ("create", "ok", "found INC0010042 by socialitsm:INC0001001"),
        ("update", "ok", "short_description=VPN down again, impact=2, urgency=1, priority=2, group=Network, assignee="),
    ]


@pytest.fixture
def created(link, http_mock, frozen):
    lookup(http_mock, [])
    http_mock.post(TABLE, status=201, json={"result": RECORD})
    link = itsm_link_sync(link=link)
    http_mock.calls.reset()
    return link


def test_resolution_and_changes_go_out_as_one_patch(created, http_mock, agent):
    http_mock.patch(f"{TABLE}/{SYS_ID}", json={"result": {**RECORD, "state": "6"}})
    incident_update(incident=created.incident, actor=agent, short_description="VPN outage", urgency=2)
    incident_update(incident=created.incident, actor=agent, state="resolved")
    link = itsm_link_sync(link=created)
    assert link.status == "ok"
    assert [body(c) for c in http_mock.calls] == [
        {
            "short_description": "VPN outage",
            "urgency": "2",
            "state": "6",
            "close_code": "Solution provided",
            "close_notes": "Resolved in SocialITSM INC0001001.",
        }
    ]
    assert itsm_link_sync(link=link).status == "ok"
    assert len(http_mock.calls) == 1


def test_public_reply_is_a_comment_and_direct_message_a_work_note(created, http_mock, agent):
    http_mock.patch(f"{TABLE}/{SYS_ID}", json={"result": RECORD})
    public = ReplyFactory(incident=created.incident, agent=agent, text="We're on it", status="sent", sent_at=NOW)
    dm = ReplyFactory(
        incident=created.incident,
        post=public.post,
        agent=agent,
        visibility="direct",
        text="Which office?",
        status="sent",
        sent_at=NOW + timedelta(seconds=1),
    )
    ReplyFactory(incident=created.incident, post=public.post, text="not sent yet", status="queued")
    handle = public.post.author.handle
    itsm_link_sync(link=created)
    assert [body(c) for c in http_mock.calls] == [
        {"comments": f"Public reply by agent.anna to {handle} on Replay:\n\nWe're on it"},
        {"work_notes": f"Direct message by agent.anna to {handle} on Replay (private; internal note):\n\n{dm.text}"},
    ]
    itsm_link_sync(link=created)
    assert len(http_mock.calls) == 2


def test_pull_applies_the_suite_resolution(created, http_mock):
    http_mock.get(
        f"{TABLE}/{SYS_ID}", json={"result": {**RECORD, "state": "6", "sys_updated_on": "2026-11-26 09:10:00"}}
    )
    link = itsm_link_pull(link=created)
    created.incident.refresh_from_db()
    assert created.incident.state == "resolved"
    assert (link.remote_state, link.remote_status, link.remote_updated_at) == (
        "resolved",
        "6",
        NOW + timedelta(minutes=10),
    )
    assert itsm_link_sync(link=link).status == "ok"
    assert [c.request.method for c in http_mock.calls] == ["GET"]


def test_internal_note_is_a_work_note_sent_once(created, http_mock, agent):
    from socialitsm.services.notes import note_add

    http_mock.patch(f"{TABLE}/{SYS_ID}", json={"result": RECORD})
    note_add(incident=created.incident, author=agent, text="Caller is the CFO; keep it short.")
    itsm_link_sync(link=created)
    assert [body(c) for c in http_mock.calls] == [
        {"work_notes": "Internal note by agent.anna (not sent to the poster):\n\nCaller is the CFO; keep it short."}
    ]
    itsm_link_sync(link=created)
    assert len(http_mock.calls) == 1
