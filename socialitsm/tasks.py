"""Thin Celery entry points: load ids, call one service."""

from __future__ import annotations

import logging

from celery import Task, shared_task

from .exceptions import TransientError
from .logcontext import log_context
from .models import Channel, ChatMessage, IncidentEvent, ItsmConnection, ItsmLink, Notification, Reply, StatusPost
from .services import (
    alerts,
    broadcasts,
    chat,
    deletions,
    figures,
    ingest,
    itsm_sync,
    notifications,
    recovery,
    replies,
    retention,
    routing,
    sla,
)

logger = logging.getLogger(__name__)


class ReplySendTask(Task):
    """An error the service did not expect (transient and permanent ones it records itself)
    leaves the reply's fate unknown once it was claimed: it is marked failed for an agent to
    look at rather than sent again by the recovery sweep."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        reply_id = args[0] if args else kwargs.get("reply_id")
        reply = Reply.objects.filter(pk=reply_id, status=Reply.Status.SENDING).first()
        if reply is not None:
            error = f"stopped by an unexpected error ({type(exc).__name__}: {exc})"
            replies.reply_mark_failed(reply=reply, error=error)


@shared_task(acks_late=True)
def channels_poll_due_task() -> None:
    ingest.channels_poll_due()


@shared_task(acks_late=True)
def channel_poll_task(channel_id: int) -> None:
    channel = Channel.objects.filter(pk=channel_id, enabled=True).first()
    if channel is None:
        logger.info("channel %s vanished or was disabled before its poll", channel_id)
        return
    with log_context(channel=channel.slug):
        ingest.channel_poll(channel=channel)


@shared_task(acks_late=True)
def channels_recheck_due_task() -> None:
    deletions.channels_recheck_due()


@shared_task(acks_late=True)
def channel_posts_recheck_task(channel_id: int) -> None:
    channel = Channel.objects.filter(pk=channel_id, enabled=True).first()
    if channel is None:
        logger.info("channel %s vanished or was disabled before its re-check", channel_id)
        return
    with log_context(channel=channel.slug):
        deletions.channel_posts_recheck(channel=channel)


@shared_task(acks_late=True)
def posts_process_task(post_ids: list[int]) -> None:
    routing.posts_process(post_ids=post_ids)


@shared_task(acks_late=True)
def posts_drain_task() -> None:
    routing.posts_drain()


# Replies record their own retries (Reply.retry_after within Reply.retry_until, picked up by
# replies_send_due_task), so a server down for hours delays a reply instead of failing it.
@shared_task(base=ReplySendTask, acks_late=True)
def reply_send_task(reply_id: int) -> None:
    reply = Reply.objects.select_related("incident", "channel").filter(pk=reply_id).first()
    if reply is None:
        logger.info("reply %s vanished before send", reply_id)
        return
    with log_context(incident=reply.incident.number, channel=reply.channel.slug):
        replies.reply_send(reply=reply)


@shared_task(acks_late=True)
def replies_send_due_task() -> None:
    replies.replies_send_due()


@shared_task(acks_late=True)
def status_post_send_task(status_post_id: int) -> None:
    status_post = StatusPost.objects.filter(pk=status_post_id).first()
    if status_post is None:
        logger.info("status post %s vanished before send", status_post_id)
        return
    broadcasts.status_post_send(status_post=status_post)


@shared_task(acks_late=True)
def status_posts_send_due_task() -> None:
    broadcasts.status_posts_send_due()


@shared_task(acks_late=True)
def work_recover_task() -> None:
    recovery.work_recover()


@shared_task(acks_late=True)
def sla_sweep_task() -> None:
    sla.sla_sweep()


@shared_task(acks_late=True)
def incident_state_tally_compact_task() -> None:
    figures.incident_state_tally_compact()


@shared_task(acks_late=True)
def sla_recompute_open_task() -> None:
    sla.sla_recompute_open()


# ITSM tasks record their own retries (ItsmLink.next_attempt_at, picked up by the tick), so an
# outage longer than any task retry budget loses nothing; none of them raises TransientError.
@shared_task(acks_late=True)
def itsm_tick_task() -> None:
    itsm_sync.itsm_tick()


@shared_task(acks_late=True)
def itsm_link_sync_task(link_id: int) -> None:
    link = ItsmLink.objects.select_related("incident").filter(pk=link_id).first()
    if link is None:
        logger.info("ITSM link %s vanished before its sync", link_id)
        return
    with log_context(incident=link.incident.number):
        itsm_sync.itsm_link_sync(link=link)


@shared_task(acks_late=True)
def itsm_link_pull_task(link_id: int) -> None:
    link = ItsmLink.objects.filter(pk=link_id).first()
    if link is None:
        logger.info("ITSM link %s vanished before its pull", link_id)
        return
    itsm_sync.itsm_link_pull(link=link)


@shared_task(acks_late=True)
def itsm_connection_poll_task(connection_id: int) -> None:
    connection = ItsmConnection.objects.filter(pk=connection_id, enabled=True).first()
    if connection is None:
        logger.info("ITSM connection %s vanished or was disabled before its poll", connection_id)
        return
    itsm_sync.itsm_connection_poll(connection=connection)


@shared_task(acks_late=True)
def posts_retention_task() -> None:
    retention.posts_retention_sweep()


@shared_task(acks_late=True)
def channel_alerts_check_task() -> None:
    alerts.channel_alerts_check()


# Retried here (429, 5xx, timeouts) at the wait the service names: Retry-After or backoff.
@shared_task(bind=True, acks_late=True, max_retries=5)
def chat_message_send_task(self, message_id: int) -> None:
    message = ChatMessage.objects.filter(pk=message_id).first()
    if message is None:
        logger.info("chat message %s vanished before send", message_id)
        return
    wait = chat.chat_message_send(message=message, final=self.request.retries >= self.max_retries)
    if wait is not None:
        raise self.retry(countdown=wait)


class NotificationEmailTask(Task):
    """Retries ran out (or an unexpected error): the e-mail is given up on, the in-app
    notification stays."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        notification_id = args[0] if args else kwargs.get("notification_id")
        notifications.notification_email_fail(notification_id=notification_id, error=f"{type(exc).__name__}: {exc}")


@shared_task(acks_late=True)
def notifications_for_event_task(event_id: int) -> None:
    event = IncidentEvent.objects.filter(pk=event_id).first()
    if event is None:
        logger.info("incident event %s vanished before it was notified", event_id)
        return
    notifications.notifications_for_event(event)


@shared_task(acks_late=True)
def notifications_for_events_task(event_ids: list[int]) -> None:
    """`notifications_for_event_task` for events recorded together (events that vanished meanwhile
    are skipped)."""
    notifications.notifications_for_events(list(IncidentEvent.objects.filter(pk__in=event_ids).order_by("pk")))


@shared_task(acks_late=True)
def notifications_for_channel_alert_task(channel_id: int, kind: str, message: str, raised: bool) -> None:
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        logger.info("channel %s vanished before its alert was notified", channel_id)
        return
    notifications.notifications_for_channel_alert(channel=channel, kind=kind, message=message, raised=raised)


@shared_task(
    base=NotificationEmailTask,
    autoretry_for=(TransientError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
    acks_late=True,
)
def notification_email_task(notification_id: int) -> None:
    notification = Notification.objects.select_related("user", "incident").filter(pk=notification_id).first()
    if notification is None:
        logger.info("notification %s vanished before its e-mail", notification_id)
        return
    notifications.notification_email_send(notification=notification)
