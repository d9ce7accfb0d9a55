"""ITSM sync: push incidents to the suites teams run, push what changes, pull the suites' state back.

How it stays exact and loses nothing:
- The audit trail (IncidentEvent) is the outbox. A periodic tick finds incidents that match a
  connection's rules (`itsm_links_discover`) and links whose incident has events past the link's
  watermark (`itsm_links_due`), and hands each link to a worker. Each connection keeps a cursor
  into the audit trail, so a tick reads only the events since the last one and looks only at the
  links of the incidents they name; links waiting for a retry or a recheck are found by their
  indexes. A tick's cost follows what changed, not how many incidents are linked.
- A worker claims the link with a lease (conditional UPDATE), so one link is worked by one worker
  at a time; the suite is called outside any transaction, and the outcome is recorded after.
- Create looks the record up by our reference first (and sends an idempotency key where the suite
  takes one): a retry after a create that timed out links the record made by the first try.
- Fields go out as the difference between the incident now and what was last pushed, so any
  number of changes, in any order, converge to one update. Replies and follow-up posts go out
  once each: the delivery log is unique per (link, reply) and (link, event).
- Transient errors (timeouts, 429, 5xx) schedule the next attempt with exponential backoff capped
  at ITSM_MAX_BACKOFF_SECONDS (or at the time the suite named) and never give up, so an hour-long
  outage only delays the sync. Permanent errors mark the link failed with the suite's message
  until an agent or admin retries it. Anything else raised while a link is worked (a bug, an
  answer no adapter expected) is recorded and retried like a transient error: a link is never
  left leased with no error and no attempt counted.

Major incidents: a major incident's record is the parent of its children's records, linked the
way each suite models it (see `ItsmAdapter.parent_link`). A child's sync first brings its parent's
record into the same suite (making the parent's link if the parent's own rules did not, and
syncing it then and there), so the parent always exists, marked as a parent, before a child is
linked to it. What was pushed is kept in the link's `pushed` ("major", and "parent": the parent
record's id), so a retry sends nothing twice and a child moved or taken out is unlinked from
the record it was linked to. Services that change `Incident.parent` or `is_major` call
`incident_links_changed` in the same transaction; the links are then synced after commit.

Privacy rule for comments: a public reply to the poster goes out as a public comment (RT
correspondence); a direct message goes out as an internal note, as do follow-up posts from social
networks and agents' internal notes, so nothing private reaches the requester through the suite.

Conflict rule (only the state comes back from the suites; SocialITSM owns the other fields):
- the suite changed the state and we did not since the last sync: the suite's state is applied;
- both changed: when the suite resolved, closed or canceled, the suite wins; otherwise our state
  wins and is pushed back. Every conflict writes an `itsm_conflict` audit event naming both states;
- a suite state that our life cycle cannot reach (e.g. reopening a closed incident) is refused
  and logged as a conflict.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Case, DateTimeField, Exists, F, Max, OuterRef, Q, QuerySet, Value, When
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from socialitsm import metrics
from socialitsm.backoff import next_attempt_at
from socialitsm.conf import conf
from socialitsm.exceptions import ApplicationError, ExternalError, PermanentError, TransientError
from socialitsm.itsm import SYNCED_FIELDS, ExternalTicket, ItsmAdapter, TicketFields, adapter_for
from socialitsm.models import (
    Incident,
    IncidentEvent,
    ItsmConnection,
    ItsmDelivery,
    ItsmLink,
    Post,
    Reply,
)
from socialitsm.text import clean_text

from .events import event_record
from .incidents import TRANSITIONS, incident_update

logger = logging.getLogger(__name__)

FINAL_REMOTE = (Incident.State.RESOLVED, Incident.State.CLOSED, Incident.State.CANCELED)
PULLED_STATES = (*Incident.OPEN_STATES, Incident.State.RESOLVED)
BATCH = 500


# -- what goes out ---------------------------------------------------------------------------------


def itsm_ref(incident: Incident) -> str:
    return f"{conf.ITSM_REF_PREFIX}:{incident.number}"


def incident_url(incident: Incident) -> str:
    try:
        path = reverse("socialitsm:incident", kwargs={"number": incident.number})
    except NoReverseMatch:
        path = f"/incidents/{incident.number}/"
    return f"{str(conf.SITE_URL).rstrip('/')}{path}"


def ticket_fields(incident: Incident) -> TicketFields:
    return TicketFields(
        external_ref=itsm_ref(incident),
        number=incident.number,
        short_description=incident.short_description,
        description=incident.description or incident.short_description,
        state=incident.state,
        impact=incident.impact,
        urgency=incident.urgency,
        priority=incident.priority,
        service=incident.service.name if incident.service else "",
        group=incident.assignment_group.name if incident.assignment_group else "",
        assignee=incident.assignee.get_username() if incident.assignee else "",
        url=incident_url(incident),
    )


def event_payload(event: IncidentEvent, incident: Incident) -> dict[str, Any]:
    """One audit event and the incident as it is now, for outbound webhooks."""
    fields = ticket_fields(incident)
    return {
        "id": event.pk,
        "event": event.kind,
        "occurred_at": event.created_at.isoformat(),
        "actor": event.actor.get_username() if event.actor else None,
        "field": event.field,
        "old_value": event.old_value,
        "new_value": event.new_value,
        "message": event.message,
        "incident": {
            "number": incident.number,
            "short_description": incident.short_description,
            "state": incident.state,
            "impact": incident.impact,
            "urgency": incident.urgency,
            "priority": incident.priority,
            "service": fields.service,
            "assignment_group": fields.group,
            "assignee": fields.assignee,
            "opened_at": incident.opened_at.isoformat(),
            "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
            "url": fields.url,
        },
    }


# -- discovery and scheduling ----------------------------------------------------------------------


def connection_incidents(connection: ItsmConnection) -> QuerySet[Incident]:
    """Incidents this connection's rules (service, group, priority) take."""
    incidents = Incident.objects.all()
    services = list(connection.rule_services.values_list("pk", flat=True))
    if services:
        incidents = incidents.filter(service__in=services)
    groups = list(connection.rule_groups.values_list("pk", flat=True))
    if groups:
        incidents = incidents.filter(assignment_group__in=groups)
    if connection.rule_max_priority:
        incidents = incidents.filter(priority__lte=connection.rule_max_priority)
    return incidents


