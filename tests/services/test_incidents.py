from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from socialitsm.exceptions import ApplicationError
from socialitsm.models import Incident, IncidentCounter, priority_for
from socialitsm.services.incidents import incident_assign, incident_number_next, incident_update

from ..factories import IncidentFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("impact", "urgency", "priority"),
    [(1, 1, 1), (1, 2, 2), (1, 3, 3), (2, 1, 2), (2, 2, 3), (2, 3, 4), (3, 1, 3), (3, 2, 4), (3, 3, 5)],
)
def test_itil_priority_matrix(impact, urgency, priority):
    assert priority_for(impact, urgency) == priority
    assert IncidentFactory(impact=impact, urgency=urgency).priority == priority


def test_update_writes_one_event_per_field(agent):
    incident = IncidentFactory(impact=3, urgency=3)
    updated = incident_update(
        incident=incident, actor=agent, state="in_progress", impact=1, urgency=3, short_description="VPN down"
    )
    assert updated.priority == 3
    events = list(updated.events.values_list("field", "old_value", "new_value", "actor"))
    assert events == [
        ("state", "new", "in_progress", agent.pk),
        ("impact", "3", "1", agent.pk),
        ("short_description", "VPN down again", "VPN down", agent.pk),
        ("priority", "5", "3", agent.pk),
    ]


def test_unchanged_fields_write_no_event(agent):
    incident = IncidentFactory()
    incident_update(incident=incident, actor=agent, state="new", impact=incident.impact)
    assert incident.events.count() == 0


@pytest.mark.parametrize(
    ("start", "target"), [("closed", "new"), ("canceled", "in_progress"), ("new", "closed"), ("resolved", "on_hold")]
)
def test_forbidden_state_moves(agent, start, target):
    incident = IncidentFactory(state=start)
    with pytest.raises(ApplicationError) as info:
        incident_update(incident=incident, actor=agent, state=target)
    assert info.value.field == "state"
    incident.refresh_from_db()
    assert incident.state == start
    assert incident.events.count() == 0


def test_resolve_and_reopen_stamp_times(agent):
    incident = IncidentFactory(state="in_progress")
    resolved = incident_update(incident=incident, actor=agent, state="resolved")
    assert resolved.resolved_at is not None
    reopened = incident_update(incident=resolved, actor=agent, state="in_progress")
    assert reopened.resolved_at is None


def test_unknown_field_is_refused(agent):
    with pytest.raises(ApplicationError, match="cannot change number"):
        incident_update(incident=IncidentFactory(), actor=agent, number="INC1")


def test_assign_moves_new_to_in_progress(agent):
    incident = incident_assign(incident=IncidentFactory(), actor=agent, assignee=agent)
    assert (incident.assignee, incident.state) == (agent, "in_progress")


def test_number_format():
    assert incident_number_next() == "INC0001001"
    assert incident_number_next() == "INC0001002"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_numbers_never_collide():
    IncidentCounter.objects.update_or_create(name="incident", defaults={"value": 1000})
    numbers: list[str] = []
    errors: list[Exception] = []
    barrier = threading.Barrier(8)

    def open_many() -> None:
        try:
            barrier.wait()
            for _ in range(25):
                incident = IncidentFactory.build(number="")
                from django.db import transaction

                with transaction.atomic():
                    incident.number = incident_number_next()
                    incident.save()
                numbers.append(incident.number)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=open_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert connection.vendor == "postgresql"
    assert sorted(numbers) == [f"INC{n:07d}" for n in range(1001, 1201)]
    assert Incident.objects.count() == 200
