"""Replies: queue an agent's answer, send it through the channel, record what the network said."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from socialitsm.conf import conf
from socialitsm.connectors import Connector, connector_for
from socialitsm.connectors.base import SENT_CLOCK_SKEW
from socialitsm.exceptions import ApplicationError, PermanentError, TransientError
from socialitsm.models import Incident, IncidentEvent, Post, Reply

from .deletions import gone_refusal, reply_target_gone
from .incidents import event_record
from .sla import incident_sla_recompute

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplyOptions:
    """What the reply box needs to know about answering one post."""

    limit: int
    unit: str
    # Why a public reply (or a direct message) would be refused; "" when it would not.
    public_refusal: str
    direct_refusal: str


def reply_options(post: Post) -> ReplyOptions:
    connector = connector_for(post.channel)
    limits = connector.limits()
    network = post.get_network_display()
    public = (
        (gone_refusal(post, Reply.Visibility.PUBLIC) or connector.reply_refusal(post, Reply.Visibility.PUBLIC))
        if limits.supports_public
        else ""
    )
    direct = connector.reply_refusal(post, Reply.Visibility.DIRECT) if limits.supports_direct else ""
    return ReplyOptions(
        limit=limits.max_reply_chars,
        unit=limits.unit,
        public_refusal=public if limits.supports_public else f"{network} does not allow a public reply here",
        direct_refusal=direct if limits.supports_direct else f"{network} cannot send direct messages here",
    )


def reply_queue(*, incident: Incident, post: Post, text: str, visibility: str, agent) -> Reply:
    """Queue `text` as a public reply or a direct message to the poster of `post`.

    Raises ApplicationError when the incident is closed, the post is not the incident's, the
    text does not fit the network, or a public reply would answer a post gone upstream."""
    text = text.strip()
    if incident.state in (Incident.State.CLOSED, Incident.State.CANCELED):
        raise ApplicationError(f"{incident.number} is {incident.get_state_display().lower()}; reopen it to reply")
    if post.incident_id != incident.pk:
        raise ApplicationError(f"that post is not part of {incident.number}", field="post")
    if visibility not in Reply.Visibility.values:
        raise ApplicationError("visibility must be public or direct", field="visibility")
    if not text:
        raise ApplicationError("the reply is empty", field="text")
    connector = connector_for(post.channel)
    limits = connector.limits()
    length = connector.reply_length(text)
    if length > limits.max_reply_chars:
        raise ApplicationError(
            f"the reply is {length} {limits.unit}; {post.get_network_display()} allows {limits.max_reply_chars}",
            field="text",
        )
    if visibility == Reply.Visibility.DIRECT and not limits.supports_direct:
        raise ApplicationError(f"{post.get_network_display()} cannot send direct messages here", field="visibility")
    if visibility == Reply.Visibility.PUBLIC and not limits.supports_public:
        raise ApplicationError(f"{post.get_network_display()} does not allow a public reply here", field="visibility")
    refusal = gone_refusal(post, visibility) or connector.reply_refusal(post, visibility)
    if refusal:
        raise ApplicationError(refusal, field="visibility")
    with transaction.atomic():
        reply = Reply.objects.create(
            incident=incident, post=post, channel_id=post.channel_id, visibility=visibility, text=text, agent=agent
        )
        event_record(
            incident, IncidentEvent.Kind.REPLY_QUEUED, actor=agent, new=reply.get_visibility_display(), message=text
        )
        transaction.on_commit(lambda: _enqueue_send(reply.pk), robust=True)
    return reply


def _enqueue_send(reply_id: int) -> None:
    from socialitsm.tasks import reply_send_task

    reply_send_task.delay(reply_id)


def reply_send(*, reply: Reply) -> Reply | None:
    """Send a queued reply once. The status claim is the guard: a reply that is not queued (or
    abandoned mid-send by a dead worker) is left alone. A retry first looks for a copy an
    earlier attempt got onto the network and records that one instead of sending again. Before
    a public reply goes out, the network is asked whether the post still exists; a post gone
    upstream is redacted and fails the reply unsent. The network is called outside any
    transaction. Raises TransientError for a retry; permanent errors mark the reply failed."""
    now = timezone.now()
    claimable = Q(status=Reply.Status.QUEUED) | Q(
        status=Reply.Status.SENDING, claimed_at__lt=now - timedelta(seconds=conf.SEND_LEASE_SECONDS)
    )
    claimed = Reply.objects.filter(claimable, pk=reply.pk).update(
        status=Reply.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        logger.info("reply %s is not claimable; skipped", reply.pk)
        return None
    reply = Reply.objects.select_related("post", "post__author", "post__channel", "channel", "incident").get(
        pk=reply.pk
    )
    connector = connector_for(reply.channel)
    try:
        # A copy already on the network is recorded as sent even if the post has gone since.
        external_id = _earlier_copy(connector, reply)
        if not external_id:
            gone = reply_target_gone(reply=reply)
            if gone:
                return reply_mark_failed(reply=reply, error=gone)
            external_id = connector.reply(
                reply.post, reply.text, reply.visibility, idempotency_key=str(reply.idempotency_key)
            )
    except TransientError as exc:
        # Mirrors the task's backoff, so the recovery sweep does not resend before the retry.
        retry_after = exc.retry_at or now + timedelta(seconds=min(600, 2**reply.attempts))
        Reply.objects.filter(pk=reply.pk, status=Reply.Status.SENDING).update(
            status=Reply.Status.QUEUED, error=exc.message, retry_after=retry_after
        )
        raise
    except PermanentError as exc:
        return reply_mark_failed(reply=reply, error=exc.message)
    return reply_mark_sent(reply=reply, external_id=external_id)


def _earlier_copy(connector: Connector, reply: Reply) -> str:
    """On a retry, the network's id of a copy of `reply` that an earlier attempt got onto the
    network although its answer never reached us (a worker that died, a lost connection); ""
    on a first attempt or when there is none. Copies recorded by other replies are not this
    one's. Raises what `Connector.find_sent` raises: never send blind."""
    if reply.attempts <= 1:
        return ""
    found = connector.find_sent(reply.post, reply.text, reply.visibility, since=reply.created_at - SENT_CLOCK_SKEW)
    taken = set(
        Reply.objects.filter(channel_id=reply.channel_id, external_id__in=found)
        .exclude(pk=reply.pk)
        .values_list("external_id", flat=True)
    )
    earlier = next((external_id for external_id in found if external_id not in taken), "")
    if earlier:
        logger.info("reply %s was already on the network as %s; not sent again", reply.pk, earlier)
    return earlier


