"""Major incidents in each suite: how a child's record is tied to its major incident's record,
with the exact requests, and what a retry or a refusal does."""

from __future__ import annotations

import base64

import pytest
import responses

from socialitsm.models import Incident, ItsmConnection, ItsmLink
from socialitsm.services.itsm_sync import itsm_link_sync

from ..factories import IncidentFactory
from .conftest import body, synced_link

pytestmark = pytest.mark.django_db


@pytest.fixture
def major(db) -> Incident:
    return IncidentFactory(number="INC0001000", short_description="Mail down for everyone", is_major=True)


@pytest.fixture
def child(incident, major) -> Incident:
    incident.parent = major
    incident.save(update_fields=["parent"])
    return incident


def _calls(mock) -> list[tuple[str, str]]:
    return [(call.request.method, call.request.url) for call in mock.calls]


# -- ServiceNow: parent_incident on the child --------------------------------------------------

SNOW = "https://acme.service-now.com/api/now/table/incident"
SNOW_PARENT = "9d385017c611228701d22104cc95c371"
SNOW_CHILD = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
SNOW_PARAMS = {
    "sysparm_fields": "sys_id,number,state,sys_updated_on,parent_incident",
    "sysparm_exclude_reference_link": "true",
}


@pytest.fixture
def servicenow(suite_settings) -> ItsmConnection:
    return ItsmConnection.objects.create(
        name="ServiceNow",
        slug="snow",
        kind="servicenow",
        base_url="https://acme.service-now.com",
        credentials={"username": "social-desk", "password": "pa55"},
    )


def _snow_record(parent: str) -> dict:
    return {
        "result": {
            "sys_id": SNOW_CHILD,
            "number": "INC0010042",
            "state": "1",
            "sys_updated_on": "2026-11-26 09:00:00",
            "parent_incident": parent,
        }
    }


def test_servicenow_child_points_at_its_major_incident(servicenow, child, major, http_mock, frozen):
    synced_link(servicenow, major, SNOW_PARENT, major=True)
    link = synced_link(servicenow, child, SNOW_CHILD)
    patch = http_mock.patch(
        f"{SNOW}/{SNOW_CHILD}",
        match=[responses.matchers.query_param_matcher(SNOW_PARAMS)],
        json=_snow_record(SNOW_PARENT),
    )
    link = itsm_link_sync(link=link)
    assert body(patch.calls[0]) == {"parent_incident": SNOW_PARENT}
    assert patch.calls[0].request.headers["Authorization"] == "Basic " + base64.b64encode(b"social-desk:pa55").decode()
    assert (link.status, link.pushed["parent"], len(http_mock.calls)) == ("ok", SNOW_PARENT, 1)
    # Nothing is sent again.
    itsm_link_sync(link=link)
    assert len(http_mock.calls) == 1


def test_servicenow_child_taken_out_has_its_parent_cleared(servicenow, incident, major, http_mock, frozen):
    synced_link(servicenow, major, SNOW_PARENT, major=True)
    link = synced_link(servicenow, incident, SNOW_CHILD, parent=SNOW_PARENT)
    patch = http_mock.patch(f"{SNOW}/{SNOW_CHILD}", json=_snow_record(""))
    link = itsm_link_sync(link=link)
    assert body(patch.calls[0]) == {"parent_incident": ""}
    assert (link.status, link.pushed["parent"]) == ("ok", "")


def test_servicenow_parent_it_cannot_resolve_fails_the_link(servicenow, child, major, http_mock, frozen):
    synced_link(servicenow, major, SNOW_PARENT, major=True)
    link = synced_link(servicenow, child, SNOW_CHILD)
    http_mock.patch(f"{SNOW}/{SNOW_CHILD}", json=_snow_record(""))
    link = itsm_link_sync(link=link)
    assert (link.status, link.last_error) == (
        "failed",
        f"ServiceNow kept parent_incident '' on {SNOW_CHILD} instead of '{SNOW_PARENT}': "
        "is the parent record readable by the integration user?",
    )
    assert "parent" not in link.pushed


