"""Broadcasts: one message to every poster a major incident affects, personalised, previewed,
confirmed by an agent and sent as paced, tracked replies on each poster's own incident; and the
standalone status post a channel publishes about the outage.

Nothing is sent by a draft: `broadcast_create` (or `broadcast_propose_fixed`) writes it,
`broadcast_preview` says who would get which text and who is left out and why, and only
`broadcast_confirm`, called for an agent, queues the replies. Confirming twice sends nothing
twice: the broadcast row is locked and confirmed once, and each poster's incident holds at most
one reply of a broadcast (a database constraint)."""

from __future__ import annotations

import logging
import string
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from socialitsm import selectors
from socialitsm.backoff import next_attempt_at
from socialitsm.conf import conf
from socialitsm.connectors import Connector, connector_for
from socialitsm.exceptions import ApplicationError, ConflictError, PermanentError, TransientError
from socialitsm.models import Author, Broadcast, Channel, Incident, IncidentEvent, Post, Reply, StatusPost

from .events import event_record
from .pacing import channel_next_slot, channel_pace_interval
from .replies import reply_options, reply_queue
from .sending import send_claim, send_due_handover

logger = logging.getLogger(__name__)

VARIABLES = ("name", "handle", "service", "incident")
MAX_TEMPLATE_CHARS = 5000

# Why a poster is left out (`Recipient.reason_code`).
ALREADY_HAD = "already_had"
NO_REPLY = "no_reply"
TOO_LONG = "too_long"
CLOSED = "closed"
EXCLUDED = "excluded"

_CLOSED_STATES = (Incident.State.CLOSED, Incident.State.CANCELED)


# -- the template ----------------------------------------------------------------------------------


