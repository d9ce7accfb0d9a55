"""The incident audit trail: one event per thing that happened to an incident."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from socialitsm.models import Incident, IncidentEvent
from socialitsm.text import shorten


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
    return event


def event_bulk_record(events: Sequence[IncidentEvent]) -> list[IncidentEvent]:
    """Save many events in a few statements (routing a batch, replaying clocks): the one door for
    events written in bulk, as `event_record` is for one."""
    if not events:
        return []
    return IncidentEvent.objects.bulk_create(events, batch_size=500)


def _display(value: Any) -> str:
    if value is None:
        return ""
    return str(value)
