"""Figures stored on the incident so that lists and queues read them instead of computing them
per incident: how many posts it has (`post_count`) and when its next SLA clock breaches
(`breach_due_at`). Every write that links, unlinks or moves posts, or changes SLA clocks, ends
in `incidents_figures_refresh` for the incidents it touched; the SLA replay
(`incidents_sla_recompute`) calls it, so services that recompute the clocks need nothing more.
Routing's follow-ups, which only add posts, add to the count instead (`incidents_post_count_add`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.db import connection
from django.db.models import Case, Count, F, Min, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce

from socialitsm.models import Incident, IncidentStateTally, Post, SlaClock


def incidents_figures_refresh(*, incident_ids: Iterable[int]) -> int:
    """Count the incidents' posts and find their earliest running due time again, in one UPDATE.
    Idempotent; call it in the transaction that changed the posts or clocks. Returns the rows
    written: on PostgreSQL only those whose figures changed."""
    ids = sorted({pk for pk in incident_ids if pk is not None})
    if not ids:
        return 0
    if connection.vendor == "postgresql":
        return _refresh_postgresql(ids)
    posts = Post.objects.filter(incident=OuterRef("pk")).order_by().values("incident").annotate(n=Count("pk"))
    due = (
        SlaClock.objects.filter(incident=OuterRef("pk"), stopped_at__isnull=True, due_at__isnull=False)
        .order_by()
        .values("incident")
        .annotate(first=Min("due_at"))
    )
    return Incident.objects.filter(pk__in=ids).update(
        post_count=Coalesce(Subquery(posts.values("n")), 0), breach_due_at=Subquery(due.values("first"))
    )


def _refresh_postgresql(ids: list[int]) -> int:
    """The same UPDATE with the figures aggregated once for all `ids` and joined, instead of two
    subqueries per incident: a routing batch refreshes hundreds of incidents at a time, and the
    running-clock condition tempted the planner into scanning the index of every running clock
    once per incident. Rows whose figures are already right are not written (every SLA replay
    refreshes, whether or not it moved a post or a due time): a new row version of an incident
    is a new entry in each of its indexes whenever it cannot stay on its page."""
    incident, post, clock = (connection.ops.quote_name(model._meta.db_table) for model in (Incident, Post, SlaClock))
    # Only table names from the models are interpolated; the ids are one array parameter.
    sql = f"""
        UPDATE {incident} AS i SET post_count = COALESCE(p.n, 0), breach_due_at = c.first
        FROM unnest(%(ids)s::bigint[]) AS t(id)
        LEFT JOIN (
            SELECT incident_id, COUNT(*) AS n FROM {post}
            WHERE incident_id = ANY(%(ids)s::bigint[]) GROUP BY incident_id
        ) AS p ON p.incident_id = t.id
        LEFT JOIN (
            SELECT incident_id, MIN(due_at) FILTER (WHERE stopped_at IS NULL) AS first FROM {clock}
            WHERE incident_id = ANY(%(ids)s::bigint[]) GROUP BY incident_id
        ) AS c ON c.incident_id = t.id
        WHERE i.id = t.id
          AND (i.post_count IS DISTINCT FROM COALESCE(p.n, 0) OR i.breach_due_at IS DISTINCT FROM c.first)
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, {"ids": ids})
        return cursor.rowcount


def incidents_post_count_add(*, gained: Mapping[int, int]) -> int:
    """Add to each incident's `post_count` the posts it gained, {incident id: posts}, in one
    UPDATE: for posts linked that no incident held before, whose incidents' clocks they leave as
    they were (most follow-ups routing links). Counting again would read every post of the
    incident, thousands for a busy outage, once per batch. An addition is also right when two
    batches link posts to one incident at once: the second waits for the first's row and adds
    to what it wrote. Returns the rows written."""
    gained = {pk: n for pk, n in gained.items() if pk is not None and n}
    if not gained:
        return 0
    if connection.vendor != "postgresql":
        added = Case(*(When(pk=pk, then=Value(n)) for pk, n in gained.items()), default=Value(0))
        return Incident.objects.filter(pk__in=gained).update(post_count=F("post_count") + added)
    ids = sorted(gained)
    incident = connection.ops.quote_name(Incident._meta.db_table)
    # Only the table name from the model is interpolated; the figures are array parameters.
    sql = f"""
        UPDATE {incident} AS i SET post_count = i.post_count + d.n
        FROM unnest(%(ids)s::bigint[], %(gained)s::integer[]) AS d(id, n)
        WHERE i.id = d.id
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, {"ids": ids, "gained": [gained[pk] for pk in ids]})
        return cursor.rowcount


def incident_state_tally_compact() -> int:
    """Fold the rows of IncidentStateTally (one per statement that moved incidents between
    states, inserted by the database's triggers) into one row per state, in one statement: the
    rows it deletes are those committed when it starts, so rows written meanwhile stay, and a
    second run at the same time folds only what the first left. Returns the rows left."""
    if connection.vendor != "postgresql":
        return 0
    tally = connection.ops.quote_name(IncidentStateTally._meta.db_table)
    # Only the table name from the model is interpolated.
    sql = f"""
        WITH folded AS (DELETE FROM {tally} RETURNING state, incidents)
        INSERT INTO {tally} (state, incidents)
        SELECT state, SUM(incidents) FROM folded GROUP BY state HAVING SUM(incidents) <> 0 ORDER BY state
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.rowcount
