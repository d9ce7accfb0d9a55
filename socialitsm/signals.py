"""Signals other parts of the app (notifications, chat, metrics) listen to.

Both are sent after the transaction that made the change commits, never inside it, so a
receiver that fails or is slow cannot undo or hold up the change itself.
"""

from __future__ import annotations

from django.dispatch import Signal

# An incident event was recorded and committed. Keyword arguments: event (IncidentEvent).
incident_event = Signal()

# The events one `events_record` call recorded were committed, sent once for them all before
# `incident_event` is sent for each. Keyword arguments: events (list[IncidentEvent]). A receiver
# that looks events up or enqueues work listens here, so a batch of thousands costs it a few
# queries and tasks instead of one per event.
incident_events = Signal()

# A channel's listening health changed. Keyword arguments: channel (Channel), kind (str: "quiet",
# "stream_fallback", "token_expiring", "token_revoked", "quota_low"), message (str), raised (bool:
# True when the problem starts, False when it clears).
channel_alert = Signal()