def _events_past(cursor: int) -> list[tuple[int, int, datetime]]:
    """The next audit events after a connection's cursor: id, incident and time."""
    return list(
        IncidentEvent.objects.filter(pk__gt=cursor)
        .order_by("pk")
        .values_list("pk", "incident_id", "created_at")[: BATCH * 4]
    )


def _cursor_settled(events: list[tuple[int, int, datetime]], cursor: int, settled: datetime) -> int:
    """The cursor moved past the events older than `settled`, and no further: a younger id may
    still have an earlier one uncommitted."""
    for pk, _, created_at in events:
        if created_at >= settled:
            break
        cursor = pk
    return cursor


def itsm_links_discover(*, now: datetime | None = None) -> int:
    """Link the incidents that opened or changed since each connection last looked and now match
    its rules. Returns how many links were made (a concurrent tick may have made some of them)."""
    now = now or timezone.now()
    settled = now - timedelta(seconds=conf.ITSM_SETTLE_SECONDS)
    made = 0
    for connection in ItsmConnection.objects.filter(enabled=True):
        events = _events_past(connection.event_cursor)
        if not events:
            continue
        incident_ids = {incident_id for _, incident_id, _ in events}
        wanted = list(
            connection_incidents(connection)
            .filter(pk__in=incident_ids, state__in=PULLED_STATES)
            .exclude(itsm_links__connection=connection)
            .values_list("pk", "number")
        )
        created = ItsmLink.objects.bulk_create(
            [
                ItsmLink(connection=connection, incident_id=pk, external_ref=f"{conf.ITSM_REF_PREFIX}:{number}")
                for pk, number in wanted
            ],
            ignore_conflicts=True,
        )
        made += len(created)
        cursor = _cursor_settled(events, connection.event_cursor, settled)
        if cursor != connection.event_cursor:
            ItsmConnection.objects.filter(pk=connection.pk).update(event_cursor=cursor)
    return made


def itsm_links_due(*, now: datetime | None = None, advance: bool = False) -> list[int]:
    """Links to work now, each found through an index rather than by probing every link: links
    not yet created in their suite, links whose backoff or recheck time has come, and links of
    the incidents that have audit events past their connection's `sync_cursor` (and past the
    link's own watermark). Links held by a worker or waiting out a backoff are left out; a held
    link whose incident changed gets a recheck when its lease ends, so the change is not lost
    once the cursor has moved past it. With `advance`, the cursor moves past the events older
    than ITSM_SETTLE_SECONDS (a younger id may still have an earlier one uncommitted)."""
    now = now or timezone.now()
    settled = now - timedelta(seconds=conf.ITSM_SETTLE_SECONDS)
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    ready = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    links = ItsmLink.objects.active()
    due: set[int] = set()
    # The retry and recheck sets: each by its partial index.
    due.update(
        links.filter(free, next_attempt_at__lte=now).order_by("next_attempt_at").values_list("pk", flat=True)[:BATCH]
    )
    due.update(
        links.filter(free, ready, recheck_at__lte=now).order_by("recheck_at").values_list("pk", flat=True)[:BATCH]
    )
    for connection in ItsmConnection.objects.filter(enabled=True).order_by("pk"):
        due.update(
            links.filter(free, ready, connection=connection, remote_id="")
            .order_by("pk")
            .values_list("pk", flat=True)[:BATCH]
        )
        events = _events_past(connection.sync_cursor)
        if not events:
            continue
        newer = IncidentEvent.objects.filter(incident=OuterRef("incident"), pk__gt=OuterRef("event_watermark"))
        changed = links.filter(connection=connection, incident_id__in={i for _, i, _ in events}).filter(Exists(newer))
        due.update(changed.filter(free, ready).values_list("pk", flat=True))
        if not advance:
            continue
        # A link held by a worker may have read the incident before these events: it is looked at
        # again when its lease ends, unless a recheck is already due earlier.
        changed.filter(lease_until__gte=now).filter(
            Q(recheck_at__isnull=True) | Q(recheck_at__gt=F("lease_until"))
        ).update(recheck_at=F("lease_until"))
        cursor = _cursor_settled(events, connection.sync_cursor, settled)
        if cursor != connection.sync_cursor:
            ItsmConnection.objects.filter(pk=connection.pk).update(sync_cursor=cursor)
    return sorted(due)


