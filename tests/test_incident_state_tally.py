"""The incidents per state the queue reads: kept by PostgreSQL's statement triggers through every
way incidents are written, and folded into one row per state without changing what they add up to."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.models import Count

from socialitsm import selectors
from socialitsm.models import Incident, IncidentStateTally
from socialitsm.services.figures import incident_state_tally_compact

from .factories import IncidentFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the tally is kept by PostgreSQL's triggers"),
]

State = Incident.State


def counted() -> dict[str, int]:
    return dict(Incident.objects.order_by().values_list("state").annotate(n=Count("pk")))


def test_tally_follows_inserts_updates_and_deletes():
    made = [IncidentFactory(state=state) for state in (State.NEW, State.NEW, State.IN_PROGRESS, State.RESOLVED)]
    Incident.objects.bulk_create(
        [Incident(number=f"BULK{n}", short_description="bulk", state=State.CLOSED, priority=4) for n in range(3)]
    )
    assert selectors.incident_state_counts() == counted() == {"new": 2, "in_progress": 1, "resolved": 1, "closed": 3}

    made[0].state = State.ON_HOLD
    made[0].save()
    Incident.objects.filter(state=State.CLOSED).update(state=State.RESOLVED)
    # Updates that leave the state as it was change nothing (and write no row).
    rows = IncidentStateTally.objects.count()
    Incident.objects.update(short_description="renamed")
    assert IncidentStateTally.objects.count() == rows
    made[1].delete()
    Incident.objects.filter(state=State.IN_PROGRESS).delete()

    assert selectors.incident_state_counts() == counted() == {"on_hold": 1, "resolved": 4}


def test_a_rolled_back_change_leaves_the_tally_as_it_was():
    IncidentFactory(state=State.NEW)
    with transaction.atomic():
        Incident.objects.update(state=State.CLOSED)
        IncidentFactory(state=State.CANCELED)
        transaction.set_rollback(True)

    assert selectors.incident_state_counts() == counted() == {"new": 1}


def test_compacting_folds_the_rows_into_one_per_state_and_keeps_the_counts():
    incidents = [IncidentFactory() for _ in range(4)]
    for state in (State.IN_PROGRESS, State.ON_HOLD, State.RESOLVED, State.CLOSED):
        Incident.objects.filter(pk__in=[i.pk for i in incidents[:2]]).update(state=state)
    Incident.objects.filter(pk=incidents[3].pk).delete()
    before = selectors.incident_state_counts()
    assert IncidentStateTally.objects.count() > 3

    left = incident_state_tally_compact()

    assert before == selectors.incident_state_counts() == counted() == {"closed": 2, "new": 1}
    assert left == 2
    assert sorted(IncidentStateTally.objects.values_list("state", "incidents")) == [("closed", 2), ("new", 1)]
    # Folding again changes nothing; later changes add to the folded rows.
    assert incident_state_tally_compact() == 2
    Incident.objects.filter(pk=incidents[2].pk).update(state=State.CANCELED)
    assert selectors.incident_state_counts() == counted() == {"closed": 2, "canceled": 1}


def test_queue_view_counts_read_the_tally_not_the_incidents(agent, django_assert_num_queries):
    for state in (State.NEW, State.ON_HOLD, State.RESOLVED, State.CLOSED, State.CANCELED):
        IncidentFactory(state=state)

    with django_assert_num_queries(2) as captured:
        counts = selectors.queue_view_counts(agent)

    assert (counts["open"], counts["on_hold"], counts["done"], counts["all"]) == (2, 1, 2, 5)
    assert IncidentStateTally._meta.db_table in captured.captured_queries[0]["sql"]
