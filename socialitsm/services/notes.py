"""Internal notes: agents' words on an incident for each other, never sent to a network."""

from __future__ import annotations

from django.db import transaction

from socialitsm.conf import conf
from socialitsm.exceptions import ApplicationError
from socialitsm.models import Incident, IncidentEvent, IncidentNote

from .events import event_record


def note_add(*, incident: Incident, author, text: str) -> IncidentNote:
    """Add an internal note. Its `note_added` audit event puts it in the timeline and is what
    the ITSM sync sends on as an internal comment (never as one the requester sees).

    Raises ApplicationError for an empty or too long note."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise ApplicationError("the note is empty", field="text")
    if len(text) > conf.NOTE_MAX_CHARS:
        raise ApplicationError(f"a note has at most {conf.NOTE_MAX_CHARS} characters", field="text")
    with transaction.atomic():
        note = IncidentNote.objects.create(incident=incident, author=author, text=text)
        event_record(incident, IncidentEvent.Kind.NOTE_ADDED, actor=author, new=f"note {note.pk}", message=text)
    return note
