"""SLA state on incidents, ordering by time to breach, and the policy and calendar endpoints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import transaction

from socialitsm.models import SlaCalendar, SlaClock, SlaPolicy
from socialitsm.services.incidents import incident_open_from_post, incident_update

from ..factories import PostFactory

pytestmark = pytest.mark.django_db


def z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def office() -> SlaCalendar:
    return SlaCalendar.objects.create(
        name="Office",
        timezone="Europe/Berlin",
        hours={day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    )


def open_at(posted: str, *, urgency: int = 2, impact: int = 3, external_id: str):
    with time_machine.travel(z(posted), tick=False):
        post = PostFactory(posted_at=z(posted), ingested_at=z(posted), external_id=external_id)
        post.rule.default_impact = impact
        with transaction.atomic():
            return incident_open_from_post(post=post, rule=post.rule, service=None, urgency=urgency)


def test_incident_carries_its_sla_state(agent_api, agent, office):
    SlaPolicy.objects.create(
        name="P4 office",
        priority=4,
        first_response_minutes=120,
        resolution_minutes=480,
        calendar=office,
        pause_states=["on_hold"],
    )
    incident = open_at("2026-11-26 15:00", external_id="sla-state")  # Thursday 16:00 in Berlin
    with time_machine.travel(z("2026-11-27 08:30"), tick=False):
        incident_update(incident=incident, actor=agent, state="on_hold")

    with time_machine.travel(z("2026-11-27 08:45"), tick=False):
        body = agent_api.get(f"/api/v1/incidents/{incident.number}/").json()

    assert body["breach_due_at"] == "2026-11-27T09:00:00Z"
    assert body["sla"] == {
        "policy": "P4 office",
        "started_at": "2026-11-26T15:00:00Z",
        "ingest_lag_seconds": 0,
        "clocks": [
            {
                "target": "first_response",
                "cycle": 0,
                "state": "running",
                "at_risk": True,
                "started_at": "2026-11-26T15:00:00Z",
                "due_at": "2026-11-27T09:00:00Z",
                "stopped_at": None,
                "target_minutes": 120,
                # One hour on Thursday, 45 minutes on Friday morning: holding does not stop response clocks.
                "elapsed_seconds": 6300,
                "paused_seconds": 0,
            },
            {
                "target": "resolution",
                "cycle": 0,
                "state": "paused",
                "at_risk": False,
                "started_at": "2026-11-26T15:00:00Z",
                "due_at": None,
                "stopped_at": None,
                "target_minutes": 480,
                "elapsed_seconds": 5400,
                "paused_seconds": 900,
            },
        ],
    }


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("breach_due_at", ["INC0001002", "INC0001001", "INC0001003"]),
        ("-breach_due_at", ["INC0001001", "INC0001002", "INC0001003"]),
    ],
)
@pytest.mark.usefixtures("any_clock")
def test_incidents_order_by_time_to_breach_with_no_clock_last(agent_api, ordering, expected):
    SlaPolicy.objects.create(name="P4", priority=4, first_response_minutes=60, resolution_minutes=480)
    SlaPolicy.objects.create(name="P1", priority=1, first_response_minutes=15, resolution_minutes=240)
    open_at("2026-11-26 09:00", external_id="a")  # P4: due 10:00
    open_at("2026-11-26 09:30", impact=1, urgency=1, external_id="b")  # P1: due 09:45
    open_at("2026-11-26 08:00", impact=3, urgency=3, external_id="c")  # P5: no policy

    response = agent_api.get(f"/api/v1/incidents/?ordering={ordering}")

    assert [row["number"] for row in response.json()["results"]] == expected


POLICIES = "/api/v1/sla/policies/"
CALENDARS = "/api/v1/sla/calendars/"


def test_sla_rules_are_for_leads(agent_api):
    assert agent_api.get(POLICIES).status_code == 403
    assert agent_api.post(CALENDARS, {"name": "x"}, format="json").status_code == 403
    assert SlaCalendar.objects.count() == 0


def test_lead_adds_a_calendar_and_a_policy_and_open_incidents_are_re_evaluated(
    lead_api, django_capture_on_commit_callbacks
):
    SlaPolicy.objects.create(name="P4 24x7", priority=4, first_response_minutes=60, resolution_minutes=480, position=50)
    incident = open_at("2026-11-26 15:00", external_id="retarget")
    calendar = lead_api.post(
        CALENDARS,
        {
            "name": "Office",
            "timezone": "Europe/Berlin",
            "hours": {"thu": [["09:00", "17:00"]]},
            "holiday_country": "DE",
        },
        format="json",
    )
    assert calendar.status_code == 201

    with django_capture_on_commit_callbacks(execute=True), time_machine.travel(z("2026-11-26 15:10"), tick=False):
        response = lead_api.post(
            POLICIES,
            {
                "name": "P4 network office",
                "position": 10,
                "priority": 4,
                "network": "replay",
                "first_response_minutes": 90,
                "resolution_minutes": 600,
                "calendar": calendar.json()["id"],
                "pause_states": ["on_hold"],
            },
            format="json",
        )

    assert response.status_code == 201, response.json()
    incident.refresh_from_db()
    assert incident.sla_policy.name == "P4 network office"
    # Thursday 16:00-17:00 Berlin, then closed until the next Thursday 09:00: 30 more minutes.
    assert SlaClock.objects.get(incident=incident, target="first_response").due_at == z("2026-12-03 08:30")


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"name": "x", "timezone": "Mars/Base"}, {"non_field_errors": ["unknown time zone 'Mars/Base'"]}),
        (
            {"name": "x", "hours": {"mon": [["17:00", "09:00"]]}},
            {"non_field_errors": ["mon: 17:00-09:00 ends before it starts"]},
        ),
        ({"name": "x", "holiday_country": "XX"}, {"non_field_errors": ["no public holidays known for 'XX'"]}),
    ],
)
def test_a_bad_calendar_is_refused(lead_api, body, errors):
    response = lead_api.post(CALENDARS, body, format="json")
    assert (response.status_code, response.json()) == (400, errors)
    assert SlaCalendar.objects.count() == 0


def test_a_policy_with_unknown_pause_states_is_refused(lead_api):
    response = lead_api.post(POLICIES, {"name": "x", "priority": 1, "pause_states": ["resolved"]}, format="json")
    assert (response.status_code, response.json()) == (
        400,
        {"pause_states": {"0": ['"resolved" is not a valid choice.']}},
    )


def test_a_calendar_in_use_cannot_be_deleted(lead_api, office):
    SlaPolicy.objects.create(name="P1", priority=1, calendar=office)
    response = lead_api.delete(f"{CALENDARS}{office.pk}/")
    assert (response.status_code, response.json()) == (400, {"non_field_errors": ["Office is still in use"]})
    assert SlaCalendar.objects.filter(pk=office.pk).exists()
