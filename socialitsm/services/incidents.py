"""Incidents: opening them from posts, numbering, and agent changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from socialitsm.conf import conf
from socialitsm.exceptions import ApplicationError, VersionConflictError
from socialitsm.models import (
    Incident,
    IncidentCounter,
    IncidentEvent,
    Post,
    Service,
    WatchRule,
    priority_for,
)
from socialitsm.text import shorten

from .broadcasts import broadcast_propose_fixed
from .events import event_build, event_record, events_record
from .sla import incident_sla_recompute

COUNTER = "incident"

# Allowed state moves; closed and canceled are final.
TRANSITIONS: dict[str, set[str]] = {
    Incident.State.NEW: {
        Incident.State.IN_PROGRESS,
        Incident.State.ON_HOLD,
        Incident.State.RESOLVED,
        Incident.State.CANCELED,
    },
    Incident.State.IN_PROGRESS: {Incident.State.ON_HOLD, Incident.State.RESOLVED, Incident.State.CANCELED},
    Incident.State.ON_HOLD: {Incident.State.IN_PROGRESS, Incident.State.RESOLVED, Incident.State.CANCELED},
    Incident.State.RESOLVED: {Incident.State.IN_PROGRESS, Incident.State.CLOSED},
    Incident.State.CLOSED: set(),
    Incident.State.CANCELED: set(),
}
EDITABLE = ("state", "impact", "urgency", "assignee", "assignment_group", "service", "short_description", "category")


def incident_numbers_next(count: int = 1) -> list[str]:
    """The next `count` numbers in the series. Must run inside the transaction that saves the
    incidents: the counter row stays locked until it commits, so concurrent openers queue,
    never collide."""
    counter = IncidentCounter.objects.select_for_update().filter(name=COUNTER).first()
    if counter is None:
        IncidentCounter.objects.get_or_create(name=COUNTER, defaults={"value": conf.NUMBER_START - 1})
        counter = IncidentCounter.objects.select_for_update().get(name=COUNTER)
    first = counter.value + 1
    counter.value += count
    counter.save(update_fields=["value"])
    return [f"{conf.NUMBER_PREFIX}{n:0{conf.NUMBER_DIGITS}d}" for n in range(first, first + count)]


def incident_number_next() -> str:
    return incident_numbers_next(1)[0]


def group_default() -> Group | None:
    """The group that takes incidents neither their service's owner nor their rule routes
    (SOCIALITSM_DEFAULT_GROUP, "Service Desk" as shipped); None when unset or missing."""
    name = conf.DEFAULT_GROUP
    return Group.objects.filter(name=name).first() if name else None


def incident_build(
    *,
    post: Post,
    rule: WatchRule | None,
    service: Service | None,
    urgency: int,
    default_group: Group | None = None,
    impact: int | None = None,
) -> Incident:
    """An unsaved, unnumbered incident for `post`, with routing applied: the service's owner
    group, else the rule's group, else `default_group` (see group_default). SLA clocks are
    replayed once it and its posts are saved."""
    group = (service.owner_group if service else None) or (rule.assignment_group if rule else None) or default_group
    author = post.author
    heading = f"{author} on {post.get_network_display()} at {post.posted_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    if impact is None:
        impact = rule.default_impact if rule else conf.DEFAULT_IMPACT
    incident = Incident(
        short_description=shorten(post.text, 160) or "(empty post)",
        description=f"{heading}:\n\n{post.text}\n\n{post.url}".strip(),
        impact=impact,
        urgency=urgency,
        # save() derives it too, but bulk_create does not call save().
        priority=priority_for(impact, urgency),
        service=service,
        category=service.slug if service else "",
        assignment_group=group,
        author=author,
        channel_id=post.channel_id,
    )
    return incident


def incident_open_from_post(
    *,
    post: Post,
    rule: WatchRule | None,
    service: Service | None,
    urgency: int,
    actor=None,
    reason: str = "",
    impact: int | None = None,
) -> Incident:
    """Open an incident for `post` and link the post (impact: the rule's unless given). Call
    inside a transaction."""
    incident = incident_build(
        post=post, rule=rule, service=service, urgency=urgency, default_group=group_default(), impact=impact
    )
    incident.number = incident_number_next()
    incident.save()
    event_record(incident, IncidentEvent.Kind.OPENED, actor=actor, message=reason)
    post_link(post=post, incident=incident, actor=actor)
    return incident


def post_link(*, post: Post, incident: Incident, actor=None) -> None:
    post.incident = incident
    post.triage_state = Post.Triage.INCIDENT
    post.save(update_fields=["incident", "triage_state"])
    events_record([post_link_event(post, incident, actor=actor)])
    incident_sla_recompute(incident=incident)


def post_link_event(post: Post, incident: Incident, *, actor=None) -> IncidentEvent:
    return event_build(
        incident,
        IncidentEvent.Kind.POST_LINKED,
        actor=actor,
        new=f"{post.network}:{post.external_id}",
        message=shorten(post.text, 200),
    )


def incident_update(
    *,
    incident: Incident,
    actor,
    message: str = "",
    version: int | None = None,
    seen: dict[str, Any] | None = None,
    **changes: Any,
) -> Incident:
    """Apply an agent's changes, one audit event per changed field (`message` says why, e.g.
    which ITSM suite the change came from), and replay the SLA clocks (a state change may pause
    or stop them, a priority or group change may re-target them). Every change moves the
    incident's `version` on.

    `version` is the version the change was made against (a page, an If-Match). When the
    incident has moved on since: with `seen` (each changed field's value as the agent saw it),
    only a change to a field someone else changed meanwhile is refused; without it, any change.

    Raises ApplicationError for unknown fields, invalid values and forbidden state moves;
    VersionConflictError for a change made against an older version."""
    with transaction.atomic():
        # NO KEY UPDATE: changes never touch the key, so incidents being linked to this one (their
        # foreign key takes a key-share lock when they commit) are not held up by it.
        locked = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
        if version is not None and locked.version != version:
            _version_check(locked, version, seen, changes)
        incident_changes_check(incident=locked, **changes)
        changed: list[str] = []
        now = timezone.now()
        for name, value in changes.items():
            old = getattr(locked, name)
            if old == value:
                continue
            if name == "state":
                _state_stamp(locked, value, now)
            setattr(locked, name, value)
            changed.append(name)
            event_record(
                locked, IncidentEvent.Kind.CHANGED, actor=actor, field=name, old=old, new=value, message=message
            )
        if changed:
            old_priority = locked.priority
            locked.version += 1
            locked.save()
            if locked.priority != old_priority:
                event_record(
                    locked,
                    IncidentEvent.Kind.CHANGED,
                    actor=actor,
                    field="priority",
                    old=old_priority,
                    new=locked.priority,
                    message=message,
                )
            incident_sla_recompute(incident=locked)
            if locked.is_major and "state" in changed and locked.state == Incident.State.RESOLVED:
                _children_resolve(locked, actor)
                # The "fixed" message, drafted for every poster; an agent confirms it.
                broadcast_propose_fixed(major=locked, actor=actor)
            locked.refresh_from_db()
    return locked


def field_display(incident: Incident, name: str) -> str:
    """A field's current value as the incident page shows it."""
    if name in ("state", "impact", "urgency", "priority"):
        return str(getattr(incident, f"get_{name}_display")())
    value = getattr(incident, name)
    if value is None or value == "":
        return "(none)"
    if hasattr(value, "get_full_name"):
        return value.get_full_name() or value.get_username()
    return str(value)


def _version_check(incident: Incident, version: int, seen: dict[str, Any] | None, changes: dict[str, Any]) -> None:
    def key(value: Any) -> Any:
        return getattr(value, "pk", value)

    if seen is None:
        stale = list(changes)
    else:
        stale = [name for name in changes if name in seen and key(getattr(incident, name)) != key(seen[name])]
    if not stale:
        return
    changed = {name: field_display(incident, name) for name in stale}
    who = _changed_by(incident, stale)
    said = "; ".join(
        f"{name.replace('_', ' ')} is now {value}" + (f" (changed by {who[name]})" if who.get(name) else "")
        for name, value in changed.items()
    )
    raise VersionConflictError(
        f"{incident.number} was changed by someone else since you loaded it: {said}. "
        "Your change was not saved; check the new values and make it again.",
        version=incident.version,
        changed=changed,
    )


def _changed_by(incident: Incident, fields: list[str]) -> dict[str, str]:
    """Who last changed each of `fields` ("" for the system or a suite)."""
    out: dict[str, str] = {}
    events = (
        IncidentEvent.objects.filter(incident=incident, kind=IncidentEvent.Kind.CHANGED, field__in=fields)
        .select_related("actor")
        .order_by("-created_at", "-id")
    )
    for event in events[:50]:
        if event.field not in out:
            actor = event.actor
            out[event.field] = (actor.get_full_name() or actor.get_username()) if actor else ""
    return out


def _children_resolve(major: Incident, actor) -> None:
    """A major incident resolved (by any door: an agent, the admin, an ITSM suite) resolves its
    open children with it, each with its own audit event and SLA replay."""
    children = Incident.objects.filter(parent=major, state__in=Incident.OPEN_STATES).order_by("pk")
    for child in children:
        incident_update(
            incident=child,
            actor=actor,
            message=f"resolved with major incident {major.number}",
            state=Incident.State.RESOLVED,
        )


def incident_changes_check(*, incident: Incident, **changes: Any) -> None:
    """Refuse what incident_update would refuse for `incident` as given, without writing: lets a
    form show the error beside the field before anything is saved.

    Raises ApplicationError for unknown fields, invalid values and forbidden state moves."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ApplicationError(f"cannot change {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    for name, value in changes.items():
        if getattr(incident, name) == value:
            continue
        if name == "state":
            _state_check(incident.state, value)
        if name in ("impact", "urgency") and value not in (1, 2, 3):
            raise ApplicationError(f"{name} must be 1, 2 or 3", field=name)


def _state_check(old: str, new: str) -> None:
    if new not in Incident.State.values:
        raise ApplicationError(f"unknown state {new!r}", field="state")
    if new not in TRANSITIONS[old]:
        raise ApplicationError(
            f"an incident cannot move from {Incident.State(old).label} to {Incident.State(new).label}", field="state"
        )


def _state_stamp(incident: Incident, new: str, now: datetime) -> None:
    if new == Incident.State.RESOLVED:
        incident.resolved_at = now
    elif new == Incident.State.CLOSED:
        incident.closed_at = now
    elif new == Incident.State.IN_PROGRESS and incident.state == Incident.State.RESOLVED:
        incident.resolved_at = None


def incident_assign(*, incident: Incident, actor, assignee, group: Group | None = None) -> Incident:
    changes: dict[str, Any] = {"assignee": assignee}
    if group is not None:
        changes["assignment_group"] = group
    if incident.state == Incident.State.NEW and assignee is not None:
        changes["state"] = Incident.State.IN_PROGRESS
    return incident_update(incident=incident, actor=actor, **changes)