def itsm_tick(*, now: datetime | None = None) -> dict[str, int]:
    """The beat's entry point: discover, then enqueue due syncs and due polls."""
    from socialitsm import tasks

    now = now or timezone.now()
    linked = itsm_links_discover(now=now)
    due = itsm_links_due(now=now, advance=True)
    for link_id in due:
        tasks.itsm_link_sync_task.delay(link_id)
    polls = list(
        ItsmConnection.objects.filter(enabled=True)
        .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now))
        .values_list("pk", flat=True)
    )
    for connection_id in polls:
        tasks.itsm_connection_poll_task.delay(connection_id)
    return {"linked": linked, "synced": len(due), "polled": len(polls)}


# -- claiming and recording ------------------------------------------------------------------------


def _claim(link: ItsmLink, now: datetime) -> ItsmLink | None:
    """Lease the link to this worker. The UPDATE filters on the link's own row only: a join
    would become a subquery that PostgreSQL does not re-check after waiting for a concurrent
    claim, and both workers would win."""
    enabled = ItsmConnection.objects.filter(pk=link.connection_id, enabled=True).exists()
    claimed = enabled and ItsmLink.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now), pk=link.pk
    ).update(lease_until=now + timedelta(seconds=conf.ITSM_LEASE_SECONDS))
    if not claimed:
        logger.info("ITSM link %s is held by another worker or disabled; skipped", link.pk)
        return None
    return ItsmLink.objects.select_related(
        "connection", "incident", "incident__service", "incident__assignment_group", "incident__assignee"
    ).get(pk=link.pk)


def _record_transient(link: ItsmLink, exc: TransientError, now: datetime) -> None:
    attempts = link.attempts + 1
    retry_at = next_attempt_at(attempts, now=now, cap=conf.ITSM_MAX_BACKOFF_SECONDS, retry_at=exc.retry_at)
    ItsmLink.objects.filter(pk=link.pk).update(
        status=ItsmLink.Status.PENDING,
        lease_until=None,
        attempts=attempts,
        next_attempt_at=retry_at,
        last_error=f"{exc.message} (attempt {attempts}; retrying at {retry_at:%Y-%m-%d %H:%M:%S} UTC)",
        last_error_at=now,
    )
    logger.warning("ITSM link %s: %s; retrying at %s", link.pk, exc.message, retry_at)
    metrics.itsm_sync_failed(link.connection.slug, permanent=False)


def _record_unexpected(link: ItsmLink, exc: Exception, now: datetime) -> None:
    """Anything an adapter or the sync itself raised outside the error contract: the lease is
    released, the attempt counted and the error kept, and the link is tried again with backoff,
    so a bug or an odd answer shows on the link instead of silently holding it."""
    logger.exception("ITSM link %s: unexpected error", link.pk)
    _record_transient(link, TransientError(_unexpected(exc)), now)


def _unexpected(exc: Exception) -> str:
    return f"unexpected error: {type(exc).__name__}: {exc}"[:1000]


def _record_failed(link: ItsmLink, message: str, now: datetime) -> None:
    with transaction.atomic():
        updated = (
            ItsmLink.objects.filter(pk=link.pk)
            .exclude(status=ItsmLink.Status.FAILED)
            .update(
                status=ItsmLink.Status.FAILED,
                lease_until=None,
                attempts=F("attempts") + 1,
                last_error=message,
                last_error_at=now,
                next_attempt_at=None,
            )
        )
        if updated:
            event_record(
                link.incident,
                IncidentEvent.Kind.ITSM_FAILED,
                new=link.connection.name,
                message=f"{link.connection.name}: {message}",
            )
    logger.warning("ITSM link %s failed: %s", link.pk, message)
    metrics.itsm_sync_failed(link.connection.slug, permanent=True)