def test_servicenow_major_incident_needs_no_mark(servicenow, major, http_mock, frozen):
    link = itsm_link_sync(link=synced_link(servicenow, major, SNOW_PARENT))
    assert (link.status, link.pushed["major"], len(http_mock.calls)) == ("ok", True, 0)


# -- Jira: an issue link -----------------------------------------------------------------------

JIRA = "https://acme.atlassian.net/rest/api/3"


@pytest.fixture
def jira(suite_settings) -> ItsmConnection:
    return ItsmConnection.objects.create(
        name="Jira",
        slug="jira",
        kind="jira",
        base_url="https://acme.atlassian.net",
        credentials={"email": "desk@example.com", "api_token": "tok"},
        config={"service_desk_id": "4", "request_type_id": "17", "parent_link_type": "Problem/Incident"},
    )


def _issue_links(*links: dict) -> dict:
    return {"id": "10542", "key": "ITSUP-42", "fields": {"issuelinks": list(links)}}


def _jira_link(link_id: str, kind: str, side: str, issue_id: str) -> dict:
    return {
        "id": link_id,
        "type": {"id": "10003", "name": kind, "inward": "is caused by", "outward": "causes"},
        side: {"id": issue_id, "key": f"ITSUP-{issue_id[-2:]}", "fields": {"summary": "x"}},
    }


def _jira_issue_get(mock, answer: dict) -> None:
    mock.get(
        f"{JIRA}/issue/10542", match=[responses.matchers.query_param_matcher({"fields": "issuelinks"})], json=answer
    )


def test_jira_child_is_linked_to_its_major_incident(jira, child, major, http_mock, frozen):
    synced_link(jira, major, "10500", major=True)
    link = synced_link(jira, child, "10542")
    _jira_issue_get(http_mock, _issue_links(_jira_link("20001", "Relates", "outwardIssue", "10777")))
    create = http_mock.post(f"{JIRA}/issueLink", status=201, body="")
    link = itsm_link_sync(link=link)
    assert body(create.calls[0]) == {
        "type": {"name": "Problem/Incident"},
        "outwardIssue": {"id": "10500"},
        "inwardIssue": {"id": "10542"},
    }
    assert (link.status, link.pushed["parent"]) == ("ok", "10500")


def test_jira_link_already_there_is_not_made_twice(jira, child, major, http_mock, frozen):
    """A retry after an answer that was lost: the link made the first time is found."""
    synced_link(jira, major, "10500", major=True)
    link = synced_link(jira, child, "10542")
    _jira_issue_get(http_mock, _issue_links(_jira_link("20002", "Problem/Incident", "outwardIssue", "10500")))
    link = itsm_link_sync(link=link)
    assert _calls(http_mock) == [("GET", f"{JIRA}/issue/10542?fields=issuelinks")]
    assert (link.status, link.pushed["parent"]) == ("ok", "10500")


def test_jira_inward_side_and_default_type(jira, child, major, http_mock, frozen):
    jira.config = {"service_desk_id": "4", "request_type_id": "17", "parent_link_side": "inward"}
    jira.save()
    synced_link(jira, major, "10500", major=True)
    link = synced_link(jira, child, "10542")
    _jira_issue_get(http_mock, _issue_links())
    create = http_mock.post(f"{JIRA}/issueLink", status=201, body="")
    itsm_link_sync(link=link)
    assert body(create.calls[0]) == {
        "type": {"name": "Relates"},
        "outwardIssue": {"id": "10542"},
        "inwardIssue": {"id": "10500"},
    }


