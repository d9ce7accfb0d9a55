"""Recovery: hand work a crash or a lost task left behind back to the workers."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from socialitsm.conf import conf
from socialitsm.models import Post, Reply

from .ingest import posts_enqueue_chunks


def work_recover() -> dict[str, int]:
    """Hand stale work back to the workers: posts stored but never routed (a crash between
    commit and enqueue) and replies queued but never sent or abandoned mid-send. Replies waiting
    out a backoff are `replies_send_due`'s."""
    from socialitsm.tasks import reply_send_task

    now = timezone.now()
    stale = now - timedelta(seconds=conf.STALE_AFTER_SECONDS)
    # Parked posts (routing failed on them) wait for a person, so they never hold back the
    # posts behind them here.
    post_ids = list(
        Post.objects.routable()
        .filter(ingested_at__lt=stale)
        .order_by("posted_at", "id")
        .values_list("id", flat=True)[:5000]
    )
    if post_ids:
        posts_enqueue_chunks(post_ids)
    lease = now - timedelta(seconds=conf.SEND_LEASE_SECONDS)
    reply_ids = list(
        Reply.objects.filter(
            Q(status=Reply.Status.QUEUED, retry_after__isnull=True, created_at__lt=stale)
            | Q(status=Reply.Status.SENDING, claimed_at__lt=lease)
        ).values_list("id", flat=True)[:1000]
    )
    for reply_id in reply_ids:
        reply_send_task.delay(reply_id)
    return {"posts": len(post_ids), "replies": len(reply_ids)}
