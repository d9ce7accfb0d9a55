"""Edits: a post its author changed on the network stays one row; earlier versions are kept.

Edits arrive with the post they change: Mastodon sends the same status again with `edited_at`
(a poll's overlap, or a `status.update` event), X a new post naming the first version in its
edit history, Reddit the same thing with `edited` set. Ingest passes every stored post that
comes again with an edit time to `post_edit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from socialitsm.connectors import InboundPost
from socialitsm.models import Incident, IncidentEvent, Post, PostRevision

from .events import event_record
from .routing import catalogue_load, complaint_threshold, posts_classify


class EditOutcome:
    """What `post_edit` did with an edit."""

    # Nothing to record: an edit we already have, of a post gone upstream, or that changed
    # neither the text nor the details (its time and payload are still kept).
    UNCHANGED = "unchanged"
    # The earlier version was recorded and the post updated.
    RECORDED = "recorded"
    # Recorded, and the post, which no incident holds, is pending again: routing classifies
    # the new text and routes it as it would a new post.
    ROUTE = "route"


# Posts routing left outside any incident: an edit hands them to routing again.
_ROUTED_ASIDE = (Post.Triage.IGNORED, Post.Triage.QUEUED)
_RESET_ROUTING: dict[str, object] = {
    "triage_state": Post.Triage.PENDING,
    "is_complaint": None,
    "complaint_score": None,
    "sentiment": None,
    "detected_service": None,
    "urgency_hint": None,
    "reasons": [],
}


def post_edit(*, post: Post, edit: InboundPost, now: datetime | None = None) -> str:
    """Apply `edit` (the post as the network now has it, through `post_clean`) to our `post`.

    Only an edit newer than the one we have counts, so the same edit delivered twice (a poll
    and a stream, two workers at once) records one revision: the row is locked and compared.
    A post gone upstream (redacted) is never brought back. When the text or details changed,
    the earlier version becomes a PostRevision and the post takes the new text, details,
    payload and edit time. Then:
    - a post no incident holds (ignored or queued) is made pending again; the caller hands it
      to routing (ingest does), which classifies the new text like a new post's;
    - a post of an incident is classified again and an event on the incident shows the new
      text and score. An edit that makes a complaint read as no complaint changes nothing
      else: the agent decides. A post still pending is simply routed with its new text.
    Returns an EditOutcome value."""
    if edit.edited_at is None:
        return EditOutcome.UNCHANGED
    now = now or timezone.now()
    details = [{"kind": d.kind, "text": d.text, "url": d.url} for d in edit.details]
    with transaction.atomic():
        locked = (
            Post.objects.select_for_update(of=("self",))
            .select_related("rule", "incident")
            .filter(pk=post.pk, deleted_at__isnull=True)
            .first()
        )
        if locked is None or (locked.edited_at is not None and edit.edited_at <= locked.edited_at):
            return EditOutcome.UNCHANGED
        changes: dict[str, object] = {"edited_at": edit.edited_at, "raw": edit.raw}
        if edit.text == locked.text and details == locked.details:
            Post.objects.filter(pk=locked.pk).update(**changes)
            return EditOutcome.UNCHANGED
        PostRevision.objects.create(
            post=locked, text=locked.text, details=locked.details, edited_at=edit.edited_at, recorded_at=now
        )
        changes.update(text=edit.text, details=details)
        outcome = EditOutcome.RECORDED
        if locked.incident_id is None and locked.triage_state in _ROUTED_ASIDE:
            changes.update(_RESET_ROUTING)
            outcome = EditOutcome.ROUTE
        Post.objects.filter(pk=locked.pk).update(**changes)
        if locked.incident is not None:
            locked.text = edit.text
            _incident_tell(locked, locked.incident)
    return outcome


def post_edits_apply(*, posts: Sequence[tuple[Post, InboundPost]], now: datetime) -> tuple[int, list[int]]:
    """`post_edit` for each (stored post, edit) in key order (the order ingest writes in).
    Returns how many revisions were recorded and the ids of the posts handed back to routing."""
    recorded, route = 0, []
    for post, edit in sorted(posts, key=lambda pair: pair[0].external_id):
        outcome = post_edit(post=post, edit=edit, now=now)
        if outcome != EditOutcome.UNCHANGED:
            recorded += 1
        if outcome == EditOutcome.ROUTE:
            route.append(post.pk)
    return recorded, route


def _incident_tell(post: Post, incident: Incident) -> None:
    """Record on the incident that its post was edited, with the new text and how it reads now."""
    _, catalogue = catalogue_load()
    verdict = posts_classify([post], catalogue)[0]
    threshold = complaint_threshold(post.rule)
    ref = f"{post.network}:{post.external_id}"
    if verdict.score < threshold and post.is_complaint and incident.is_open:
        heading = (
            f"{ref} edited; now reads as not a complaint (score {verdict.score:.2f} < {threshold:.2f}). "
            "Nothing was changed: close or keep the incident as you judge."
        )
    else:
        reading = "a complaint" if verdict.score >= threshold else "not a complaint"
        heading = f"{ref} edited; now reads as {reading} (score {verdict.score:.2f})."
    event_record(
        incident,
        IncidentEvent.Kind.POST_EDITED,
        field="complaint_score",
        old=f"{post.complaint_score:.2f}" if post.complaint_score is not None else "",
        new=f"{verdict.score:.2f}",
        message=f"{heading}\nIt now reads:\n{post.text}",
    )