def test_jira_child_taken_out_has_only_our_link_deleted(jira, incident, major, http_mock, frozen):
    synced_link(jira, major, "10500", major=True)
    link = synced_link(jira, incident, "10542", parent="10500")
    _jira_issue_get(
        http_mock,
        _issue_links(
            _jira_link("20002", "Problem/Incident", "inwardIssue", "10500"),
            _jira_link("20003", "Relates", "outwardIssue", "10500"),
            _jira_link("20004", "Problem/Incident", "outwardIssue", "10601"),
        ),
    )
    http_mock.delete(f"{JIRA}/issueLink/20002", status=204)
    link = itsm_link_sync(link=link)
    assert _calls(http_mock) == [
        ("GET", f"{JIRA}/issue/10542?fields=issuelinks"),
        ("DELETE", f"{JIRA}/issueLink/20002"),
    ]
    assert (link.status, link.pushed["parent"]) == ("ok", "")


def test_jira_refused_link_type_fails_the_link_with_jiras_words(jira, child, major, http_mock, frozen):
    synced_link(jira, major, "10500", major=True)
    link = synced_link(jira, child, "10542")
    _jira_issue_get(http_mock, _issue_links())
    http_mock.post(
        f"{JIRA}/issueLink",
        status=404,
        json={"errorMessages": ["No issue link type with name 'Problem/Incident' found."], "errors": {}},
    )
    link = itsm_link_sync(link=link)
    assert link.status == "failed"
    assert "No issue link type with name 'Problem/Incident' found." in link.last_error


# -- Zendesk: problem and incident tickets ----------------------------------------------------

ZENDESK = "https://acme.zendesk.com/api/v2/tickets"


@pytest.fixture
def zendesk(suite_settings) -> ItsmConnection:
    return ItsmConnection.objects.create(
        name="Zendesk",
        slug="zendesk",
        kind="zendesk",
        base_url="https://acme.zendesk.com",
        credentials={"email": "desk@example.com", "api_token": "tok"},
    )


def _zendesk_ticket(ticket_id: int, **fields) -> dict:
    return {"ticket": {"id": ticket_id, "status": "new", "updated_at": "2026-11-26T09:00:00Z", **fields}}


def test_zendesk_major_becomes_a_problem_before_its_child_is_linked(zendesk, child, major, http_mock, frozen):
    synced_link(zendesk, major, "4700")
    link = synced_link(zendesk, child, "4711")
    problem = http_mock.put(f"{ZENDESK}/4700", json=_zendesk_ticket(4700, type="problem"))
    incident = http_mock.put(f"{ZENDESK}/4711", json=_zendesk_ticket(4711, type="incident", problem_id=4700))
    link = itsm_link_sync(link=link)
    assert _calls(http_mock) == [("PUT", f"{ZENDESK}/4700"), ("PUT", f"{ZENDESK}/4711")]
    assert body(problem.calls[0]) == {"ticket": {"type": "problem"}}
    assert body(incident.calls[0]) == {"ticket": {"type": "incident", "problem_id": 4700}}
    assert (link.status, link.pushed["parent"]) == ("ok", "4700")
    assert ItsmLink.objects.get(incident=major).pushed["major"] is True


def test_zendesk_child_taken_out_loses_its_problem_and_the_problem_its_type(
    zendesk, incident, major, http_mock, frozen
):
    major.is_major = False
    major.save(update_fields=["is_major"])
    major_link = synced_link(zendesk, major, "4700", major=True)
    link = synced_link(zendesk, incident, "4711", parent="4700")
    detach = http_mock.put(f"{ZENDESK}/4711", json=_zendesk_ticket(4711, type="incident", problem_id=None))
    back = http_mock.put(f"{ZENDESK}/4700", json=_zendesk_ticket(4700, type="incident"))
    itsm_link_sync(link=link)
    itsm_link_sync(link=major_link)
    assert body(detach.calls[0]) == {"ticket": {"problem_id": None}}
    assert body(back.calls[0]) == {"ticket": {"type": "incident"}}