def reply_mark_sent(*, reply: Reply, external_id: str) -> Reply:
    """Record that the network took `reply` under `external_id`: the first one sent is the
    incident's first response, and the SLA clocks are replayed. Called by `reply_send`, and by
    the demo, which builds a past week of answered incidents without calling any network."""
    sent_at = timezone.now()
    with transaction.atomic():
        Reply.objects.filter(pk=reply.pk).update(
            status=Reply.Status.SENT, external_id=external_id, sent_at=sent_at, error=""
        )
        event_record(
            reply.incident, IncidentEvent.Kind.REPLY_SENT, actor=reply.agent, new=external_id, message=reply.text
        )
        first = Incident.objects.filter(pk=reply.incident_id, first_response_at__isnull=True).update(
            first_response_at=sent_at
        )
        if first:
            event_record(
                reply.incident,
                IncidentEvent.Kind.FIRST_RESPONSE,
                actor=reply.agent,
                new=f"{sent_at:%Y-%m-%d %H:%M:%S} UTC",
            )
        incident_sla_recompute(incident=reply.incident, now=sent_at)
    reply.refresh_from_db()
    return reply


def reply_mark_failed(*, reply: Reply, error: str) -> Reply:
    """Give up on a reply; the agent sees why on the ticket and may write it again."""
    with transaction.atomic():
        updated = (
            Reply.objects.filter(pk=reply.pk)
            .exclude(status=Reply.Status.SENT)
            .update(status=Reply.Status.FAILED, error=error)
        )
        if updated:
            event_record(reply.incident, IncidentEvent.Kind.REPLY_FAILED, actor=reply.agent, message=error)
    reply.refresh_from_db()
    return reply


def work_recover() -> dict[str, int]:
    """Hand stale work back to the workers: posts stored but never routed (a crash between
    commit and enqueue) and replies queued but never sent or abandoned mid-send."""
    from socialitsm.services.ingest import posts_enqueue_processing

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
        posts_enqueue_processing(post_ids)
    lease = now - timedelta(seconds=conf.SEND_LEASE_SECONDS)
    reply_ids = list(
        Reply.objects.filter(
            Q(status=Reply.Status.QUEUED, created_at__lt=stale) | Q(status=Reply.Status.SENDING, claimed_at__lt=lease)
        )
        .filter(Q(retry_after__isnull=True) | Q(retry_after__lte=now))
        .values_list("id", flat=True)[:1000]
    )
    for reply_id in reply_ids:
        _enqueue_send(reply_id)
    return {"posts": len(post_ids), "replies": len(reply_ids)}


def reply_retry(*, reply: Reply) -> bool:
    """Queue a failed reply for another try."""
    updated = Reply.objects.filter(pk=reply.pk, status=Reply.Status.FAILED).update(
        status=Reply.Status.QUEUED, error="", retry_after=None
    )
    if updated:
        transaction.on_commit(lambda: _enqueue_send(reply.pk), robust=True)
    return bool(updated)