def _watermark(link: ItsmLink, started: datetime) -> tuple[int, datetime | None]:
    """The newest event id seen, and when to look once more: while an event is younger than
    ITSM_SETTLE_SECONDS, a transaction holding an earlier id may still commit."""
    settled = started - timedelta(seconds=conf.ITSM_SETTLE_SECONDS)
    events = IncidentEvent.objects.filter(incident_id=link.incident_id, pk__gt=link.event_watermark)
    mark = events.aggregate(m=Max("pk"))["m"] or link.event_watermark
    newest = events.filter(created_at__gte=settled).aggregate(c=Max("created_at"))["c"]
    return mark, (newest + timedelta(seconds=conf.ITSM_SETTLE_SECONDS) if newest else None)


def _log(link: ItsmLink, action: str, detail: str, *, remote_ref: str = "", **target: Any) -> None:
    """A delivery row; for a reply or an event it is unique and a success replaces a retry."""
    ok = {"action": action, "status": ItsmDelivery.Status.OK, "detail": detail, "remote_ref": remote_ref}
    if not target or not ItsmDelivery.objects.filter(link=link, **target).update(**ok, attempts=F("attempts") + 1):
        ItsmDelivery.objects.create(link=link, **target, **ok)


def _log_error(link: ItsmLink, action: str, exc: Exception, **target: Any) -> None:
    """A failed delivery; an error outside the contract is retried like a transient one."""
    status = ItsmDelivery.Status.FAILED if isinstance(exc, PermanentError) else ItsmDelivery.Status.RETRYING
    detail = exc.message if isinstance(exc, ExternalError) else _unexpected(exc)
    if target:
        row, made = ItsmDelivery.objects.get_or_create(
            link=link, **target, defaults={"action": action, "status": status, "detail": detail}
        )
        if not made:
            ItsmDelivery.objects.filter(pk=row.pk).update(status=status, detail=detail, attempts=F("attempts") + 1)
    else:
        ItsmDelivery.objects.create(link=link, action=action, status=status, detail=detail)


# -- push ------------------------------------------------------------------------------------------


def itsm_link_sync(*, link: ItsmLink) -> ItsmLink | None:
    """Bring the suite up to date with the incident: create the record if there is none yet,
    send changed fields, its mark as a major incident, replies and follow-up posts (or, for
    webhooks, audit events) not yet delivered, then its link to its major incident's record.
    Returns None when another worker holds the link. Errors are recorded, not raised."""
    now = timezone.now()
    claimed = _claim(link, now)
    if claimed is None:
        return None
    link = claimed
    recheck_claimed = link.recheck_at
    if link.status == ItsmLink.Status.FAILED:
        ItsmLink.objects.filter(pk=link.pk).update(lease_until=None)
        return link
    # Taken before the work: events written while it runs stay past the watermark.
    mark, recheck = _watermark(link, now)
    try:
        adapter = adapter_for(link.connection)
        if not link.remote_id:
            _create(link, adapter)
        if adapter.delivers_events:
            _deliver_events(link, adapter)
        else:
            _push_fields(link, adapter)
            if adapter.links_parents:
                _push_major(link, adapter)
            _push_comments(link, adapter)
            if adapter.links_parents:
                _push_parent(link, adapter)
    except _ParentPending as exc:
        _record_waiting(link, exc, now)
    except TransientError as exc:
        _record_transient(link, exc, now)
    except PermanentError as exc:
        _record_failed(link, exc.message, now)
    except Exception as exc:
        _record_unexpected(link, exc, now)
    else:
        # A change announced while this sync ran (`incident_links_changed`) keeps its recheck.
        untouched = Q(recheck_at__isnull=True) if recheck_claimed is None else Q(recheck_at=recheck_claimed)
        ItsmLink.objects.filter(pk=link.pk).update(
            status=ItsmLink.Status.OK,
            lease_until=None,
            attempts=0,
            next_attempt_at=None,
            recheck_at=Case(
                When(untouched, then=Value(recheck, output_field=DateTimeField())), default=F("recheck_at")
            ),
            last_error="",
            last_synced_at=timezone.now(),
            event_watermark=mark,
        )
    link.refresh_from_db()
    return link


