"""Ingest: store inbound posts exactly once, move cursors only with them, and poll channels."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from socialitsm.connectors import InboundPost, Quota, connector_for
from socialitsm.connectors.base import OWN_ACCOUNT_KEY, Cursor
from socialitsm.exceptions import ExternalError, PermanentError, TransientError
from socialitsm.models import Author, Channel, Post, Reply, WatchRule

from .deletions import posts_redact_seen

logger = logging.getLogger(__name__)

PROCESS_CHUNK = 100


@dataclass
class IngestResult:
    received: int = 0
    created: int = 0
    duplicates: int = 0
    pending_ids: list[int] = field(default_factory=list)
    # Posts by our own account or that are our own sent replies: never stored as complaints.
    own: int = 0
    # Deletions seen upstream that redacted a stored post (deletions of unknown posts are no-ops).
    redacted: int = 0


def posts_enqueue_processing(post_ids: list[int]) -> None:
    from socialitsm.tasks import posts_process_task

    for start in range(0, len(post_ids), PROCESS_CHUNK):
        posts_process_task.delay(post_ids[start : start + PROCESS_CHUNK])


def posts_ingest(
    *,
    channel: Channel,
    posts: Sequence[InboundPost],
    rule: WatchRule | None = None,
    cursor: Cursor | None = None,
    stream_cursor: Cursor | None = None,
    process: bool = True,
) -> IngestResult:
    """Store `posts` for `channel`, ignoring ones already stored, and save `rule`'s cursor (or
    the channel's `stream_cursor`) in the same transaction, so a crash replays posts and never
    skips them. Deletion markers redact our copy; our own posts and sent replies are skipped.
    New posts are handed to classification after commit."""
    unique: dict[str, InboundPost] = {}
    deletions: set[str] = set()
    for post in posts:
        if post.deleted:
            deletions.add(post.external_id)
        else:
            unique.setdefault(post.external_id, post)
    result = IngestResult(received=len(posts))
    network = channel.network
    with transaction.atomic():
        if unique:
            own = _own_posts(network, list(unique.values()))
            result.own = len(own)
            existing = set(
                Post.objects.filter(network=network, external_id__in=list(unique)).values_list("external_id", flat=True)
            )
            # Rows are written in key order: two overlapping batches then lock rows in the same
            # order and wait for each other instead of deadlocking.
            fresh = _replies_to_us_rethreaded(
                network,
                sorted(
                    (p for p in unique.values() if p.external_id not in existing and p.external_id not in own),
                    key=lambda p: p.external_id,
                ),
            )
            authors = _authors_upsert(network, fresh)
            # A stream names the rule that heard a post; one deleted meanwhile is forgotten.
            named = {p.rule_id for p in fresh if p.rule_id}
            live_rules = set(channel.rules.filter(pk__in=named).values_list("pk", flat=True)) if named else set()
            Post.objects.bulk_create(
                [
                    Post(
                        network=network,
                        external_id=p.external_id,
                        channel=channel,
                        rule_id=p.rule_id if p.rule_id in live_rules else (rule.pk if rule else None),
                        author_id=authors[p.author.external_id],
                        text=p.text,
                        raw=p.raw,
                        url=p.url,
                        posted_at=p.posted_at,
                        in_reply_to=p.in_reply_to,
                        conversation_id=p.conversation_id,
                        language=p.language,
                        is_direct=p.is_direct,
                    )
                    for p in fresh
                ],
                ignore_conflicts=True,
                batch_size=500,
            )
            result.created = len(fresh)
            result.pending_ids = list(
                Post.objects.pending()
                .filter(network=network, external_id__in=[p.external_id for p in fresh])
                .order_by("posted_at", "id")
                .values_list("id", flat=True)
            )
            if fresh:
                Channel.objects.filter(pk=channel.pk).update(last_event_at=timezone.now())
        if deletions:
            result.redacted = posts_redact_seen(network=network, posts=[p for p in posts if p.deleted])
        result.duplicates = result.received - result.created - result.own - sum(p.deleted for p in posts)
        if rule is not None and cursor is not None:
            WatchRule.objects.filter(pk=rule.pk).update(cursor=cursor)
            rule.cursor = cursor
        if stream_cursor is not None:
            Channel.objects.filter(pk=channel.pk).update(stream_cursor=stream_cursor)
            channel.stream_cursor = stream_cursor
        if process and result.pending_ids:
            ids = list(result.pending_ids)
            # Robust: a broker that is down must not turn stored posts into an error for the
            # sender; the recovery sweep hands pending posts to the workers later.
            transaction.on_commit(lambda: posts_enqueue_processing(ids), robust=True)
    return result


def _own_posts(network: str, posts: Sequence[InboundPost]) -> set[str]:
    """External ids among `posts` that we wrote: by one of our accounts on this network, or
    one of the replies we sent (the account id may be unknown if the channel was never verified)."""
    accounts = {
        str(config[OWN_ACCOUNT_KEY])
        for config in Channel.objects.filter(network=network).values_list("config", flat=True)
        if isinstance(config, dict) and config.get(OWN_ACCOUNT_KEY)
    }
    own = {p.external_id for p in posts if p.author.external_id in accounts}
    sent = Reply.objects.filter(channel__network=network, external_id__in=[p.external_id for p in posts])
    own.update(sent.values_list("external_id", flat=True))
    return own


def _replies_to_us_rethreaded(network: str, posts: list[InboundPost]) -> list[InboundPost]:
    """An answer to one of our replies continues the conversation of the post we answered:
    point `in_reply_to` at that post, so routing threads it into the same incident."""
    answered = dict(
        Reply.objects.filter(channel__network=network, external_id__in={p.in_reply_to for p in posts if p.in_reply_to})
        .exclude(external_id="")
        .values_list("external_id", "post__external_id")
    )
    if not answered:
        return posts
    return [replace(p, in_reply_to=answered[p.in_reply_to]) if p.in_reply_to in answered else p for p in posts]


def _authors_upsert(network: str, posts: Sequence[InboundPost]) -> dict[str, int]:
    latest = {p.author.external_id: p.author for p in posts}
    if not latest:
        return {}
    Author.objects.bulk_create(
        [
            Author(network=network, external_id=a.external_id, handle=a.handle, name=a.name, profile_url=a.profile_url)
            for a in (latest[key] for key in sorted(latest))  # key order: see posts_ingest
        ],
        update_conflicts=True,
        unique_fields=["network", "external_id"],
        update_fields=["handle", "name", "profile_url"],
        batch_size=500,
    )
    return dict(Author.objects.filter(network=network, external_id__in=list(latest)).values_list("external_id", "id"))


def channels_poll_due() -> list[int]:
    """Claim every polling channel whose turn has come and hand each to a poll task."""
    from socialitsm.tasks import channel_poll_task

    now = timezone.now()
    due = Channel.objects.filter(enabled=True, listen_mode=Channel.ListenMode.POLL).filter(
        Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now)
    )
    claimed = []
    for channel in due.only("pk", "poll_interval", "next_poll_at"):
        # The conditional update is the claim: two beat ticks or two schedulers cannot both win.
        won = Channel.objects.filter(pk=channel.pk, next_poll_at=channel.next_poll_at).update(
            next_poll_at=now + timedelta(seconds=channel.poll_interval)
        )
        if won:
            claimed.append(channel.pk)
            channel_poll_task.delay(channel.pk)
    return claimed


def channel_poll(*, channel: Channel) -> int:
    """Fetch every enabled rule of `channel` once and ingest what came. Returns posts created.

    Network errors are recorded on the channel, never raised: the next due poll tries again,
    not before a rate limit's reset."""
    connector = connector_for(channel)
    created = 0
    try:
        for rule in channel.rules.filter(enabled=True):
            posts, cursor = connector.search(rule, rule.cursor)
            created += posts_ingest(channel=channel, posts=posts, rule=rule, cursor=cursor).created
    except (TransientError, PermanentError) as exc:
        channel_error_record(channel=channel, error=exc)
        return created
    finally:
        channel_quota_record(channel=channel, quota=connector.quota)
    Channel.objects.filter(pk=channel.pk).update(
        last_polled_at=timezone.now(), health=Channel.Health.OK, last_error="", rate_limited_until=None
    )
    return created


