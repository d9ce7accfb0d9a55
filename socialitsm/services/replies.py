"""Replies: queue an agent's answer, send it through the channel, record what the network said."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from socialitsm import metrics
from socialitsm.backoff import next_attempt_at
from socialitsm.conf import conf
from socialitsm.connectors import Connector, connector_for
from socialitsm.connectors.base import SENT_CLOCK_SKEW
from socialitsm.exceptions import ApplicationError, ConflictError, PermanentError, PrivateDataError, TransientError
from socialitsm.guard import private_data_find
from socialitsm.models import Broadcast, Channel, Incident, IncidentEvent, Post, Reply

from .channels import channel_quota_record
from .deletions import gone_refusal, reply_target_gone
from .events import event_record
from .pacing import channel_next_slot, channel_queue_hold
from .profiles import profile_of, signature_append
from .sending import send_claim, send_due_handover
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
    # Who will see a public reply (a direct message), where the network says more than the
    # word: a Mastodon reply to a followers-only post goes to followers only. "" otherwise.
    public_audience: str = ""
    direct_audience: str = ""


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
        public_audience=connector.reply_audience(post, Reply.Visibility.PUBLIC)
        if limits.supports_public and not public
        else "",
        direct_audience=connector.reply_audience(post, Reply.Visibility.DIRECT)
        if limits.supports_direct and not direct
        else "",
    )


def reply_queue(
    *,
    incident: Incident,
    post: Post,
    text: str,
    visibility: str,
    agent,
    broadcast: Broadcast | None = None,
    send_at: datetime | None = None,
    sign: bool = False,
    confirm_public: bool = False,
) -> Reply:
    """Queue `text` as a public reply or a direct message to the poster of `post`. A reply
    carrying a `broadcast` is one poster's copy of it; with `send_at` in the future it waits
    for that time (its paced slot) and the beat sweep sends it, otherwise it goes at once.
    With `sign`, a public reply carries the agent's signature (counted in the network's limit).

    Raises ApplicationError when the incident is closed, the post is not the incident's, the
    text does not fit the network, or a public reply would answer a post gone upstream;
    PrivateDataError when a public reply looks like it carries private data and the agent has
    not confirmed (`confirm_public`)."""
    text = text.strip()
    if incident.state in (Incident.State.CLOSED, Incident.State.CANCELED):
        raise ApplicationError(f"{incident.number} is {incident.get_state_display().lower()}; reopen it to reply")
    if post.incident_id != incident.pk:
        raise ApplicationError(f"that post is not part of {incident.number}", field="post")
    if visibility not in Reply.Visibility.values:
        raise ApplicationError("visibility must be public or direct", field="visibility")
    if not text:
        raise ApplicationError("the reply is empty", field="text")
    if visibility == Reply.Visibility.PUBLIC and sign and agent is not None:
        text = signature_append(text, signature=profile_of(agent).signature, network=post.network)
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
    if visibility == Reply.Visibility.PUBLIC and not confirm_public:
        reply_privacy_check(text)
    with transaction.atomic():
        reply = Reply.objects.create(
            incident=incident,
            post=post,
            channel_id=post.channel_id,
            visibility=visibility,
            text=text,
            agent=agent,
            broadcast=broadcast,
            retry_after=send_at,
        )
        event_record(
            incident, IncidentEvent.Kind.REPLY_QUEUED, actor=agent, new=reply.get_visibility_display(), message=text
        )
        if send_at is None or send_at <= timezone.now():
            transaction.on_commit(lambda: _enqueue_send(reply.pk), robust=True)
    return reply


def reply_privacy_check(text: str) -> None:
    """Raises PrivateDataError when `text` holds what should not be posted in public (see
    `socialitsm.guard`), naming what it found and suggesting a direct message."""
    findings = private_data_find(text, phone_region=conf.GUARD_PHONE_REGION, digit_run=conf.GUARD_DIGIT_RUN)
    if findings:
        what = ", ".join(dict.fromkeys(f.label for f in findings))
        raise PrivateDataError(
            f"this public reply contains {what}: everyone can read it. Send it as a direct message "
            "instead, or confirm that it may go out publicly.",
            findings=[(f.kind, f.text) for f in findings],
        )


def _enqueue_send(reply_id: int) -> None:
    from socialitsm.tasks import reply_send_task

    reply_send_task.delay(reply_id)


def reply_send(*, reply: Reply) -> Reply | None:
    """Send a queued reply once. The status claim is the guard: a reply that is not queued (or
    abandoned mid-send by a dead worker) is left alone. A retry first looks for a copy an
    earlier attempt got onto the network and records that one instead of sending again. Before
    a public reply goes out, the network is asked whether the post still exists; a post gone
    upstream is redacted and fails the reply unsent. The network is called outside any
    transaction. A transient error queues the reply for a later attempt (`reply_postpone`);
    a permanent one marks it failed. Errors are recorded, not raised."""
    if not send_claim(Reply, reply.pk, now=timezone.now()):
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
        return reply_postpone(reply=reply, error=exc)
    except PermanentError as exc:
        return reply_mark_failed(reply=reply, error=exc.message)
    finally:
        # What the send and the look-ups cost (X bills both) counts on the channel.
        channel_quota_record(channel=reply.channel, quota=connector.quota)
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
            status=Reply.Status.SENT, external_id=external_id, sent_at=sent_at, error="", retry_after=None
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


def reply_postpone(*, reply: Reply, error: TransientError) -> Reply:
    """A transient failure of the attempt `reply_send` claimed: keep the reply queued for the
    next attempt, after a backoff with jitter (or at the time the network named), as long as
    that falls within REPLY_RETRY_HOURS of the first failure; past that, the reply fails. The
    first failure of a window is written to the incident's history, the later ones only to the
    reply (its error, attempts and next attempt)."""
    now = timezone.now()
    retry_until = reply.retry_until or now + timedelta(hours=conf.REPLY_RETRY_HOURS)
    if error.retry_at is not None and error.retry_at > retry_until:
        return reply_mark_failed(
            reply=reply,
            error=f"{error.message}; the network asked to wait until {error.retry_at:%Y-%m-%d %H:%M} UTC, "
            f"after the retry window closed ({retry_until:%Y-%m-%d %H:%M} UTC)",
        )
    if now >= retry_until:
        return reply_mark_failed(
            reply=reply,
            error=f"gave up {_attempts_summary(reply)}, retried until {retry_until:%Y-%m-%d %H:%M} UTC; "
            f"last error: {error.message}",
        )
    retry_at = next_attempt_at(
        reply.attempts, now=now, cap=conf.REPLY_MAX_BACKOFF_SECONDS, retry_at=error.retry_at, jitter=True
    )
    # The last attempt is made as the window closes, not skipped because the backoff overshoots it.
    retry_at = min(retry_at, retry_until)
    with transaction.atomic():
        if reply.broadcast_id is not None:
            # A broadcast's copy waits for a free slot of its channel's pace, as its first try did;
            # a rate limit holds the channel's other paced replies too.
            channel = Channel.objects.select_for_update().get(pk=reply.channel_id)
            if error.retry_at is not None and error.retry_at > now:
                channel_queue_hold(channel, until=error.retry_at)
            retry_at = min(channel_next_slot(channel, not_before=retry_at, exclude_reply=reply.pk), retry_until)
        updated = Reply.objects.filter(pk=reply.pk, status=Reply.Status.SENDING).update(
            status=Reply.Status.QUEUED,
            error=error.message,
            retry_after=retry_at,
            retry_until=retry_until,
            claimed_at=None,
        )
        if updated and reply.retry_until is None:
            event_record(
                reply.incident,
                IncidentEvent.Kind.REPLY_DELAYED,
                new=f"retrying until {retry_until:%Y-%m-%d %H:%M} UTC",
                message=error.message,
            )
    logger.warning("reply %s: %s; next attempt at %s", reply.pk, error.message, retry_at)
    if error.status == 429:
        metrics.rate_limit_wait(reply.channel.network, (retry_at - now).total_seconds())
    reply.refresh_from_db()
    return reply


def reply_mark_failed(*, reply: Reply, error: str) -> Reply:
    """Give up on a reply that is queued or being sent; the agent sees why on the ticket and
    may retry it. A reply sent or canceled meanwhile is left as it is."""
    with transaction.atomic():
        updated = Reply.objects.filter(pk=reply.pk, status__in=(Reply.Status.QUEUED, Reply.Status.SENDING)).update(
            status=Reply.Status.FAILED, error=error, retry_after=None
        )
        if updated:
            event_record(reply.incident, IncidentEvent.Kind.REPLY_FAILED, actor=reply.agent, message=error)
    reply.refresh_from_db()
    return reply


def replies_send_due(*, now: datetime | None = None) -> int:
    """The beat's entry point for replies waiting out a backoff: hand those whose next attempt
    is due to the workers, earliest first. Returns how many. A reply handed over is stamped
    (`claimed_at`), so that while workers are busy the next ticks do not hand it over again; if
    its task is lost, it is handed over again once SEND_LEASE_SECONDS have passed."""
    reply_ids = send_due_handover(Reply, now=now or timezone.now(), limit=1000)
    for reply_id in reply_ids:
        _enqueue_send(reply_id)
    return len(reply_ids)


# -- agents' commands ------------------------------------------------------------------------------


def _refusal(reply: Reply, action: str) -> str:
    if reply.status == Reply.Status.SENT:
        return f"this reply was already sent; there is nothing to {action}"
    if reply.status == Reply.Status.SENDING:
        return "this reply is being sent right now; wait for the network's answer"
    if reply.status == Reply.Status.CANCELED:
        return "this reply was canceled; write it again to send it"
    return f"this reply is queued and has not failed; it is sent shortly, there is nothing to {action}"


def _attempts_summary(reply: Reply) -> str:
    return f"after {reply.attempts} attempt{'s' if reply.attempts != 1 else ''}"


def reply_retry(*, reply: Reply, actor=None) -> Reply:
    """Send a failed reply, or one waiting out a backoff, again now; its backoff and retry
    window start over. The attempts made count as one, so that the next send first looks for a
    copy one of them got onto the network (`_earlier_copy`) instead of sending blind. Raises
    ConflictError when the reply is in no state to retry (or the incident is closed)."""
    with transaction.atomic():
        locked = Reply.objects.select_for_update(of=("self",)).select_related("incident").get(pk=reply.pk)
        if not locked.can_retry:
            raise ConflictError(_refusal(locked, "retry"))
        incident = locked.incident
        if incident.state in (Incident.State.CLOSED, Incident.State.CANCELED):
            raise ConflictError(f"{incident.number} is {incident.get_state_display().lower()}; reopen it to reply")
        Reply.objects.filter(pk=locked.pk).update(
            status=Reply.Status.QUEUED,
            attempts=min(locked.attempts, 1),
            error="",
            retry_after=None,
            retry_until=None,
            claimed_at=None,
        )
        event_record(
            incident,
            IncidentEvent.Kind.REPLY_RETRIED,
            actor=actor,
            old=locked.get_status_display(),
            new=Reply.Status.QUEUED.label,
            message=f"{_attempts_summary(locked)}: {locked.error}" if locked.error else _attempts_summary(locked),
        )
        transaction.on_commit(lambda: _enqueue_send(locked.pk), robust=True)
    locked.refresh_from_db()
    return locked


def reply_cancel(*, reply: Reply, actor=None) -> Reply:
    """Withdraw a reply that is queued, waiting out a backoff or failed: it is never sent, even
    by a task already on its way (the send claims only queued replies). Raises ConflictError
    for a reply being sent, sent or canceled already."""
    with transaction.atomic():
        locked = Reply.objects.select_for_update(of=("self",)).select_related("incident").get(pk=reply.pk)
        if not locked.can_cancel:
            raise ConflictError(_refusal(locked, "cancel"))
        Reply.objects.filter(pk=locked.pk).update(status=Reply.Status.CANCELED, retry_after=None)
        event_record(
            locked.incident,
            IncidentEvent.Kind.REPLY_CANCELED,
            actor=actor,
            old=locked.get_status_display(),
            new=Reply.Status.CANCELED.label,
            message=locked.text,
        )
    locked.refresh_from_db()
    return locked