def _create(link: ItsmLink, adapter: ItsmAdapter) -> None:
    fields = ticket_fields(link.incident)
    try:
        ticket = adapter.find(link.external_ref)
        found = ticket is not None
        if ticket is None:
            ticket = adapter.create(fields, idempotency_key=str(link.idempotency_key))
    except Exception as exc:
        _log_error(link, ItsmDelivery.Action.CREATE, exc)
        raise
    with transaction.atomic():
        link.remote_id = ticket.remote_id
        link.remote_key = ticket.key
        link.remote_url = ticket.url
        link.remote_status = ticket.status
        link.remote_state = adapter.state_in(ticket.status) or ""
        link.remote_updated_at = ticket.updated_at
        # A record found by our reference may predate later changes here: push every field. A
        # suite that cannot take a state on create gets it by the update that follows.
        link.pushed = {} if found else fields.synced()
        if link.remote_state == fields.state:
            link.pushed["state"] = fields.state
        else:
            link.pushed.pop("state", None)
        link.save(
            update_fields=[
                "remote_id",
                "remote_key",
                "remote_url",
                "remote_status",
                "remote_state",
                "remote_updated_at",
                "pushed",
            ]
        )
        _log(
            link,
            ItsmDelivery.Action.CREATE,
            f"found {ticket.key or ticket.remote_id} by {link.external_ref}"
            if found
            else f"created {ticket.key or ticket.remote_id}",
            remote_ref=ticket.remote_id,
        )
        event_record(
            link.incident,
            IncidentEvent.Kind.ITSM_LINKED,
            new=f"{link.connection.name} {ticket.key or ticket.remote_id}",
            message=ticket.url,
        )


def _push_fields(link: ItsmLink, adapter: ItsmAdapter) -> None:
    fields = ticket_fields(link.incident)
    current = fields.synced()
    changed = tuple(name for name in SYNCED_FIELDS if link.pushed.get(name, object()) != current[name])
    if not changed:
        return
    try:
        adapter.update(link.remote_id, fields, changed)
    except Exception as exc:
        _log_error(link, ItsmDelivery.Action.UPDATE, exc)
        raise
    link.pushed = current
    update_fields = ["pushed"]
    if "state" in changed:
        # What the suite will report back for the state we sent, so a pull does not see a change.
        link.remote_state = adapter.state_in(adapter.state_out(fields.state)) or ""
        update_fields.append("remote_state")
    with transaction.atomic():
        link.save(update_fields=update_fields)
        _log(link, ItsmDelivery.Action.UPDATE, ", ".join(f"{n}={current[n]}" for n in changed))


def _push_major(link: ItsmLink, adapter: ItsmAdapter) -> None:
    """Mark the record as a parent while the incident is major or has children, and unmark it
    once it is neither."""
    incident = link.incident
    wanted = incident.is_major or Incident.objects.filter(parent_id=incident.pk).exists()
    if bool(link.pushed.get("major", False)) == wanted:
        return
    try:
        adapter.major_mark(link.remote_id, wanted)
    except Exception as exc:
        _log_error(link, ItsmDelivery.Action.UPDATE, exc)
        raise
    link.pushed = {**link.pushed, "major": wanted}
    with transaction.atomic():
        link.save(update_fields=["pushed"])
        _log(link, ItsmDelivery.Action.UPDATE, f"major={wanted}")


class _ParentPending(TransientError):
    """The major incident's record is not in the suite (or not marked) yet: link later."""


def _push_parent(link: ItsmLink, adapter: ItsmAdapter) -> None:
    """Link the record to its major incident's record, after unlinking it from the one it was
    linked to before (a child moved, or taken out of its major incident)."""
    incident = link.incident
    pushed = str(link.pushed.get("parent") or "")
    wanted = _parent_remote_id(link) if incident.parent_id else ""
    if wanted == pushed:
        return
    if pushed:
        _parent_step(link, adapter, "unlink", pushed)
    if wanted:
        _parent_step(link, adapter, "link", wanted)


def _parent_step(link: ItsmLink, adapter: ItsmAdapter, step: str, parent_id: str) -> None:
    try:
        if step == "link":
            adapter.parent_link(link.remote_id, parent_id)
        else:
            adapter.parent_unlink(link.remote_id, parent_id)
    except Exception as exc:
        _log_error(link, ItsmDelivery.Action.UPDATE, exc)
        raise
    link.pushed = {**link.pushed, "parent": parent_id if step == "link" else ""}
    with transaction.atomic():
        link.save(update_fields=["pushed"])
        _log(link, ItsmDelivery.Action.UPDATE, f"parent {step}ed: {parent_id}", remote_ref=parent_id)


