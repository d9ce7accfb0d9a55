"""Deletions: redact posts gone from their network, find them by asking the network again, and
never answer one in public.

Deletions arrive three ways: a stream's delete event or a listing's "[deleted]" (ingest), the
re-check sweep that asks the network after the posts of live incidents (`channel_posts_recheck`),
and the look-up just before a public reply is sent (`reply_target_gone`). All three end in
`posts_redact`, which removes the post's words from the post, its incident's title and
description, the audit trail and the ITSM sync's record of what it pushed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from socialitsm.connectors import InboundPost, connector_for
from socialitsm.connectors.base import Connector
from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import (
    Channel,
    Incident,
    IncidentEvent,
    ItsmDelivery,
    ItsmLink,
    Post,
    PostRevision,
    Reply,
    id_scope,
)

from .channels import channel_quota_record
from .events import event_build, events_record

logger = logging.getLogger(__name__)

# What the post's text becomes, and the title of an incident whose title quoted it.
REDACTED_TEXT = {
    Post.Gone.DELETED: "[deleted by the author]",
    Post.Gone.REMOVED: "[removed by moderators]",
    Post.Gone.ERASED: "[erased at the poster's request]",
}
REDACTED_TITLE = {
    Post.Gone.DELETED: "Post deleted by its author",
    Post.Gone.REMOVED: "Post removed by moderators",
    Post.Gone.ERASED: "Post erased at the poster's request",
}
REDACTED_EVENT = {
    Post.Gone.DELETED: "The author deleted this post; our copy was redacted.",
    Post.Gone.REMOVED: "Moderators or the network removed this post; our copy was redacted.",
    Post.Gone.ERASED: "The poster asked to be forgotten; our copy was redacted.",
}
# Why a public reply to a gone post is refused (queue) or failed (send).
GONE_REFUSAL = {
    Post.Gone.DELETED: "the post was deleted by its author, so it cannot be answered in public; "
    "send a direct message instead",
    Post.Gone.REMOVED: "the post was removed by moderators, so it cannot be answered in public; "
    "send a direct message instead",
    Post.Gone.ERASED: "the poster asked to be forgotten, so they cannot be answered",
}
# Incidents whose posts are still asked after: everything an agent may still answer.
RECHECK_STATES = (*Incident.OPEN_STATES, Incident.State.RESOLVED)
# Events that hold our own words (replies); everything else may quote the post.
_OUR_WORDS = (IncidentEvent.Kind.REPLY_QUEUED, IncidentEvent.Kind.REPLY_SENT, IncidentEvent.Kind.REPLY_FAILED)
# A copy of the text cut short (a title, a truncated log line) is recognised from this many
# characters on; a shorter text only where it appears whole.
_MIN_FRAGMENT = 12


def text_without(value: str, text: str, marker: str) -> str:
    """`value` with every copy of `text` replaced by `marker`: as written, on one line (as
    `shorten` writes titles and event messages), or cut short after at least _MIN_FRAGMENT
    characters (with the ellipsis `shorten` adds). A shorter text ("VPN down") is taken out
    only where it is the whole value or a whole line, not from inside other words."""
    if not value or not text.strip():
        return value
    flat = " ".join(text.split())
    if len(flat) < _MIN_FRAGMENT:
        if " ".join(value.split()) == flat:
            return marker
        if "\n" in text.strip():
            return value.replace(text, marker)
        return "\n".join(marker if " ".join(line.split()) == flat else line for line in value.split("\n"))
    value = value.replace(text, marker).replace(flat, marker)
    head = flat[:_MIN_FRAGMENT]
    pieces: list[str] = []
    start = 0
    while (found := value.find(head, start)) >= 0:
        length = len(head)
        while found + length < len(value) and length < len(flat) and value[found + length] == flat[length]:
            length += 1
        while value[found + length - 1].isspace():
            length -= 1  # the copy ends at its last word, not at the space after it
        pieces += [value[start:found], marker]
        start = found + length
        if value.startswith("…", start):
            start += 1
    pieces.append(value[start:])
    return "".join(pieces)


def posts_redact(
    *,
    network: str,
    external_ids: Sequence[str],
    scope: str = "",
    reason: str = Post.Gone.DELETED,
    now: datetime | None = None,
) -> int:
    """Redact our copies of posts gone upstream: the text is replaced, the payload and the
    classifier's quoted reasons dropped, and the post marked gone with the time and `reason`
    (Post.Gone); the versions it had before edits (PostRevision) are deleted. Its words, in
    every version, are also taken out of its incident: a title quoting the post becomes
    a neutral one, the description and the audit trail lose the text, and what the ITSM sync
    last pushed forgets it (so the next sync pushes the redacted fields). An event records the
    redaction, without the text. The row and its incident link stay for the record; a post
    still waiting for classification is set aside. Only posts of `scope` are touched (see
    `id_scope`: on webhook channels, the calling channel's own). Idempotent; unknown ids are
    ignored. Returns posts redacted."""
    now = now or timezone.now()
    with transaction.atomic():
        targets = list(
            Post.objects.select_for_update(of=("self",))
            .filter(network=network, scope=scope, external_id__in=list(external_ids), deleted_at__isnull=True)
            .order_by("external_id")
        )
        if not targets:
            return 0
        ids = [post.pk for post in targets]
        # Every version the post had: its words come out of the incident whichever one was quoted.
        texts: dict[int, list[str]] = defaultdict(list)
        for post in targets:
            texts[post.pk].append(post.text)
        for post_id, text in PostRevision.objects.filter(post_id__in=ids).values_list("post_id", "text"):
            texts[post_id].append(text)
        PostRevision.objects.filter(post_id__in=ids).delete()
        Post.objects.filter(pk__in=ids).update(
            text=REDACTED_TEXT[Post.Gone(reason)], raw={}, details=[], reasons=[], deleted_at=now, gone_reason=reason
        )
        Post.objects.filter(pk__in=ids, triage_state=Post.Triage.PENDING).update(triage_state=Post.Triage.IGNORED)
        by_incident: dict[int, list[Post]] = defaultdict(list)
        for post in targets:
            if post.incident_id is not None:
                by_incident[post.incident_id].append(post)
        for incident_id in sorted(by_incident):
            _incident_redact(incident_id, by_incident[incident_id], texts, Post.Gone(reason), now)
    return len(targets)


def posts_redact_seen(*, network: str, posts: Sequence[InboundPost], scope: str = "") -> int:
    """Redact our copies of the deletions a stream, listing or webhook reported (see
    `posts_redact`; `scope` is the reporting channel's), each with the reason the network
    gave. Returns posts redacted."""
    reasons: dict[str, str] = {}
    for post in posts:
        reasons.setdefault(post.external_id, post.gone_reason or Post.Gone.DELETED)
    return sum(
        posts_redact(
            network=network,
            scope=scope,
            external_ids=sorted(i for i, r in reasons.items() if r == reason),
            reason=reason,
        )
        for reason in sorted(set(reasons.values()))
    )


def _incident_redact(
    incident_id: int, posts: list[Post], texts_by_post: dict[int, list[str]], reason: Post.Gone, now: datetime
) -> None:
    incident = Incident.objects.select_for_update().get(pk=incident_id)
    marker = REDACTED_TEXT[reason]
    texts = [text for post in posts for text in texts_by_post[post.pk]]
    title, description = incident.short_description, incident.description
    for text in texts:
        if text_without(title, text, marker) != title:
            title = REDACTED_TITLE[reason]
        description = text_without(description, text, marker)
    if (title, description) != (incident.short_description, incident.description):
        Incident.objects.filter(pk=incident.pk).update(short_description=title, description=description, updated_at=now)
    for event in IncidentEvent.objects.filter(incident=incident).exclude(kind__in=_OUR_WORDS):
        fields = {
            "message": _without_texts(event.message, texts, marker),
            "old_value": _without_texts(event.old_value, texts, marker),
            "new_value": _without_texts(event.new_value, texts, marker),
        }
        if event.kind == IncidentEvent.Kind.OPENED:
            for post in posts:
                quoted = ", ".join(post.reasons or [])
                if quoted:
                    fields["message"] = fields["message"].replace(quoted, "reasons withheld: the post is gone")
        if any(getattr(event, name) != value for name, value in fields.items()):
            IncidentEvent.objects.filter(pk=event.pk).update(**fields)
    _itsm_forget(incident, texts, marker)
    events_record(
        [
            event_build(
                incident,
                IncidentEvent.Kind.POST_DELETED,
                old=f"{post.network}:{post.external_id}",
                message=REDACTED_EVENT[reason],
            )
            for post in posts
        ]
    )


def _without_texts(value: str, texts: list[str], marker: str) -> str:
    for text in texts:
        value = text_without(value, text, marker)
    return value


def _itsm_forget(incident: Incident, texts: list[str], marker: str) -> None:
    """Drop the pushed fields that quoted the posts, so the next sync sends their redacted
    values, and take the words out of the delivery log."""
    for link in ItsmLink.objects.filter(incident=incident).only("pk", "pushed"):
        pushed = link.pushed if isinstance(link.pushed, dict) else {}
        kept = {
            name: value
            for name, value in pushed.items()
            if not isinstance(value, str) or _without_texts(value, texts, marker) == value
        }
        if kept != pushed:
            ItsmLink.objects.filter(pk=link.pk).update(pushed=kept)
    for delivery in ItsmDelivery.objects.filter(link__incident=incident).only("pk", "detail"):
        detail = _without_texts(delivery.detail, texts, marker)
        if detail != delivery.detail:
            ItsmDelivery.objects.filter(pk=delivery.pk).update(detail=detail)


# -- asking the network again ------------------------------------------------------------------


@dataclass
class RecheckResult:
    checked: int = 0
    gone: int = 0
    error: str = ""


def _due(channel: Channel, before: datetime) -> QuerySet[Post]:
    """Live posts of this channel's incidents an agent may still answer, not looked up since `before`."""
    return Post.objects.filter(
        channel=channel,
        deleted_at__isnull=True,
        incident__isnull=False,
        incident__state__in=RECHECK_STATES,
    ).filter(Q(checked_at__isnull=True) | Q(checked_at__lt=before))


def channels_recheck_due(*, now: datetime | None = None) -> list[int]:
    """Hand every channel that has posts due for a look-up to a re-check task. Channels that are
    disabled, failing (a wrong base URL would answer 404 for every post), waiting for a rate
    limit to reset or on a network without a look-up are left alone."""
    from socialitsm.tasks import channel_posts_recheck_task

    now = now or timezone.now()
    handed = []
    channels = (
        Channel.objects.filter(enabled=True)
        .exclude(health=Channel.Health.FAILING)
        .exclude(rate_limited_until__gt=now)
        .order_by("pk")
    )
    for channel in channels:
        connector = _connector(channel)
        if connector is None:
            continue
        interval, _ = connector.recheck_budget()
        if _due(channel, now - interval).exists():
            handed.append(channel.pk)
            channel_posts_recheck_task.delay(channel.pk)
    return handed


def channel_posts_recheck(*, channel: Channel, now: datetime | None = None) -> RecheckResult:
    """Ask the network whether the posts of this channel's live incidents still exist, least
    recently asked first, within the channel's budget, and redact the ones gone.

    Each post is stamped as checked before the call, so concurrent sweeps take different posts
    and the next sweep moves on to others. Network errors end the sweep early and are
    logged, never raised: those posts are asked again once their interval has passed. A rate
    limit the network names holds the channel's look-ups until it resets."""
    now = now or timezone.now()
    result = RecheckResult()
    connector = _connector(channel)
    if connector is None or (channel.rate_limited_until is not None and channel.rate_limited_until > now):
        return result
    interval, budget = connector.recheck_budget()
    due = _due(channel, now - interval)
    ids = list(due.order_by(F("checked_at").asc(nulls_first=True), "pk").values_list("pk", flat=True)[:budget])
    # The conditional update is the claim: a post another sweep stamped meanwhile is not due any more.
    due.filter(pk__in=ids).update(checked_at=now)
    posts = list(Post.objects.filter(pk__in=ids, checked_at=now).select_related("author").order_by("pk"))
    gone: dict[str, str] = {}
    try:
        for start in range(0, len(posts), connector.lookup_batch):
            batch = posts[start : start + connector.lookup_batch]
            gone.update(connector.posts_gone(batch))
            result.checked += len(batch)
    except (TransientError, PermanentError) as exc:
        logger.warning("re-check of channel %s stopped: %s", channel.slug, exc.message)
        result.error = exc.message
        retry_at = exc.retry_at if isinstance(exc, TransientError) else None
        if retry_at is not None and retry_at > now:
            Channel.objects.filter(pk=channel.pk).filter(
                Q(rate_limited_until__isnull=True) | Q(rate_limited_until__lt=retry_at)
            ).update(rate_limited_until=retry_at)
    finally:
        _quota_record(channel, connector)
    for reason in sorted(set(gone.values())):
        result.gone += posts_redact(
            network=channel.network,
            scope=id_scope(channel),
            external_ids=[i for i, r in gone.items() if r == reason],
            reason=reason,
            now=now,
        )
    return result


def reply_target_gone(*, reply: Reply) -> str:
    """Before a public reply is sent: ask the network whether the post it answers still exists.
    Returns why the reply must not go out ("" when it may): the post was already known gone, or
    the network says it is, in which case it is redacted first.

    Raises TransientError when the network cannot tell now (the reply is retried later). A
    look-up the network refuses (PermanentError) decides nothing: the reply itself gets the
    network's own verdict."""
    post = reply.post
    if reply.visibility != Reply.Visibility.PUBLIC:
        return ""
    if post.deleted_at is None:
        connector = _connector(reply.channel)
        if connector is None:
            return ""
        try:
            gone = connector.posts_gone([post])
        except PermanentError as exc:
            logger.warning("could not look up %s before replying: %s", post, exc.message)
            return ""
        finally:
            _quota_record(reply.channel, connector)
        Post.objects.filter(pk=post.pk).update(checked_at=timezone.now())
        if post.external_id not in gone:
            return ""
        posts_redact(
            network=post.network, scope=post.scope, external_ids=[post.external_id], reason=gone[post.external_id]
        )
        post.refresh_from_db()
    return gone_refusal(post, Reply.Visibility.PUBLIC)


def gone_refusal(post: Post, visibility: str) -> str:
    """Why a reply of this visibility cannot answer `post` because it is gone ("" if it can):
    a public reply to a deleted post would answer nothing and quote the poster's words back.
    A direct message still reaches the person, unless they asked to be forgotten."""
    if post.deleted_at is None:
        return ""
    if visibility != Reply.Visibility.PUBLIC and post.gone_reason != Post.Gone.ERASED:
        return ""
    return GONE_REFUSAL[Post.Gone(post.gone_reason or Post.Gone.DELETED)]


def _connector(channel: Channel) -> Connector | None:
    """The channel's connector when its network can look posts up, else None."""
    try:
        connector = connector_for(channel)
    except LookupError:
        return None
    return connector if connector.lookup_batch > 0 else None


def _quota_record(channel: Channel, connector: Connector) -> None:
    channel_quota_record(channel=channel, quota=connector.quota)
