"""Receivers of the app's own signals (signals.py): they hand the work to a task at once."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from socialitsm.models import Channel, IncidentEvent
from socialitsm.services.notifications import event_may_notify
from socialitsm.signals import channel_alert, incident_event


@receiver(incident_event, dispatch_uid="socialitsm-notify-incident-event")
def notify_incident_event(sender: Any, event: IncidentEvent, **kwargs: Any) -> None:
    from socialitsm.tasks import notifications_for_event_task

    if event_may_notify(event):
        notifications_for_event_task.delay(event.pk)


@receiver(channel_alert, dispatch_uid="socialitsm-notify-channel-alert")
def notify_channel_alert(
    sender: Any, channel: Channel, kind: str, message: str = "", raised: bool = True, **kwargs: Any
) -> None:
    from socialitsm.tasks import notifications_for_channel_alert_task

    notifications_for_channel_alert_task.delay(channel.pk, str(kind), str(message), bool(raised))