def _parent_remote_id(link: ItsmLink) -> str:
    """The id of the parent incident's record in this link's suite, once it is there and marked
    as a parent. The parent's link is made if its rules did not make it, and synced now unless
    another worker holds it; raises _ParentPending while the record is not ready."""
    parent = link.incident.parent
    if parent is None or parent.pk == link.incident_id:
        raise PermanentError(f"{link.incident.number} has no major incident other than itself")
    parent_link, _ = ItsmLink.objects.get_or_create(
        connection=link.connection, incident=parent, defaults={"external_ref": itsm_ref(parent)}
    )
    # A parent that has a parent of its own is not synced from here: no chain, no cycle.
    if not _parent_ready(parent_link) and parent.parent_id is None and parent_link.status != ItsmLink.Status.FAILED:
        parent_link = itsm_link_sync(link=parent_link) or parent_link
    if not _parent_ready(parent_link):
        why = f": {parent_link.last_error}" if parent_link.last_error else ""
        raise _ParentPending(
            f"waiting for the major incident {parent.number} to reach {link.connection.name} before linking to it{why}"
        )
    return parent_link.remote_id


def _parent_ready(link: ItsmLink) -> bool:
    return bool(link.remote_id) and link.pushed.get("major") is True


def _record_waiting(link: ItsmLink, exc: _ParentPending, now: datetime) -> None:
    """Not a failure: the link is looked at again soon, without counting an attempt."""
    ItsmLink.objects.filter(pk=link.pk).update(
        status=ItsmLink.Status.PENDING,
        lease_until=None,
        next_attempt_at=now + timedelta(seconds=conf.ITSM_SETTLE_SECONDS),
        recheck_at=now + timedelta(seconds=conf.ITSM_SETTLE_SECONDS),
        last_error=exc.message,
        last_error_at=now,
    )
    logger.info("ITSM link %s: %s", link.pk, exc.message)


def incident_links_changed(*, incident: Incident, previous_parent: Incident | None = None) -> list[int]:
    """Push a change of `incident`'s parent or major flag to every suite: its links, and those
    of its parent and of `previous_parent` (the parent it was taken from, whose mark may have to
    go), are synced after the transaction commits. Call it in the transaction that made the
    change. Links being synced meanwhile are looked at again (their recheck is due now), so the
    change is never lost to a sync that read the incident before it. Returns the link ids."""
    ids = {incident.pk, *(i for i in (incident.parent_id, previous_parent.pk if previous_parent else None) if i)}
    links = ItsmLink.objects.active().filter(incident_id__in=ids)
    link_ids = list(links.order_by("pk").values_list("pk", flat=True))
    ItsmLink.objects.filter(pk__in=link_ids).update(recheck_at=timezone.now())
    for link_id in link_ids:
        transaction.on_commit(functools.partial(_enqueue_sync, link_id), robust=True)
    return link_ids


def _pending_replies(link: ItsmLink) -> QuerySet[Reply]:
    delivered = ItsmDelivery.objects.filter(link=link, reply=OuterRef("pk"), status=ItsmDelivery.Status.OK)
    return (
        Reply.objects.filter(incident_id=link.incident_id, status=Reply.Status.SENT)
        .exclude(Exists(delivered))
        .select_related("post__author", "agent")
        .order_by("sent_at", "pk")
    )


def _pending_posts(link: ItsmLink) -> QuerySet[IncidentEvent]:
    """Posts linked after the first: the first is the record's description."""
    delivered = ItsmDelivery.objects.filter(link=link, event=OuterRef("pk"), status=ItsmDelivery.Status.OK)
    linked = IncidentEvent.objects.filter(incident_id=link.incident_id, kind=IncidentEvent.Kind.POST_LINKED)
    first = linked.order_by("pk").values_list("pk", flat=True).first() or 0
    return linked.filter(pk__gt=first).exclude(Exists(delivered)).order_by("pk")


def _pending_notes(link: ItsmLink) -> QuerySet[IncidentEvent]:
    """Agents' internal notes not yet delivered, in the order they were written."""
    delivered = ItsmDelivery.objects.filter(link=link, event=OuterRef("pk"), status=ItsmDelivery.Status.OK)
    return (
        IncidentEvent.objects.filter(incident_id=link.incident_id, kind=IncidentEvent.Kind.NOTE_ADDED)
        .exclude(Exists(delivered))
        .select_related("actor")
        .order_by("pk")
    )


def note_comment(event: IncidentEvent) -> str:
    """The internal comment for an agent's note."""
    agent = event.actor.get_username() if event.actor else "an agent"
    return f"Internal note by {agent} (not sent to the poster):\n\n{event.message}"


def reply_comment(reply: Reply) -> tuple[str, bool]:
    """The comment for a sent reply and whether it is public: direct messages stay internal."""
    who = reply.post.author.handle or reply.post.author.name
    network = reply.post.get_network_display()
    agent = reply.agent.get_username() if reply.agent else "an agent"
    if reply.visibility == Reply.Visibility.PUBLIC:
        return f"Public reply by {agent} to {who} on {network}:\n\n{reply.text}", True
    return f"Direct message by {agent} to {who} on {network} (private; internal note):\n\n{reply.text}", False


