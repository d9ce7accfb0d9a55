"""The incident audit trail: one event per thing that happened to an incident.

Every event is written through `event_record` or `events_record`; once the transaction that
wrote it commits, `signals.incident_event` is sent for it, exactly once (and
`signals.incident_events` once for the events recorded together)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from socialitsm.db import rows_insert
from socialitsm.models import Incident, IncidentEvent
from socialitsm.signals import incident_event, incident_events
from socialitsm.text import shorten

logger = logging.getLogger(__name__)


def event_build(
    incident: Incident, kind: str, *, actor=None, field: str = "", old: Any = "", new: Any = "", message: str = ""
) -> IncidentEvent:
    return IncidentEvent(
        incident=incident,
        kind=kind,
        actor=actor,
        field=field,
        old_value=shorten(_display(old), 255),
        new_value=shorten(_display(new), 255),
        message=message,
    )


def event_record(incident: Incident, kind: str, **fields: Any) -> IncidentEvent:
    event = event_build(incident, kind, **fields)
    event.save()
    events_announce([event])
    return event


def events_record(events: Sequence[IncidentEvent], *, batch_size: int | None = None) -> list[IncidentEvent]:
    """Save built events in one statement (one per `batch_size` where rows cannot go as column
    arrays) and announce them once committed."""
    created = list(events)
    rows_insert(IncidentEvent, created, batch_size=batch_size)
    events_announce(created)
    return created


def events_announce(events: Sequence[IncidentEvent]) -> None:
    """Send `incident_event` for saved events after the current transaction commits (at once
    outside one). A receiver's error is logged, never raised into the change that made them."""
    if not events:
        return
    saved = [event for event in events if event.pk is not None]
    transaction.on_commit(lambda: _send(saved))


def _send(events: list[IncidentEvent]) -> None:
    for receiver, result in incident_events.send_robust(sender=IncidentEvent, events=events):
        if isinstance(result, Exception):
            logger.error("incident_events receiver %r failed on %d events", receiver, len(events), exc_info=result)
    for event in events:
        for receiver, result in incident_event.send_robust(sender=IncidentEvent, event=event):
            if isinstance(result, Exception):
                logger.error("incident_event receiver %r failed on event %s", receiver, event.pk, exc_info=result)


def _display(value: Any) -> str:
    if value is None:
        return ""
    return str(value)
