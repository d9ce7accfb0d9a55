"""Bulk actions of the queue and of triage: one change applied to many incidents or posts, each
through the same service as a single change (audit events, SLA replay, ITSM sync hooks), each
in its own transaction, with the outcome reported per row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import TextChoices

from socialitsm.exceptions import ApplicationError
from socialitsm.models import PRIORITY_MATRIX, Incident, Post

from .incidents import incident_assign, incident_update
from .major import major_link
from .routing import post_label, post_promote

# At most this many rows in one bulk request: each is its own transaction.
BULK_MAX = 200


class IncidentAction(TextChoices):
    ASSIGN = "assign", "Assign"
    STATE = "state", "Change state"
    PRIORITY = "priority", "Change priority"
    LINK = "link", "Link to a major incident"


class PostAction(TextChoices):
    COMPLAINT = "complaint", "Label: complaint"
    NOT_COMPLAINT = "not_complaint", "Label: not a complaint"
    PROMOTE = "promote", "Promote to incidents"
    DISMISS = "dismiss", "Dismiss"


@dataclass(frozen=True)
class BulkOutcome:
    """One row's result: `ref` names it (incident number or post id); `error` is empty on success;
    `incident` is the number a promoted post went to."""

    ref: str
    error: str = ""
    incident: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class BulkResult:
    outcomes: list[BulkOutcome] = field(default_factory=list)

    @property
    def done(self) -> list[BulkOutcome]:
        return [o for o in self.outcomes if o.ok]

    @property
    def failed(self) -> list[BulkOutcome]:
        return [o for o in self.outcomes if not o.ok]


def levels_for_priority(impact: int, urgency: int, priority: int) -> tuple[int, int]:
    """The impact and urgency that give `priority` on the ITIL matrix, changing as little as can
    be: the impact kept when some urgency reaches it, else the urgency kept, else the nearest pair.

    Raises ApplicationError for a priority outside 1..5."""
    if priority not in Incident.Priority.values:
        raise ApplicationError("priority must be 1 to 5", field="priority")
    pairs = [(i, u) for i, row in PRIORITY_MATRIX.items() for u, p in row.items() if p == priority]
    return min(pairs, key=lambda pair: ((pair[0] != impact) + (pair[1] != urgency), abs(pair[0] - impact)))


def _check_size(rows: Sequence[Any]) -> None:
    if not rows:
        raise ApplicationError("select at least one", field="incidents")
    if len(rows) > BULK_MAX:
        raise ApplicationError(f"at most {BULK_MAX} at once", field="incidents")


def incidents_bulk_change(
    *, incidents: Sequence[Incident], actor, action: str, value: Any = None, group=None
) -> BulkResult:
    """Apply one change to each of `incidents`, as the single-incident services do it:
    - assign: `value` is the assignee (a user, or None to unassign), optionally with `group`;
    - state: `value` is the new state;
    - priority: `value` is 1..5, reached through impact and urgency (levels_for_priority);
    - link: `value` is the major incident to link each one to.
    A refusal of one incident is recorded for it and the others go on.

    Raises ApplicationError for an unknown action, an empty or oversized selection, or a link
    target that is not a major incident."""
    _check_size(incidents)
    change: Callable[[Incident], Any]
    if action == IncidentAction.ASSIGN:

        def change(incident: Incident) -> Any:
            return incident_assign(incident=incident, actor=actor, assignee=value, group=group)

    elif action == IncidentAction.STATE:
        if value not in Incident.State.values:
            raise ApplicationError("choose a state", field="state")

        def change(incident: Incident) -> Any:
            return incident_update(incident=incident, actor=actor, state=value)

    elif action == IncidentAction.PRIORITY:
        levels_for_priority(1, 1, value)

        def change(incident: Incident) -> Any:
            impact, urgency = levels_for_priority(incident.impact, incident.urgency, value)
            return incident_update(incident=incident, actor=actor, impact=impact, urgency=urgency)

    elif action == IncidentAction.LINK:
        if not isinstance(value, Incident) or not value.is_major:
            raise ApplicationError("choose an open major incident", field="major")

        def change(incident: Incident) -> Any:
            return major_link(major=value, incidents=[incident], actor=actor)

    else:
        raise ApplicationError(f"action must be one of {', '.join(IncidentAction.values)}", field="action")
    result = BulkResult()
    for incident in incidents:
        try:
            change(incident)
        except ApplicationError as exc:
            result.outcomes.append(BulkOutcome(ref=incident.number, error=exc.message))
        else:
            result.outcomes.append(BulkOutcome(ref=incident.number))
    return result


def posts_bulk_triage(*, posts: Sequence[Post], actor, action: str) -> BulkResult:
    """Label, promote or dismiss each of `posts` through the triage services (post_label,
    post_promote); dismissing labels a post "not a complaint". A refusal of one post is
    recorded for it and the others go on.

    Raises ApplicationError for an unknown action or an empty or oversized selection."""
    if not posts:
        raise ApplicationError("select at least one post", field="posts")
    if len(posts) > BULK_MAX:
        raise ApplicationError(f"at most {BULK_MAX} at once", field="posts")
    if action not in PostAction.values:
        raise ApplicationError(f"action must be one of {', '.join(PostAction.values)}", field="action")
    result = BulkResult()
    for post in posts:
        try:
            if action == PostAction.PROMOTE:
                incident = post_promote(post=post, actor=actor)
                result.outcomes.append(BulkOutcome(ref=str(post.pk), incident=incident.number))
                continue
            label = Post.Label.COMPLAINT if action == PostAction.COMPLAINT else Post.Label.NOT_COMPLAINT
            post_label(post=post, label=label, actor=actor)
        except ApplicationError as exc:
            result.outcomes.append(BulkOutcome(ref=str(post.pk), error=exc.message))
        else:
            result.outcomes.append(BulkOutcome(ref=str(post.pk)))
    return result
