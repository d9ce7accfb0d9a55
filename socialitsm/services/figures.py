"""Figures stored on the incident so that lists and queues read them instead of computing them
per incident: how many posts it has (`post_count`) and when its next SLA clock breaches
(`breach_due_at`). Every write that links, unlinks or moves posts, or changes SLA clocks, ends
in `incidents_figures_refresh` for the incidents it touched; the SLA replay
(`incidents_sla_recompute`) calls it, so services that recompute the clocks need nothing more."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Min, OuterRef, Subquery
from django.db.models.functions import Coalesce

from socialitsm.models import Incident, Post, SlaClock


def incidents_figures_refresh(*, incident_ids: Iterable[int]) -> int:
    """Count the incidents' posts and find their earliest running due time again, in one UPDATE.
    Idempotent; call it in the transaction that changed the posts or clocks. Returns rows updated."""
    ids = sorted({pk for pk in incident_ids if pk is not None})
    if not ids:
        return 0
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