def test_zendesk_refusal_of_the_problem_leaves_the_child_waiting(zendesk, child, major, http_mock, frozen):
    synced_link(zendesk, major, "4700")
    link = synced_link(zendesk, child, "4711")
    http_mock.put(
        f"{ZENDESK}/4700",
        status=422,
        json={"error": "RecordInvalid", "description": "Record validation errors", "details": {"type": []}},
    )
    link = itsm_link_sync(link=link)
    assert (link.status, link.attempts) == ("pending", 0)
    assert link.last_error.startswith(
        "waiting for the major incident INC0001000 to reach Zendesk before linking to it: "
    )
    assert "422" in link.last_error
    assert _calls(http_mock) == [("PUT", f"{ZENDESK}/4700")]
    assert ItsmLink.objects.get(incident=major).status == "failed"


# -- RT: MemberOf ------------------------------------------------------------------------------

RT = "https://rt.example.com/REST/2.0"


@pytest.fixture
def rt_mocked(suite_settings) -> ItsmConnection:
    return ItsmConnection.objects.create(
        name="RT",
        slug="rt",
        kind="rt",
        base_url="https://rt.example.com",
        credentials={"token": "1-14-abc"},
        config={"queue": "Social"},
    )


def _rt_ticket(ticket_id: str, *parents: str) -> dict:
    links = [{"ref": "self", "type": "ticket", "id": ticket_id, "_url": f"{RT}/ticket/{ticket_id}"}]
    links += [{"ref": "parent", "type": "ticket", "id": p, "_url": f"{RT}/ticket/{p}"} for p in parents]
    return {"id": int(ticket_id), "Status": "new", "_hyperlinks": links}


def test_rt_child_becomes_a_member_of_its_major_incident(rt_mocked, child, major, http_mock, frozen):
    synced_link(rt_mocked, major, "7", major=True)
    link = synced_link(rt_mocked, child, "8")
    put = http_mock.put(f"{RT}/ticket/8", json=["Ticket 8 member of Ticket 7."])
    http_mock.get(f"{RT}/ticket/8", json=_rt_ticket("8", "7"))
    link = itsm_link_sync(link=link)
    assert body(put.calls[0]) == {"AddMemberOf": "7"}
    assert put.calls[0].request.headers["Authorization"] == "token 1-14-abc"
    assert (link.status, link.pushed["parent"]) == ("ok", "7")


def test_rt_link_that_already_exists_is_fine(rt_mocked, child, major, http_mock, frozen):
    synced_link(rt_mocked, major, "7", major=True)
    link = synced_link(rt_mocked, child, "8")
    http_mock.put(f"{RT}/ticket/8", json=["Link already exists"])
    http_mock.get(f"{RT}/ticket/8", json=_rt_ticket("8", "7"))
    assert itsm_link_sync(link=link).status == "ok"


def test_rt_refusal_inside_http_200_fails_the_link_with_rts_message(rt_mocked, child, major, http_mock, frozen):
    synced_link(rt_mocked, major, "7", major=True)
    link = synced_link(rt_mocked, child, "8")
    http_mock.put(f"{RT}/ticket/8", json=["Couldn't resolve '7' into a link."])
    http_mock.get(f"{RT}/ticket/8", json=_rt_ticket("8"))
    link = itsm_link_sync(link=link)
    assert (link.status, link.last_error) == (
        "failed",
        "RT refused AddMemberOf 7 on ticket 8: Couldn't resolve '7' into a link.",
    )


def test_rt_child_taken_out_is_no_longer_a_member(rt_mocked, incident, major, http_mock, frozen):
    synced_link(rt_mocked, major, "7", major=True)
    link = synced_link(rt_mocked, incident, "8", parent="7")
    put = http_mock.put(f"{RT}/ticket/8", json=["Ticket 8 no longer member of Ticket 7."])
    http_mock.get(f"{RT}/ticket/8", json=_rt_ticket("8"))
    link = itsm_link_sync(link=link)
    assert body(put.calls[0]) == {"DeleteMemberOf": "7"}
    assert (link.status, link.pushed["parent"]) == ("ok", "")
