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
