"""SLA service: policies chosen by conditions, clocks replayed from incident history, the sweep.
Times are fixed with time-machine; Berlin is UTC+1 in November; 2026-11-26 is a Thursday."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.db import connection, transaction

from socialitsm.exceptions import PermanentError
from socialitsm.models import Incident, IncidentEvent, Network, Reply, Service, SlaCalendar, SlaClock, SlaPolicy
from socialitsm.services.incidents import incident_open_from_post, incident_update, post_link
from socialitsm.services.replies import reply_queue, reply_send
from socialitsm.services.sla import incidents_sla_recompute, sla_recompute_open, sla_sweep

from ..factories import PostFactory

pytestmark = pytest.mark.django_db


def z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def office():
    return SlaCalendar.objects.create(
        name="Office",
        timezone="Europe/Berlin",
        hours={day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
        holiday_country="DE",
    )


@pytest.fixture
def policies(office):
    """P1 24x7; P4 in office hours with next-response targets; hold pauses resolution."""
    common = {"pause_states": ["on_hold"]}
    return {
        1: SlaPolicy.objects.create(
            name="P1", priority=1, first_response_minutes=15, resolution_minutes=240, position=10, **common
        ),
        4: SlaPolicy.objects.create(
            name="P4 office",
            priority=4,
            first_response_minutes=120,
            next_response_minutes=60,
            resolution_minutes=480,
            calendar=office,
            position=40,
            **common,
        ),
    }


def open_incident(posted_at: str, received_at: str, *, impact: int = 3, urgency: int = 2, **post_fields) -> Incident:
    """Receive a post at `received_at` and open an incident from it then (P4 with the defaults)."""
    with time_machine.travel(z(received_at), tick=False):
        post = PostFactory(posted_at=z(posted_at), ingested_at=z(received_at), **post_fields)
        post.rule.default_impact = impact
        with transaction.atomic():
            incident = incident_open_from_post(post=post, rule=post.rule, service=None, urgency=urgency)
    incident.refresh_from_db()
    return incident


def clocks(incident: Incident) -> dict[tuple[str, int], tuple]:
    return {
        (c.target, c.cycle): (c.state, c.due_at, c.stopped_at)
        for c in SlaClock.objects.filter(incident=incident).order_by("target", "cycle")
    }


@pytest.mark.usefixtures("any_clock")
def test_clocks_start_at_the_post_time_in_business_hours_and_lag_is_reported(policies):
    # Posted Thursday 16:30 local, received 20 minutes later.
    incident = open_incident("2026-11-26 15:30", "2026-11-26 15:50")

    assert (incident.sla_policy, incident.sla_started_at, incident.ingest_lag_seconds) == (
        policies[4],
        z("2026-11-26 15:30"),
        1200,
    )
    # First response: 30 minutes on Thursday, 90 on Friday from 09:00 local (08:00 UTC).
    # Resolution: 30 minutes Thursday, 8 hours Friday, 7.5 hours... no: 480 = 30 + 450 -> Friday 16:30 local.
    assert clocks(incident) == {
        ("first_response", 0): ("running", z("2026-11-27 09:30"), None),
        ("resolution", 0): ("running", z("2026-11-27 15:30"), None),
    }
    assert (incident.response_due_at, incident.resolution_due_at) == (z("2026-11-27 09:30"), z("2026-11-27 15:30"))


@pytest.mark.usefixtures("any_clock")
def test_a_post_dated_in_the_future_is_clamped_to_its_receipt_and_recorded_once(policies):
    incident = open_incident("2026-11-26 10:07", "2026-11-26 10:00", impact=1, urgency=1)

    assert incident.sla_started_at == z("2026-11-26 10:00")
    assert clocks(incident)[("first_response", 0)] == ("running", z("2026-11-26 10:15"), None)
    incidents_sla_recompute(incident_ids=[incident.pk], now=z("2026-11-26 10:05"))
    skew = list(incident.events.filter(kind="clock_skew").values_list("old_value", "new_value", "message"))
    assert skew == [
        (
            "2026-11-26 10:07:00 UTC",
            "2026-11-26 10:00:00 UTC",
            "The post is dated 420 s after it reached us; the SLA clock starts when it reached us.",
        )
    ]


def send(incident: Incident, agent, at: str) -> Reply:
    """Queue a reply at `at` and let the worker send it then."""
    with time_machine.travel(z(at), tick=False):
        reply = reply_queue(
            incident=incident, post=incident.posts.get(), text="We are on it.", visibility="public", agent=agent
        )
        reply_send(reply=reply)
    reply.refresh_from_db()
    return reply


def test_a_reply_counts_when_it_is_sent_not_when_it_is_queued_or_failed(policies, agent, fake_network):
    incident = open_incident("2026-11-26 09:00", "2026-11-26 09:00", impact=1, urgency=1)

    fake_network.errors.append(PermanentError("blocked"))
    assert send(incident, agent, "2026-11-26 09:05").status == Reply.Status.FAILED
    assert clocks(incident)[("first_response", 0)] == ("running", z("2026-11-26 09:15"), None)

    with time_machine.travel(z("2026-11-26 09:10"), tick=False):
        queued = reply_queue(
            incident=incident, post=incident.posts.get(), text="Again.", visibility="public", agent=agent
        )
    assert clocks(incident)[("first_response", 0)] == ("running", z("2026-11-26 09:15"), None)

    with time_machine.travel(z("2026-11-26 09:20"), tick=False):
        reply_send(reply=queued)
    incident.refresh_from_db()
    assert incident.first_response_at == z("2026-11-26 09:20")
    assert clocks(incident)[("first_response", 0)] == ("breached", z("2026-11-26 09:15"), z("2026-11-26 09:20"))
    assert incident.response_breached is True


def test_the_poster_writing_again_starts_a_next_response_clock(policies, agent):
    incident = open_incident("2026-11-26 09:00", "2026-11-26 09:00")
    send(incident, agent, "2026-11-26 09:30")
    first = incident.posts.get()
    with time_machine.travel(z("2026-11-26 15:45"), tick=False):
        again = PostFactory(author=first.author, rule=first.rule, posted_at=z("2026-11-26 15:40"), text="still broken")
        with transaction.atomic():
            post_link(post=again, incident=incident)

    # 20 minutes on Thursday until 17:00 local, 40 on Friday from 09:00 local.
    assert clocks(incident)[("next_response", 1)] == ("running", z("2026-11-27 08:40"), None)
    incident.refresh_from_db()
    assert incident.response_due_at == z("2026-11-27 08:40")


def test_a_priority_change_re_targets_from_the_original_start(policies, agent):
    incident = open_incident("2026-11-26 09:00", "2026-11-26 09:00")
    assert clocks(incident)[("first_response", 0)] == ("running", z("2026-11-26 11:00"), None)

    with time_machine.travel(z("2026-11-26 09:05"), tick=False):
        incident_update(incident=incident, actor=agent, impact=1, urgency=1)

    incident.refresh_from_db()
    assert (incident.priority, incident.sla_policy) == (1, policies[1])
    assert clocks(incident) == {
        ("first_response", 0): ("running", z("2026-11-26 09:15"), None),
        ("resolution", 0): ("running", z("2026-11-26 13:00"), None),
    }
    assert list(incident.events.filter(field="sla_policy").values_list("old_value", "new_value")) == [
        ("P4 office (P4)", "P1 (P1)")
    ]


def test_holding_overnight_pauses_resolution_and_reopening_resumes_it(policies, agent):
    incident = open_incident("2026-11-26 09:00", "2026-11-26 09:00")  # Thursday 10:00 local
    moves = [
        ("2026-11-26 12:00", "on_hold"),  # 3 business hours used
        ("2026-11-27 10:00", "in_progress"),  # Friday 11:00 local: 1 hour of Friday spent on hold
        ("2026-11-27 11:00", "resolved"),  # 4 hours used
        ("2026-11-27 12:00", "in_progress"),  # reopened: 1 more hour not counted
    ]
    for at, state in moves:
        with time_machine.travel(z(at), tick=False):
            incident_update(incident=incident, actor=agent, state=state)

    resolution = SlaClock.objects.get(incident=incident, target="resolution")
    # 4 hours left from Friday 13:00 local: 13:00-17:00 -> due Friday 17:00 local (16:00 UTC).
    assert (resolution.state, resolution.due_at, resolution.elapsed_seconds, resolution.paused_seconds) == (
        "running",
        z("2026-11-27 16:00"),
        4 * 3600,
        23 * 3600,
    )


def test_editing_a_calendar_re_evaluates_open_incidents(policies, office, django_capture_on_commit_callbacks):
    incident = open_incident("2026-11-26 09:00", "2026-11-26 09:00")
    office.hours = {**office.hours, "thu": [["09:00", "10:30"]]}
    office.save()

    with time_machine.travel(z("2026-11-26 09:10"), tick=False):
        assert sla_recompute_open() == 1

    # 30 minutes left on Thursday (10:00-10:30 local), 90 more from Friday 09:00 local.
    assert clocks(incident)[("first_response", 0)] == ("running", z("2026-11-27 09:30"), None)


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({}, "specific"),
        ({"network": Network.MASTODON}, "general"),
        ({"network": Network.REPLAY}, "specific"),
        ({"service": "vpn"}, "specific"),
        ({"service": "email"}, "general"),
        ({"assignment_group": "Network Team"}, "specific"),
    ],
)
def test_the_first_matching_policy_applies(policies, conditions, expected):
    group = Group.objects.create(name="Network Team")
    SlaPolicy.objects.filter(priority=4).update(position=50, name="general")
    if "service" in conditions:
        conditions["service"] = Service.objects.get(slug=conditions["service"])
    if "assignment_group" in conditions:
        conditions["assignment_group"] = group
    SlaPolicy.objects.create(
        name="specific", priority=4, position=20, first_response_minutes=5, resolution_minutes=60, **conditions
    )
    post = PostFactory(posted_at=z("2026-11-26 09:00"), ingested_at=z("2026-11-26 09:00"))
    post.rule.default_impact = 3
    post.rule.assignment_group = group
    with time_machine.travel(z("2026-11-26 09:00"), tick=False), transaction.atomic():
        incident = incident_open_from_post(
            post=post, rule=post.rule, service=Service.objects.get(slug="vpn"), urgency=2
        )
    incident.refresh_from_db()
    assert incident.sla_policy.name == expected


def event_kinds(incident: Incident) -> list[tuple[str, str]]:
    return list(incident.events.filter(kind__startswith="sla_").order_by("id").values_list("kind", "field"))


@pytest.mark.usefixtures("any_clock")
def test_the_sweep_warns_then_marks_the_breach_once(policies):
    incident = open_incident("2026-11-26 09:00", "2026-11-26 09:00", impact=1, urgency=1)  # 15 min response

    assert sla_sweep(now=z("2026-11-26 09:11")) == {"warned": 0, "breached": 0}
    assert sla_sweep(now=z("2026-11-26 09:12")) == {"warned": 1, "breached": 0}
    assert sla_sweep(now=z("2026-11-26 09:13")) == {"warned": 0, "breached": 0}
    assert sla_sweep(now=z("2026-11-26 09:15")) == {"warned": 0, "breached": 1}
    assert sla_sweep(now=z("2026-11-26 12:11")) == {"warned": 0, "breached": 0}
    assert sla_sweep(now=z("2026-11-26 12:12")) == {"warned": 1, "breached": 0}  # 80% of 240 minutes
    assert sla_sweep(now=z("2026-11-26 13:00")) == {"warned": 0, "breached": 1}
    assert sla_sweep(now=z("2026-11-27 13:00")) == {"warned": 0, "breached": 0}

    assert event_kinds(incident) == [
        ("sla_warning", "first_response"),
        ("sla_breached", "first_response"),
        ("sla_warning", "resolution"),
        ("sla_breached", "resolution"),
    ]
    breach = incident.events.filter(kind="sla_breached").first()
    assert (breach.new_value, breach.message) == (
        "2026-11-26T09:15:00+00:00",
        "First response was due 2026-11-26 09:15 UTC (P1): the 15 min target is breached.",
    )
    incident.refresh_from_db()
    assert (incident.response_breached, incident.resolution_breached) == (True, True)


@pytest.mark.usefixtures("any_clock")
def test_a_reply_sent_late_is_still_announced_as_a_breach(policies, agent):
    incident = open_incident("2026-11-26 09:00", "2026-11-26 09:00", impact=1, urgency=1)
    send(incident, agent, "2026-11-26 09:20")

    assert sla_sweep(now=z("2026-11-26 09:21")) == {"warned": 0, "breached": 1}
    assert event_kinds(incident) == [("sla_breached", "first_response")]


def test_a_met_clock_is_never_announced(policies, agent):
    incident = open_incident("2026-11-26 09:00", "2026-11-26 09:00", impact=1, urgency=1)
    send(incident, agent, "2026-11-26 09:05")
    with time_machine.travel(z("2026-11-26 09:30"), tick=False):
        incident_update(incident=incident, actor=agent, state="resolved")

    assert sla_sweep(now=z("2026-11-27 09:00")) == {"warned": 0, "breached": 0}
    assert event_kinds(incident) == []


@pytest.mark.usefixtures("any_clock")
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_sweeps_announce_each_breach_exactly_once(office):
    SlaPolicy.objects.create(name="P1", priority=1, first_response_minutes=15, resolution_minutes=240)
    incidents = [
        open_incident("2026-11-26 09:00", "2026-11-26 09:00", impact=1, urgency=1, external_id=f"race-{n}")
        for n in range(5)
    ]
    barrier = threading.Barrier(4)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            barrier.wait()
            results.append(sla_sweep(now=z("2026-11-26 14:00")))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(r["breached"] for r in results) == 10
    assert (
        IncidentEvent.objects.filter(incident__in=incidents, kind="sla_breached")
        .values_list("incident_id", "field")
        .distinct()
        .count()
        == IncidentEvent.objects.filter(incident__in=incidents, kind="sla_breached").count()
        == 10
    )


def test_a_breach_undone_by_re_targeting_is_announced_again_when_the_new_target_passes(policies, agent):
    incident = open_incident("2026-11-26 09:00", "2026-11-26 09:00", impact=1, urgency=1)  # P1: 15 min
    assert sla_sweep(now=z("2026-11-26 09:12")) == {"warned": 1, "breached": 0}
    assert sla_sweep(now=z("2026-11-26 09:15")) == {"warned": 0, "breached": 1}

    with time_machine.travel(z("2026-11-26 09:20"), tick=False):
        incident_update(incident=incident, actor=agent, impact=3, urgency=2)  # P4 office: 120 business minutes

    clock = SlaClock.objects.get(incident=incident, target="first_response")
    assert (clock.state, clock.due_at, clock.warned_at, clock.breached_at) == (
        "running",
        z("2026-11-26 11:00"),
        None,
        None,
    )
    assert sla_sweep(now=z("2026-11-26 10:35")) == {"warned": 0, "breached": 0}
    assert sla_sweep(now=z("2026-11-26 10:36")) == {"warned": 1, "breached": 0}
    assert sla_sweep(now=z("2026-11-26 11:00")) == {"warned": 0, "breached": 1}
    assert list(incident.events.filter(kind__startswith="sla_").values_list("kind", "new_value")) == [
        ("sla_warning", "2026-11-26T09:15:00+00:00"),
        ("sla_breached", "2026-11-26T09:15:00+00:00"),
        ("sla_warning", "2026-11-26T11:00:00+00:00"),
        ("sla_breached", "2026-11-26T11:00:00+00:00"),
    ]