def template_parse(text: str, variables: tuple[str, ...] = VARIABLES) -> list[tuple[str, str]]:
    """`text` as (literal, variable) pairs, "" where a part has no variable. Only the plain
    variables of `variables` are allowed: no attribute or index access, no conversion, no format
    spec, no positional fields; "{{" and "}}" are literal braces.

    Raises ApplicationError (field "text") naming the first thing that is not allowed."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ApplicationError(
            f"the message has a stray brace ({exc}); write {{{{ or }}}} for a brace itself", field="text"
        ) from None
    out = []
    allowed = ", ".join(f"{{{name}}}" for name in variables)
    for literal, name, spec, conversion in parts:
        if name is None:
            out.append((literal, ""))
            continue
        if name not in variables or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ApplicationError(f"unknown variable {shown}; the message may use {allowed}", field="text")
        out.append((literal, name))
    return out


def template_render(parts: list[tuple[str, str]], values: dict[str, str]) -> str:
    """The parsed template filled with `values`; values are inserted as they are, never parsed."""
    return "".join(literal + (values[name] if name else "") for literal, name in parts).strip()


def recipient_values(*, author: Author, incident: Incident, major: Incident) -> dict[str, str]:
    """What the variables stand for, for one poster."""
    handle = author.handle or author.name or author.external_id
    service = major.service or incident.service
    return {
        "name": author.name or handle.lstrip("@"),
        "handle": handle,
        "service": service.name if service else major.short_description,
        "incident": incident.number,
    }


# -- preview ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """One affected poster as a broadcast sees them: what they would get, or why not."""

    author: Author
    post: Post
    incident: Incident
    channel: Channel
    text: str
    visibility: str
    length: int
    limit: int
    unit: str
    reason_code: str = ""
    reason: str = ""

    @property
    def sendable(self) -> bool:
        return not self.reason_code


@dataclass(frozen=True)
class BroadcastPreview:
    broadcast: Broadcast
    recipients: list[Recipient] = field(default_factory=list)

    @property
    def to_send(self) -> list[Recipient]:
        return [r for r in self.recipients if r.sendable]

    @property
    def left_out(self) -> list[Recipient]:
        return [r for r in self.recipients if not r.sendable]


def broadcast_preview(broadcast: Broadcast) -> BroadcastPreview:
    """Every affected poster of the broadcast's major incident with the personalised text and
    the way it would go (public reply, or a direct message where the network refuses a public
    one or the broadcast asks for direct messages), and those left out with the reason: they
    already had this message, no reply is possible, the text is too long for their network, or
    their incident is closed. Reads only; no network is called.

    Raises ApplicationError when the template uses an unknown variable."""
    major = broadcast.incident
    parts = template_parse(broadcast.text)
    had = selectors.broadcast_already_had(broadcast)
    connectors: dict[int, Connector] = {}
    recipients = []
    for post in selectors.major_poster_posts(major):
        incident = post.incident
        if incident is None:
            continue
        connector = connectors.get(post.channel_id) or connectors.setdefault(
            post.channel_id, connector_for(post.channel)
        )
        text = template_render(parts, recipient_values(author=post.author, incident=incident, major=major))
        limits = connector.limits()
        length = connector.reply_length(text)
        visibility, code, reason = _way(broadcast, post)
        if post.author_id in had:
            code, reason = ALREADY_HAD, "already had this message"
        elif incident.state in _CLOSED_STATES:
            code, reason = CLOSED, f"{incident.number} is {incident.get_state_display().lower()}"
        elif not code and not text:
            code, reason = TOO_LONG, "the message is empty for this poster"
        elif not code and length > limits.max_reply_chars:
            code = TOO_LONG
            reason = (
                f"the message is {length} {limits.unit} for this poster; "
                f"{post.get_network_display()} allows {limits.max_reply_chars}"
            )
        recipients.append(
            Recipient(
                author=post.author,
                post=post,
                incident=incident,
                channel=post.channel,
                text=text,
                visibility=visibility if not code else "",
                length=length,
                limit=limits.max_reply_chars,
                unit=limits.unit,
                reason_code=code,
                reason=reason,
            )
        )
    return BroadcastPreview(broadcast=broadcast, recipients=recipients)


def _way(broadcast: Broadcast, post: Post) -> tuple[str, str, str]:
    """(visibility, "", "") for how the message reaches the poster of `post`, or ("", NO_REPLY,
    why) when neither way is open."""
    options = reply_options(post)
    wanted = [Reply.Visibility.DIRECT]
    if broadcast.visibility == Broadcast.Visibility.PUBLIC and not post.is_direct:
        wanted.insert(0, Reply.Visibility.PUBLIC)
    refusals = []
    for visibility in wanted:
        refusal = options.public_refusal if visibility == Reply.Visibility.PUBLIC else options.direct_refusal
        if not refusal:
            return visibility, "", ""
        refusals.append(refusal)
    return "", NO_REPLY, "no reply possible: " + "; ".join(refusals)


# -- writes ----------------------------------------------------------------------------------------


def _check_major(major: Incident) -> None:
    if not major.is_major:
        raise ApplicationError(f"{major.number} is not a major incident; broadcasts go to a major incident's posters")
    if major.state in _CLOSED_STATES:
        raise ApplicationError(f"{major.number} is {major.get_state_display().lower()}; reopen it to broadcast")


def _clean_text(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ApplicationError("the message is empty", field="text")
    if len(text) > MAX_TEMPLATE_CHARS:
        raise ApplicationError(f"the message is longer than {MAX_TEMPLATE_CHARS} characters", field="text")
    template_parse(text)
    return text


def _clean_visibility(visibility: str) -> str:
    if visibility not in Broadcast.Visibility.values:
        raise ApplicationError("visibility must be public or direct", field="visibility")
    return visibility


def broadcast_create(
    *,
    major: Incident,
    text: str,
    actor,
    kind: str = Broadcast.Kind.UPDATE,
    visibility: str = Broadcast.Visibility.PUBLIC,
) -> Broadcast:
    """A draft broadcast on `major`: nothing is sent until an agent confirms it.

    Raises ApplicationError for an incident that is not major (or is closed), an empty text or
    a template with unknown variables."""
    _check_major(major)
    if kind not in Broadcast.Kind.values:
        raise ApplicationError("kind must be update or fixed", field="kind")
    text = _clean_text(text)
    with transaction.atomic():
        broadcast = Broadcast.objects.create(
            incident=major, kind=kind, text=text, visibility=_clean_visibility(visibility), created_by=actor
        )
        event_record(
            major,
            IncidentEvent.Kind.BROADCAST_DRAFTED,
            actor=actor,
            new=broadcast.get_kind_display(),
            message=text,
        )
    return broadcast


def broadcast_propose_fixed(*, major: Incident, actor=None) -> Broadcast:
    """A draft "fixed" broadcast for `major` with SOCIALITSM_BROADCAST_FIXED_TEXT, ready for an
    agent to edit and confirm; called when the major incident is resolved. A draft proposed
    before is returned as it is, so the resolution cascade may call this more than once."""
    existing = selectors.broadcast_fixed_draft(major)
    if existing is not None:
        return existing
    if not major.is_major:
        raise ApplicationError(f"{major.number} is not a major incident")
    return broadcast_create(major=major, text=conf.BROADCAST_FIXED_TEXT, actor=actor, kind=Broadcast.Kind.FIXED)


def broadcast_update(
    *, broadcast: Broadcast, actor, text: str | None = None, visibility: str | None = None
) -> Broadcast:
    """Change a draft's text or visibility. Raises ConflictError once it is confirmed or
    discarded, ApplicationError for a bad text."""
    with transaction.atomic():
        locked = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
        if locked.status != Broadcast.Status.DRAFT:
            raise ConflictError(f"this broadcast is {locked.get_status_display().lower()}; write a new one")
        if text is not None:
            locked.text = _clean_text(text)
        if visibility is not None:
            locked.visibility = _clean_visibility(visibility)
        locked.save(update_fields=["text", "visibility"])
    return locked


def broadcast_discard(*, broadcast: Broadcast, actor) -> Broadcast:
    """Throw a draft away. Raises ConflictError for a confirmed broadcast."""
    with transaction.atomic():
        locked = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
        if locked.status == Broadcast.Status.CONFIRMED:
            raise ConflictError("this broadcast is confirmed; cancel its queued replies one by one instead")
        locked.status = Broadcast.Status.DISCARDED
        locked.save(update_fields=["status"])
    return locked


def broadcast_confirm(*, broadcast: Broadcast, actor, exclude: Collection[int] = ()) -> Broadcast:
    """An agent's go: queue one reply per poster of the preview as it stands now, except the
    authors in `exclude` and those left out (see `broadcast_preview`), each on the poster's own
    incident and paced per channel (`pacing.channel_next_slot`): the first on each channel is
    sent at once, the next ones when their slot comes (`replies_send_due`).

    Idempotent: a broadcast confirmed already is returned as it is and nothing is queued again.
    Raises ConflictError for a discarded draft, ApplicationError for an exclusion that names
    no affected poster, a template that became invalid, or a major incident closed meanwhile."""
    now = timezone.now()
    with transaction.atomic():
        locked = (
            Broadcast.objects.select_for_update(of=("self",)).select_related("incident__service").get(pk=broadcast.pk)
        )
        if locked.status == Broadcast.Status.CONFIRMED:
            logger.info("broadcast %s is confirmed already; nothing queued again", locked.pk)
            return locked
        if locked.status != Broadcast.Status.DRAFT:
            raise ConflictError(f"this broadcast is {locked.get_status_display().lower()}; write a new one")
        _check_major(locked.incident)
        preview = broadcast_preview(locked)
        excluded = {int(author_id) for author_id in exclude}
        unknown = excluded - {r.author.pk for r in preview.recipients}
        if unknown:
            raise ApplicationError(
                f"not an affected poster of {locked.incident.number}: {', '.join(map(str, sorted(unknown)))}",
                field="exclude",
            )
        channels = {
            c.pk: c
            for c in Channel.objects.select_for_update()
            .filter(pk__in={r.channel.pk for r in preview.to_send})
            .order_by("pk")
        }
        slots: dict[int, datetime] = {}
        queued = 0
        skipped = []
        for recipient in preview.recipients:
            code, reason = recipient.reason_code, recipient.reason
            if not code and recipient.author.pk in excluded:
                code, reason = EXCLUDED, "left out by the agent"
            if not code:
                channel = channels[recipient.channel.pk]
                previous = slots.get(channel.pk)
                send_at = (
                    previous + channel_pace_interval(channel)
                    if previous is not None
                    else channel_next_slot(channel, not_before=now)
                )
                try:
                    reply_queue(
                        incident=recipient.incident,
                        post=recipient.post,
                        text=recipient.text,
                        visibility=recipient.visibility,
                        agent=actor,
                        broadcast=locked,
                        send_at=send_at,
                    )
                except ApplicationError as exc:
                    code, reason = NO_REPLY, exc.message
                else:
                    slots[channel.pk] = send_at
                    queued += 1
                    continue
            skipped.append(
                {"author": recipient.author.pk, "handle": recipient.author.handle, "code": code, "reason": reason}
            )
        locked.status = Broadcast.Status.CONFIRMED
        locked.confirmed_by = actor
        locked.confirmed_at = now
        locked.excluded = sorted(excluded)
        locked.skipped = skipped
        locked.recipient_count = queued
        locked.save(
            update_fields=[
                "status",
                "confirmed_by",
                "confirmed_at",
                "excluded",
                "skipped",
                "recipient_count",
            ]
        )
        event_record(
            locked.incident,
            IncidentEvent.Kind.BROADCAST_CONFIRMED,
            actor=actor,
            new=f"{queued} queued, {len(skipped)} left out",
            message=locked.text,
        )
    return locked


# -- status posts ----------------------------------------------------------------------------------


def status_post_publish(*, major: Incident, channel: Channel, text: str, actor) -> StatusPost:
    """Queue one standalone post on `channel` about `major` ("We know e-mail is down, updates
    here"); it is sent by a task outside any transaction. One per channel and major incident.

    Raises ApplicationError when the incident is not major or closed, the channel is disabled
    or its network has no status posts, or the text is empty or too long; ConflictError when
    the channel already has this incident's status post."""
    _check_major(major)
    text = (text or "").strip()
    if not text:
        raise ApplicationError("the status post is empty", field="text")
    if not channel.enabled:
        raise ApplicationError(f"{channel.name} is disabled", field="channel")
    connector = connector_for(channel)
    refusal = connector.status_refusal()
    if refusal:
        raise ApplicationError(refusal, field="channel")
    limits = connector.limits()
    length = connector.reply_length(text)
    if length > limits.max_reply_chars:
        raise ApplicationError(
            f"the status post is {length} {limits.unit}; "
            f"{channel.get_network_display()} allows {limits.max_reply_chars}",
            field="text",
        )
    with transaction.atomic():
        if StatusPost.objects.select_for_update().filter(incident=major, channel=channel).exists():
            raise ConflictError(f"{channel.name} already has a status post for {major.number}")
        status_post = StatusPost.objects.create(incident=major, channel=channel, text=text, agent=actor)
        event_record(major, IncidentEvent.Kind.STATUS_POST_QUEUED, actor=actor, new=channel.name, message=text)
        transaction.on_commit(lambda: _enqueue_status_post(status_post.pk), robust=True)
    return status_post


def _enqueue_status_post(status_post_id: int) -> None:
    from socialitsm.tasks import status_post_send_task

    status_post_send_task.delay(status_post_id)


def status_post_send(*, status_post: StatusPost) -> StatusPost | None:
    """Send a queued status post once: claimed by a conditional update, the network called
    outside any transaction, the outcome recorded. A transient error keeps it queued for a
    later attempt (backoff within REPLY_RETRY_HOURS); a permanent one marks it failed."""
    if not send_claim(StatusPost, status_post.pk, now=timezone.now()):
        logger.info("status post %s is not claimable; skipped", status_post.pk)
        return None
    status_post = StatusPost.objects.select_related("channel", "incident", "agent").get(pk=status_post.pk)
    try:
        external_id, url = connector_for(status_post.channel).post_status(
            status_post.text, idempotency_key=str(status_post.idempotency_key)
        )
    except TransientError as exc:
        return _status_post_postpone(status_post, exc)
    except PermanentError as exc:
        return _status_post_fail(status_post, exc.message)
    with transaction.atomic():
        StatusPost.objects.filter(pk=status_post.pk).update(
            status=StatusPost.Status.SENT,
            external_id=external_id,
            url=url,
            sent_at=timezone.now(),
            error="",
            retry_after=None,
        )
        event_record(
            status_post.incident,
            IncidentEvent.Kind.STATUS_POST_SENT,
            actor=status_post.agent,
            new=url or external_id,
            message=status_post.text,
        )
    status_post.refresh_from_db()
    return status_post


def _status_post_postpone(status_post: StatusPost, error: TransientError) -> StatusPost:
    now = timezone.now()
    retry_until = status_post.retry_until or now + timedelta(hours=conf.REPLY_RETRY_HOURS)
    if now >= retry_until or (error.retry_at is not None and error.retry_at > retry_until):
        return _status_post_fail(status_post, f"gave up after {status_post.attempts} attempts: {error.message}")
    retry_at = min(
        next_attempt_at(
            status_post.attempts, now=now, cap=conf.REPLY_MAX_BACKOFF_SECONDS, retry_at=error.retry_at, jitter=True
        ),
        retry_until,
    )
    StatusPost.objects.filter(pk=status_post.pk, status=StatusPost.Status.SENDING).update(
        status=StatusPost.Status.QUEUED,
        error=error.message,
        retry_after=retry_at,
        retry_until=retry_until,
        claimed_at=None,
    )
    logger.warning("status post %s: %s; next attempt at %s", status_post.pk, error.message, retry_at)
    status_post.refresh_from_db()
    return status_post


def _status_post_fail(status_post: StatusPost, error: str) -> StatusPost:
    with transaction.atomic():
        updated = StatusPost.objects.filter(
            pk=status_post.pk, status__in=(StatusPost.Status.QUEUED, StatusPost.Status.SENDING)
        ).update(status=StatusPost.Status.FAILED, error=error, retry_after=None)
        if updated:
            event_record(
                status_post.incident, IncidentEvent.Kind.STATUS_POST_FAILED, actor=status_post.agent, message=error
            )
    status_post.refresh_from_db()
    return status_post


def status_posts_send_due(*, now: datetime | None = None) -> int:
    """The beat's entry point for status posts waiting out a backoff: hand those due to the
    workers. Returns how many. Stamped like replies (`replies_send_due`) so busy workers are
    not handed the same one twice before the lease passes."""
    ids = send_due_handover(StatusPost, now=now or timezone.now(), limit=200)
    for status_post_id in ids:
        _enqueue_status_post(status_post_id)
    return len(ids)


def status_post_retry(*, status_post: StatusPost, actor) -> StatusPost:
    """Send a failed status post again now. Raises ConflictError unless it failed."""
    with transaction.atomic():
        updated = StatusPost.objects.filter(pk=status_post.pk, status=StatusPost.Status.FAILED).update(
            status=StatusPost.Status.QUEUED, error="", retry_after=None, retry_until=None, claimed_at=None
        )
        if not updated:
            raise ConflictError("only a failed status post can be sent again")
        transaction.on_commit(lambda: _enqueue_status_post(status_post.pk), robust=True)
    status_post.refresh_from_db()
    return status_post