def post_comment(post: Post) -> str:
    who = post.author.handle or post.author.name
    return f"New post from {who} on {post.get_network_display()}:\n\n{post.text}\n\n{post.url}".strip()


def _push_comments(link: ItsmLink, adapter: ItsmAdapter) -> None:
    outgoing: list[tuple[datetime, str, bool, dict[str, Any]]] = []
    for reply in _pending_replies(link)[:BATCH]:
        text, public = reply_comment(reply)
        outgoing.append((reply.sent_at or reply.created_at, text, public, {"reply": reply}))
    events = list(_pending_posts(link)[:BATCH])
    posts = _linked_posts(events)
    for event in events:
        post = posts.get(event.new_value)
        text = post_comment(post) if post else f"New post linked:\n\n{event.message}"
        outgoing.append((event.created_at, text, False, {"event": event}))
    # Notes are internal comments in every suite: work notes, Jira's and Zendesk's non-public
    # comments, RT's Comment (never Correspond).
    for event in _pending_notes(link)[:BATCH]:
        outgoing.append((event.created_at, note_comment(event), False, {"event": event}))
    outgoing.sort(key=lambda item: item[0])
    for _, text, public, target in outgoing:
        try:
            remote_ref = adapter.comment(link.remote_id, text, public=public)
        except Exception as exc:
            _log_error(link, ItsmDelivery.Action.COMMENT, exc, **target)
            raise
        _log(link, ItsmDelivery.Action.COMMENT, text[:500], remote_ref=remote_ref, **target)


def _linked_posts(events: list[IncidentEvent]) -> dict[str, Post]:
    keys = [e.new_value.partition(":") for e in events]
    if not keys:
        return {}
    # The incident's own posts only: webhook ids are unique per channel, not per network.
    posts = Post.objects.filter(
        incident_id=events[0].incident_id, network__in={n for n, _, _ in keys}, external_id__in={i for _, _, i in keys}
    ).select_related("author")
    return {f"{p.network}:{p.external_id}": p for p in posts}


def _deliver_events(link: ItsmLink, adapter: ItsmAdapter) -> None:
    delivered = ItsmDelivery.objects.filter(link=link, event=OuterRef("pk"), status=ItsmDelivery.Status.OK)
    events = (
        IncidentEvent.objects.filter(incident_id=link.incident_id)
        .exclude(Exists(delivered))
        .select_related("actor")
        .order_by("pk")[:BATCH]
    )
    for event in events:
        key = f"{link.connection.slug}:{event.pk}"
        try:
            remote_ref = adapter.deliver(event_payload(event, link.incident), idempotency_key=key)
        except Exception as exc:
            _log_error(link, ItsmDelivery.Action.EVENT, exc, event=event)
            raise
        _log(link, ItsmDelivery.Action.EVENT, f"{event.kind} as {key}", remote_ref=remote_ref, event=event)


# -- pull ------------------------------------------------------------------------------------------


def itsm_link_pull(*, link: ItsmLink) -> ItsmLink | None:
    """Read the record back from the suite and apply its state by the conflict rule (module
    docstring). Returns None when another worker holds the link. Errors are recorded, not raised."""
    now = timezone.now()
    claimed = _claim(link, now)
    if claimed is None:
        return None
    link = claimed
    try:
        adapter = adapter_for(link.connection)
        if not link.remote_id or link.status == ItsmLink.Status.FAILED or not adapter.can_pull:
            ItsmLink.objects.filter(pk=link.pk).update(lease_until=None)
            return link
        ticket = adapter.fetch(link.remote_id)
        _apply_remote(link, adapter, ticket)
    except TransientError as exc:
        _record_transient(link, exc, now)
    except PermanentError as exc:
        _record_failed(link, exc.message, now)
    except Exception as exc:
        _record_unexpected(link, exc, now)
    else:
        ItsmLink.objects.filter(pk=link.pk).update(lease_until=None)
    link.refresh_from_db()
    return link


def _apply_remote(link: ItsmLink, adapter: ItsmAdapter, ticket: ExternalTicket) -> None:
    remote = adapter.state_in(ticket.status)
    now = timezone.now()
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=link.incident_id)
        link.remote_status = ticket.status
        link.remote_updated_at = ticket.updated_at or link.remote_updated_at
        link.last_pulled_at = now
        update_fields = ["remote_status", "remote_updated_at", "last_pulled_at"]
        if remote is not None and remote != link.remote_state:
            source = f"{link.connection.name} {link.remote_key or link.remote_id} is {ticket.status}"
            local_changed = incident.state != link.pushed.get("state")
            suite_wins = not local_changed or remote in FINAL_REMOTE
            if local_changed and incident.state != remote:
                event_record(
                    incident,
                    IncidentEvent.Kind.ITSM_CONFLICT,
                    field="state",
                    old=incident.state,
                    new=remote,
                    message=f"{source}; both sides changed the state: "
                    + ("the suite's resolution wins." if suite_wins else "SocialITSM's state wins and is sent back."),
                )
            if suite_wins and incident.state != remote:
                _state_apply(incident, remote, source)
            if suite_wins:
                link.pushed = {**link.pushed, "state": incident.state}
                update_fields.append("pushed")
            link.remote_state = remote
            update_fields.append("remote_state")
        link.save(update_fields=update_fields)