def channel_quota_record(*, channel: Channel, quota: Quota) -> None:
    """Add what one connector call used to the channel's counters and keep the latest allowance."""
    if not quota.requests and quota.remaining is None:
        return
    changes: dict[str, Any] = {
        "requests_made": F("requests_made") + quota.requests,
        "cost_used": F("cost_used") + Decimal(str(round(quota.cost, 4))),
    }
    if quota.remaining is not None:
        changes["quota_remaining"] = quota.remaining
    if quota.limit is not None:
        changes["quota_limit"] = quota.limit
    if quota.reset_at is not None:
        changes["quota_reset_at"] = quota.reset_at
    Channel.objects.filter(pk=channel.pk).update(**changes)


def channel_error_record(*, channel: Channel, error: ExternalError) -> None:
    """Show on the channel why its last call failed; a rate limit also holds its next poll."""
    logger.warning("call to channel %s failed: %s", channel.slug, error.message)
    now = timezone.now()
    transient = isinstance(error, TransientError)
    health = Channel.Health.DEGRADED if transient else Channel.Health.FAILING
    retry_at = error.retry_at if isinstance(error, TransientError) else None
    changes = {"last_polled_at": now, "last_error": error.message, "last_error_at": now, "health": health}
    if retry_at is not None and retry_at > now:
        changes.update(rate_limited_until=retry_at, next_poll_at=retry_at)
    Channel.objects.filter(pk=channel.pk).update(**changes)
