"""Thin Celery entry points: load ids, call one service."""

from __future__ import annotations

import logging

from celery import Task, shared_task

from .models import Channel, ItsmConnection, ItsmLink, Reply, StatusPost
from .services import broadcasts, deletions, ingest, itsm_sync, recovery, replies, routing, sla

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
    reply = Reply.objects.filter(pk=reply_id).first()
    if reply is None:
        logger.info("reply %s vanished before send", reply_id)
        return
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
def sla_recompute_open_task() -> None:
    sla.sla_recompute_open()


# ITSM tasks record their own retries (ItsmLink.next_attempt_at, picked up by the tick), so an
# outage longer than any task retry budget loses nothing; none of them raises TransientError.
@shared_task(acks_late=True)
def itsm_tick_task() -> None:
    itsm_sync.itsm_tick()


@shared_task(acks_late=True)
def itsm_link_sync_task(link_id: int) -> None:
    link = ItsmLink.objects.filter(pk=link_id).first()
    if link is None:
        logger.info("ITSM link %s vanished before its sync", link_id)
        return
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