def _state_apply(incident: Incident, target: str, source: str) -> None:
    path = _state_path(incident.state, target)
    if path is None:
        event_record(
            incident,
            IncidentEvent.Kind.ITSM_CONFLICT,
            field="state",
            old=incident.state,
            new=target,
            message=f"{source}; an incident cannot move from {incident.get_state_display()} "
            f"to {Incident.State(target).label}, so it stays.",
        )
        return
    for state in path:
        updated = incident_update(incident=incident, actor=None, message=f"from {source}", state=state)
        incident.state = updated.state


def _state_path(old: str, new: str) -> list[str] | None:
    """The moves that take an incident from `old` to `new`: direct, or by way of resolved
    (a suite may close what we never resolved)."""
    if new in TRANSITIONS[old]:
        return [new]
    if Incident.State.RESOLVED in TRANSITIONS[old] and new in TRANSITIONS[Incident.State.RESOLVED]:
        return [Incident.State.RESOLVED, new]
    return None


def itsm_connection_poll(*, connection: ItsmConnection) -> dict[str, int]:
    """Queue a pull of every linked incident still worth watching (open or resolved), least
    recently pulled first, one task each so a slow suite does not hold one worker for all of
    them; then schedule the next poll."""
    now = timezone.now()
    link_ids: list[int] = []
    if adapter_for(connection).can_pull:
        link_ids = list(
            ItsmLink.objects.active()
            .filter(connection=connection, incident__state__in=PULLED_STATES)
            .exclude(remote_id="")
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .order_by(F("last_pulled_at").asc(nulls_first=True), "pk")
            .values_list("pk", flat=True)[:BATCH]
        )
    ItsmConnection.objects.filter(pk=connection.pk).update(
        last_polled_at=now, next_poll_at=now + timedelta(seconds=connection.poll_interval)
    )
    for link_id in link_ids:
        _enqueue_pull(link_id)
    return {"pulled": len(link_ids)}


# -- commands --------------------------------------------------------------------------------------


def itsm_link_retry(*, link: ItsmLink) -> bool:
    """Try a failed link again now (or a link waiting out a backoff). Returns False when the link
    is in sync and there is nothing to retry."""
    updated = (
        ItsmLink.objects.filter(pk=link.pk)
        .filter(~Q(status=ItsmLink.Status.OK) | Q(next_attempt_at__gt=timezone.now()))
        .update(
            status=ItsmLink.Status.PENDING,
            attempts=0,
            next_attempt_at=None,
            lease_until=None,
            # Due by index on the next tick too, should the sync enqueued below be lost.
            recheck_at=timezone.now(),
        )
    )
    if not updated:
        return False
    ItsmDelivery.objects.filter(link=link, status=ItsmDelivery.Status.FAILED).update(
        status=ItsmDelivery.Status.RETRYING
    )
    transaction.on_commit(lambda: _enqueue_sync(link.pk), robust=True)
    return True


def itsm_link_retry_for_agent(*, link: ItsmLink) -> ItsmLink:
    """The agent's retry button: refuses, with a reason, when there is nothing to retry."""
    if not itsm_link_retry(link=link):
        raise ApplicationError(f"the link to {link.connection.name} is in sync; there is nothing to retry")
    link.refresh_from_db()
    return link


def itsm_webhook_receive(*, connection: ItsmConnection, remote_id: str) -> ItsmLink | None:
    """A suite told us a record changed: pull it (the payload only names the record; its state
    is read from the suite). Returns None when no incident is linked to that record."""
    longest = ItsmLink._meta.get_field("remote_id").max_length or 0
    if len(remote_id) > longest or clean_text(remote_id) != remote_id:
        # Never stored so: a NUL or lone surrogate would make PostgreSQL refuse the query.
        return None
    link = ItsmLink.objects.filter(connection=connection, remote_id=remote_id).first()
    if link is None:
        return None
    transaction.on_commit(lambda: _enqueue_pull(link.pk), robust=True)
    return link


def _enqueue_sync(link_id: int) -> None:
    from socialitsm.tasks import itsm_link_sync_task

    itsm_link_sync_task.delay(link_id)


def _enqueue_pull(link_id: int) -> None:
    from socialitsm.tasks import itsm_link_pull_task

    itsm_link_pull_task.delay(link_id)
