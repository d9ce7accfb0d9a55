"""Receivers of the app's own signals (signals.py): they hand the work to a task at once."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from socialitsm.models import Channel, IncidentEvent
from socialitsm.services.notifications import event_may_notify
from socialitsm.signals import channel_alert, incident_events

# Events per notification task: routing a batch records one event per post.
NOTIFY_CHUNK = 500


@receiver(incident_events, dispatch_uid="socialitsm-notify-incident-events")
def notify_incident_events(sender: Any, events: list[IncidentEvent], **kwargs: Any) -> None:
    from socialitsm.tasks import notifications_for_events_task

    ids = [event.pk for event in events if event_may_notify(event)]
    for start in range(0, len(ids), NOTIFY_CHUNK):
        notifications_for_events_task.delay(ids[start : start + NOTIFY_CHUNK])


@receiver(channel_alert, dispatch_uid="socialitsm-notify-channel-alert")
def notify_channel_alert(
    sender: Any, channel: Channel, kind: str, message: str = "", raised: bool = True, **kwargs: Any
) -> None:
    from socialitsm.tasks import notifications_for_channel_alert_task

    notifications_for_channel_alert_task.delay(channel.pk, str(kind), str(message), bool(raised))
