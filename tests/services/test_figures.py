"""The stored incident figures: PostgreSQL's aggregated refresh gives what the ORM's gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from socialitsm.models import Incident, SlaClock
from socialitsm.services import figures

from ..factories import IncidentFactory, PostFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _clock(incident: Incident, target: str, *, due_in: int | None, stopped: bool = False) -> None:
    SlaClock.objects.create(
        incident=incident,
        target=target,
        state=SlaClock.State.MET if stopped else SlaClock.State.RUNNING,
        started_at=NOW - timedelta(hours=1),
        due_at=None if due_in is None else NOW + timedelta(minutes=due_in),
        stopped_at=NOW if stopped else None,
        target_minutes=60,
        computed_at=NOW,
    )


def _stored() -> dict[int, tuple[int, datetime | None]]:
    return {pk: (count, due) for pk, count, due in Incident.objects.values_list("pk", "post_count", "breach_due_at")}


@pytest.mark.postgres
def test_the_postgresql_refresh_stores_the_figures_the_orm_refresh_stores(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the aggregated refresh is PostgreSQL's")
    busy, quiet, stopped, bare = (IncidentFactory() for _ in range(4))
    for _ in range(3):
        PostFactory(incident=busy)
    PostFactory(incident=stopped)
    _clock(busy, SlaClock.Target.RESOLUTION, due_in=90)
    _clock(busy, SlaClock.Target.FIRST_RESPONSE, due_in=15)
    _clock(quiet, SlaClock.Target.RESOLUTION, due_in=None)
    _clock(stopped, SlaClock.Target.FIRST_RESPONSE, due_in=5, stopped=True)
    ids = [busy.pk, quiet.pk, stopped.pk, bare.pk]
    Incident.objects.update(post_count=99, breach_due_at=NOW)

    assert figures.incidents_figures_refresh(incident_ids=ids) == 4
    aggregated = _stored()
    Incident.objects.update(post_count=99, breach_due_at=NOW)
    monkeypatch.setattr(connection, "vendor", "other")
    assert figures.incidents_figures_refresh(incident_ids=ids) == 4
    monkeypatch.undo()

    assert aggregated == _stored()
    assert aggregated[busy.pk] == (3, NOW + timedelta(minutes=15))
    assert aggregated[quiet.pk] == (0, None)
    assert aggregated[stopped.pk] == (1, None)
    assert aggregated[bare.pk] == (0, None)


@pytest.mark.postgres
def test_the_postgresql_refresh_leaves_rows_whose_figures_are_right_unwritten():
    if connection.vendor != "postgresql":
        pytest.skip("the aggregated refresh is PostgreSQL's")
    busy, bare = IncidentFactory(), IncidentFactory()
    PostFactory(incident=busy)
    _clock(busy, SlaClock.Target.FIRST_RESPONSE, due_in=15)
    Incident.objects.update(post_count=99, breach_due_at=NOW)
    ids = [busy.pk, bare.pk]

    def versions() -> dict[int, str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, ctid::text FROM socialitsm_incident WHERE id = ANY(%s)", [ids])
            return dict(cursor.fetchall())

    assert figures.incidents_figures_refresh(incident_ids=ids) == 2
    written = versions()
    assert figures.incidents_figures_refresh(incident_ids=ids) == 0
    assert versions() == written
    assert _stored() == {busy.pk: (1, NOW + timedelta(minutes=15)), bare.pk: (0, None)}


def test_posts_gained_add_to_the_stored_count():
    """The addition routing uses for follow-ups (any database): each incident gains what it is
    given, and an incident given nothing is not written."""
    a, b, c = IncidentFactory(), IncidentFactory(), IncidentFactory()
    Incident.objects.filter(pk__in=[a.pk, b.pk, c.pk]).update(post_count=3)
    assert figures.incidents_post_count_add(gained={a.pk: 2, b.pk: 1, c.pk: 0}) == 2
    assert figures.incidents_post_count_add(gained={}) == 0
    assert dict(Incident.objects.values_list("pk", "post_count")) == {a.pk: 5, b.pk: 4, c.pk: 3}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_additions_at_once_to_one_incident_lose_none():
    """Four batches adding to the same incidents at once, each holding its transaction open a
    while: the second waits for the first's row and adds to what it wrote."""
    import threading
    import time

    from django.db import transaction

    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL")
    a, b = IncidentFactory(), IncidentFactory()
    start = threading.Barrier(4)
    errors: list[Exception] = []

    def add() -> None:
        try:
            start.wait()
            with transaction.atomic():
                figures.incidents_post_count_add(gained={a.pk: 1, b.pk: 2})
                time.sleep(0.05)
        except Exception as exc:  # a lost update or a deadlock would land here or below
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=add) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert dict(Incident.objects.values_list("pk", "post_count")) == {a.pk: 4, b.pk: 8}
