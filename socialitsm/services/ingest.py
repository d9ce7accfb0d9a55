"""Ingest: store inbound posts exactly once, move cursors only with them, and poll channels."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connection, models, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Collate
from django.utils import timezone

from socialitsm import datetimes, metrics
from socialitsm.conf import conf
from socialitsm.connectors import InboundPost, connector_for
from socialitsm.connectors.base import OWN_ACCOUNT_KEY, Cursor, DetailKind, InboundAuthor, PostDetail
from socialitsm.db import rows_update, values_insert_new
from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.logcontext import error_summary
from socialitsm.models import Author, Channel, IngestRejection, Post, Reply, WatchRule, id_scope
from socialitsm.text import clean_json, clean_text

from .channels import channel_error_record, channel_quota_record
from .deletions import posts_redact_seen
from .edits import post_edits_apply

logger = logging.getLogger(__name__)

PROCESS_CHUNK = 100
# A channel's last_event_at is written at most this often (the quiet-channel alert counts minutes).
LAST_EVENT_EVERY = timedelta(seconds=1)


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
    # Posts set aside as IngestRejection rows: unusable ids, or refused by the database.
    rejected: int = 0
    # Stored posts that came again with a newer edit and took its text (see `post_edit`).
    edited: int = 0


# A post dated before this, or further ahead of our clock than POST_FUTURE_SLACK, carries a
# broken time (epoch zero, year 1, a wrong offset): it is kept, dated when it reached us, and
# the network's time is recorded in Post.posted_at_reported. Keeping it, rather than setting it
# aside, means a real complaint is never lost to a bad clock.
# The same window the API's validation applies (socialitsm.datetimes).
EARLIEST_POST = datetimes.POSTS_EARLIEST
POST_FUTURE_SLACK = datetimes.POSTS_AHEAD
# A post's parts beside its text (quotes, poll options, image descriptions): how many, how long.
MAX_DETAILS = 20
DETAIL_CHARS = 2000


class PostRefused(ValueError):
    """A post the ingest door cannot turn into a row (its id is unusable)."""


@cache
def _max_length(model: type[Post] | type[Author], name: str) -> int:
    field = model._meta.get_field(name)
    if not isinstance(field, models.CharField) or field.max_length is None:
        raise TypeError(f"{model.__name__}.{name} is not a bounded text field")
    return field.max_length


def _line(value: Any, limit: int) -> str:
    """A short field (handle, name, language): cleaned, trimmed and cut to fit its column."""
    return clean_text(str(value or "")).strip()[:limit]


def _reference(value: Any, limit: int) -> str:
    """An id or URL pointing elsewhere: cut, it would point at something else, so one too
    long to store is dropped."""
    cleaned = clean_text(str(value or "")).strip()
    return cleaned if len(cleaned) <= limit else ""


def _identifier(value: Any, what: str) -> str:
    """An id that names a row: never altered beyond cleaning, refused when it cannot be stored."""
    cleaned = clean_text(str(value if value is not None else ""))
    limit = _max_length(Post, "external_id")
    if len(cleaned) > limit:
        raise PostRefused(f"{what} is {len(cleaned)} characters; at most {limit} can be stored")
    return cleaned


def _time(value: Any, now: datetime) -> tuple[datetime, str]:
    """The post's time in UTC, or `now` and the network's time as given when it is implausible."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        return now, str(value)[:64]
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, or 9999 with a negative one
        return now, value.isoformat()[:64]
    if utc < EARLIEST_POST or utc > now + POST_FUTURE_SLACK:
        return now, value.isoformat()[:64]
    return utc, ""


def post_clean(post: InboundPost, *, now: datetime) -> tuple[InboundPost, str]:
    """The one door every connector's posts pass before storage: each field made storable in
    PostgreSQL (no NUL, lone surrogates or control characters, in the raw payload's keys and
    values too), cut to its column, times in UTC. Returns the clean post and, when its time was
    implausible, the time as the network gave it (the post is then dated `now`). Raises
    PostRefused when the post's own id, or its author's, cannot be stored."""
    external_id = _identifier(post.external_id, "the post id")
    if not external_id:
        raise PostRefused("the post has no id")
    if post.deleted:
        return replace(post, external_id=external_id), ""
    # Where each edit has its own id, every version is stored under the first one's.
    original_id = _reference(post.original_id, _max_length(Post, "external_id"))
    if original_id:
        external_id = original_id
    posted_at, reported = _time(post.posted_at, now)
    try:
        raw = clean_json(post.raw) if isinstance(post.raw, dict) else {}
    except RecursionError:
        raw = {}
    author = post.author
    clean = replace(
        post,
        external_id=external_id,
        author=InboundAuthor(
            external_id=_identifier(author.external_id, "the author id"),
            handle=_line(author.handle, _max_length(Author, "handle")),
            name=_line(author.name, _max_length(Author, "name")),
            profile_url=_reference(author.profile_url, _max_length(Author, "profile_url")),
        ),
        text=clean_text(str(post.text or ""))[: conf.MAX_POST_CHARS],
        posted_at=posted_at,
        url=_reference(post.url, _max_length(Post, "url")),
        in_reply_to=_reference(post.in_reply_to, _max_length(Post, "in_reply_to")),
        conversation_id=_reference(post.conversation_id, _max_length(Post, "conversation_id")),
        language=_line(post.language, _max_length(Post, "language")),
        is_direct=bool(post.is_direct),
        raw=raw,
        details=_details(post.details),
        edited_at=_edited_time(post.edited_at, posted_at, now),
        original_id=original_id,
    )
    return clean, reported


def _edited_time(value: Any, posted_at: datetime, now: datetime) -> datetime | None:
    """The edit's time in UTC, never before the post nor after `now`; None when the network
    gave none, or nothing that reads as a time."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        return None
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        return None
    return min(max(utc, posted_at), now)


def _details(details: Any) -> tuple[PostDetail, ...]:
    """The parts beside the text, cleaned like it: known kinds only, empty ones dropped, each
    text cut to `DETAIL_CHARS` and at most `MAX_DETAILS` kept."""
    kept: list[PostDetail] = []
    for detail in details or ():
        if len(kept) >= MAX_DETAILS:
            break
        if not isinstance(detail, PostDetail) or detail.kind not in DetailKind.values:
            continue
        text = clean_text(str(detail.text or "")).strip()[:DETAIL_CHARS]
        url = _reference(detail.url, _max_length(Post, "url"))
        if text or url:
            kept.append(PostDetail(kind=detail.kind, text=text, url=url))
    return tuple(kept)


def posts_enqueue_processing(post_ids: list[int]) -> None:
    """Hand stored posts to routing. A few (a webhook call, a stream event: fewer than
    SOCIALITSM_DRAIN_BELOW) ask for a drain, which routes whatever is pending in one pass however
    many calls came meanwhile; more go in tasks of PROCESS_CHUNK ids, which workers share."""
    from .routing import posts_drain_request

    if not post_ids:
        return
    if len(post_ids) < conf.DRAIN_BELOW:
        posts_drain_request()
        return
    posts_enqueue_chunks(post_ids)


def posts_enqueue_chunks(post_ids: list[int]) -> None:
    """One routing task per PROCESS_CHUNK of `post_ids`, in order."""
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
    skips them. Every post passes `post_clean` first; one the database still refuses is set
    aside as an IngestRejection (shown on the channel's health) and the rest go in, so one bad
    post never stops a channel. Deletion markers redact our copy; our own posts and sent
    replies are skipped. A stored post that comes again with a newer edit takes the edit's
    text (`post_edit`), and is handed to routing again when no incident holds it. `created`
    counts the rows this call wrote. New posts are handed to classification after commit."""
    now = timezone.now()
    network, scope = channel.network, id_scope(channel)
    unique: dict[str, tuple[InboundPost, str]] = {}
    deleted: list[InboundPost] = []
    markers = 0
    rejections: list[IngestRejection] = []
    for post in posts:
        try:
            clean, reported = post_clean(post, now=now)
        except PostRefused as exc:
            rejections.append(_rejection(channel, post, str(exc)))
            continue
        if clean.deleted:
            markers += 1
            deleted.append(clean)
        elif clean.external_id not in unique or _newer_edit(clean, unique[clean.external_id][0]):
            # Two versions of one post in a batch: the latest edit stands for it.
            unique[clean.external_id] = (clean, reported)
    result = IngestResult(received=len(posts))
    with transaction.atomic():
        if unique:
            cleaned = [p for p, _ in unique.values()]
            own = _own_posts(channel, cleaned)
            result.own = len(own)
            existing = set(
                Post.objects.filter(network=network, scope=scope, external_id__any=list(unique)).values_list(
                    "external_id", flat=True
                )
            )
            # Rows are written in key order: two overlapping batches then lock rows in the same
            # order and wait for each other instead of deadlocking.
            fresh = _replies_to_us_rethreaded(
                channel,
                sorted(
                    (p for p in cleaned if p.external_id not in existing and p.external_id not in own),
                    key=lambda p: p.external_id,
                ),
            )
            # A stream names the rule that heard a post; one deleted meanwhile is forgotten.
            named = {p.rule_id for p in fresh if p.rule_id}
            live_rules = set(channel.rules.filter(pk__in=named).values_list("pk", flat=True)) if named else set()
            default_rule = rule.pk if rule else None
            rows = [
                (p, p.rule_id if p.rule_id in live_rules else default_rule, unique[p.external_id][1]) for p in fresh
            ]
            written = _posts_write(channel, rows, now, rejections)
            result.created = len(written)
            posted = {p.external_id: p.posted_at for p in fresh}
            result.pending_ids = [pk for pk, _ in sorted(written, key=lambda row: (posted[row[1]], row[0]))]
            if written:
                # At most once a second: the row lock of this update would otherwise line up
                # every call pushing to the channel behind each other's commit.
                if channel.last_event_at is None or channel.last_event_at < now - LAST_EVENT_EVERY:
                    Channel.objects.filter(pk=channel.pk).filter(
                        Q(last_event_at__isnull=True) | Q(last_event_at__lt=now - LAST_EVENT_EVERY)
                    ).update(last_event_at=now)
                    channel.last_event_at = now
                stored = len(written)
                transaction.on_commit(lambda: metrics.posts_ingested(channel, stored))
            edits = [p for p in cleaned if p.external_id in existing and p.external_id not in own and p.edited_at]
            if edits:
                result.edited, routed = _edits_apply(network, scope, edits, now)
                result.pending_ids += routed
        if deleted:
            result.redacted = posts_redact_seen(network=network, scope=scope, posts=deleted)
        if rejections:
            _rejections_record(channel, rejections, now)
        result.rejected = len(rejections)
        result.duplicates = result.received - result.created - result.own - result.rejected - markers - result.edited
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


def _newer_edit(post: InboundPost, than: InboundPost) -> bool:
    return post.edited_at is not None and (than.edited_at is None or post.edited_at > than.edited_at)


def _edits_apply(network: str, scope: str, edits: list[InboundPost], now: datetime) -> tuple[int, list[int]]:
    """Hand the stored posts that came again with an edit time to `post_edit`."""
    stored = {
        post.external_id: post
        for post in Post.objects.filter(
            network=network, scope=scope, external_id__any=[p.external_id for p in edits]
        ).only("pk", "external_id")
    }
    return post_edits_apply(posts=[(stored[p.external_id], p) for p in edits if p.external_id in stored], now=now)


# Errors that say nothing about the post: the connection or the transaction failed. They fail
# the whole batch (the cursor stays, the next poll or the sender tries again) instead of
# setting good posts aside.
_NOT_THE_POSTS_FAULT = (OperationalError, InterfaceError)


# A post to write: the clean post, the id of the rule that heard it, and its time as the network
# gave it when that was implausible (see post_clean).
_PostRow = tuple[InboundPost, int | None, str]


def _posts_write(
    channel: Channel, rows: list[_PostRow], now: datetime, rejections: list[IngestRejection]
) -> list[tuple[int, str]]:
    """Write authors and posts in one statement each; if the database refuses the batch, write
    post by post in savepoints and set aside the ones it refuses. Returns (pk, external_id) of
    the posts written."""
    if not rows:
        return []
    try:
        with transaction.atomic():
            return _posts_insert(channel, rows, now)
    except _NOT_THE_POSTS_FAULT:
        raise
    except (DatabaseError, ValueError, TypeError, OverflowError) as exc:
        logger.warning(
            "channel %s: a batch of %d posts was refused (%s: %s); storing post by post",
            channel.slug,
            len(rows),
            type(exc).__name__,
            error_summary(exc),
        )
    written: list[tuple[int, str]] = []
    for row in rows:
        try:
            with transaction.atomic():
                written.extend(_posts_insert(channel, [row], now))
        except _NOT_THE_POSTS_FAULT:
            raise
        except (DatabaseError, ValueError, TypeError, OverflowError) as exc:
            rejections.append(_rejection(channel, row[0], f"{type(exc).__name__}: {exc}"))
    return written


def _posts_insert(channel: Channel, rows: list[_PostRow], now: datetime) -> list[tuple[int, str]]:
    """The authors, then the posts in one statement, given as one list per column: a batch's
    Post instances cost more to build than the rows take to write."""
    posts = [post for post, _, _ in rows]
    authors = _authors_upsert(channel, posts)
    count = len(posts)
    columns: dict[str, list[Any]] = {
        "network": [channel.network] * count,
        "scope": [id_scope(channel)] * count,
        "external_id": [p.external_id for p in posts],
        "channel_id": [channel.pk] * count,
        "rule_id": [rule_id for _, rule_id, _ in rows],
        "author_id": [authors[p.author.external_id] for p in posts],
        "text": [p.text for p in posts],
        "raw": [p.raw for p in posts],
        "details": [[{"kind": d.kind, "text": d.text, "url": d.url} for d in p.details] for p in posts],
        "url": [p.url for p in posts],
        "posted_at": [p.posted_at for p in posts],
        "posted_at_reported": [reported for _, _, reported in rows],
        "ingested_at": [now] * count,
        "in_reply_to": [p.in_reply_to for p in posts],
        "conversation_id": [p.conversation_id for p in posts],
        "language": [p.language for p in posts],
        "is_direct": [p.is_direct for p in posts],
        "edited_at": [p.edited_at for p in posts],
    }
    return [(int(pk), str(external_id)) for pk, external_id in values_insert_new(Post, columns, ("id", "external_id"))]


def _rejection(channel: Channel, post: InboundPost, error: str) -> IngestRejection:
    try:
        payload = clean_json(asdict(post))
    except (RecursionError, TypeError):
        payload = {}
    return IngestRejection(
        channel=channel,
        network=channel.network,
        external_id=clean_text(str(post.external_id))[: _max_length(Post, "external_id")],
        error=clean_text(error),
        payload=payload,
    )


def _rejections_record(channel: Channel, rejections: list[IngestRejection], now: datetime) -> None:
    """Keep the refused posts for an admin, and show on the channel that some were refused."""
    for rejection in rejections:
        rejection.created_at = now
        logger.warning(
            "channel %s: post %r set aside: %s", channel.slug, rejection.external_id, error_summary(rejection.error)
        )
    IngestRejection.objects.bulk_create(rejections)
    Channel.objects.filter(pk=channel.pk).update(
        health=Channel.Health.DEGRADED,
        last_error=f"{len(rejections)} post(s) could not be stored and were set aside: {rejections[0].error}",
        last_error_at=now,
    )


def _replies_of(channel: Channel) -> QuerySet[Reply]:
    """Our replies whose ids share `channel`'s id space."""
    if id_scope(channel):
        return Reply.objects.filter(channel=channel)
    return Reply.objects.filter(channel__network=channel.network)


def _own_posts(channel: Channel, posts: Sequence[InboundPost]) -> set[str]:
    """External ids among `posts` that we wrote: by one of our accounts on this network, or
    one of the replies we sent (the account id may be unknown if the channel was never verified)."""
    ours = (
        Channel.objects.filter(pk=channel.pk) if id_scope(channel) else Channel.objects.filter(network=channel.network)
    )
    accounts = {
        str(config[OWN_ACCOUNT_KEY])
        for config in ours.values_list("config", flat=True)
        if isinstance(config, dict) and config.get(OWN_ACCOUNT_KEY)
    }
    own = {p.external_id for p in posts if p.author.external_id in accounts}
    sent = _replies_of(channel).filter(external_id__any=[p.external_id for p in posts])
    own.update(sent.values_list("external_id", flat=True))
    return own


def _replies_to_us_rethreaded(channel: Channel, posts: list[InboundPost]) -> list[InboundPost]:
    """An answer to one of our replies continues the conversation of the post we answered:
    point `in_reply_to` at that post, so routing threads it into the same incident."""
    answered = dict(
        _replies_of(channel)
        .filter(external_id__any={p.in_reply_to for p in posts if p.in_reply_to})
        .exclude(external_id="")
        .values_list("external_id", "post__external_id")
    )
    if not answered:
        return posts
    return [replace(p, in_reply_to=answered[p.in_reply_to]) if p.in_reply_to in answered else p for p in posts]


def _authors_upsert(channel: Channel, posts: Sequence[InboundPost]) -> dict[str, int]:
    """The author row id of each poster, by external id: new posters are inserted, known ones
    whose handle, name or profile address changed are updated (in key order: see posts_ingest).
    A known poster whose details did not change is not written, so the call does not wait for
    a worker routing that poster's posts (routing holds the author rows for its batch)."""
    latest = {p.author.external_id: p.author for p in posts}
    if not latest:
        return {}
    network, scope = channel.network, id_scope(channel)
    stored = _authors_stored(network, scope, list(latest))
    # Most posters are known: only the others are inserted (in key order: see posts_ingest).
    missing = sorted(key for key in latest if key not in stored)
    if missing:
        count = len(missing)
        inserted = values_insert_new(
            Author,
            {
                "network": [network] * count,
                "scope": [scope] * count,
                "external_id": missing,
                "handle": [latest[key].handle for key in missing],
                "name": [latest[key].name for key in missing],
                "profile_url": [latest[key].profile_url for key in missing],
            },
            ("external_id", "id", "handle", "name", "profile_url"),
        )
        stored.update({key: (pk, (handle, name, profile_url)) for key, pk, handle, name, profile_url in inserted})
        # Skipped as written meanwhile by another ingest, which committed first.
        others = [key for key in missing if key not in stored]
        if others:
            stored.update(_authors_stored(network, scope, others))
    changed = [
        Author(pk=stored[key][0], handle=a.handle, name=a.name, profile_url=a.profile_url)
        for key, a in sorted(latest.items())
        if key in stored and stored[key][1] != (a.handle, a.name, a.profile_url)
    ]
    if changed:
        # Locked in key order first (as routing locks them), then written in one statement.
        order = Collate("external_id", "C") if connection.vendor == "postgresql" else "external_id"
        locking = Author.objects.select_for_update(no_key=True).filter(pk__in=[a.pk for a in changed])
        list(locking.order_by(order).values_list("pk", flat=True))
        rows_update(Author, changed, ["handle", "name", "profile_url"])
    return {key: pk for key, (pk, _) in stored.items()}


def _authors_stored(network: str, scope: str, keys: list[str]) -> dict[str, tuple[int, tuple[str, str, str]]]:
    """Stored authors among `keys`: their row id and (handle, name, profile address)."""
    return {
        external_id: (pk, (handle, name, profile_url))
        for external_id, pk, handle, name, profile_url in Author.objects.filter(
            network=network, scope=scope, external_id__any=keys
        ).values_list("external_id", "id", "handle", "name", "profile_url")
    }


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
    created = rejected = 0
    try:
        for rule in channel.rules.filter(enabled=True):
            posts, cursor = connector.search(rule, rule.cursor)
            result = posts_ingest(channel=channel, posts=posts, rule=rule, cursor=cursor)
            created += result.created
            rejected += result.rejected
    except (TransientError, PermanentError) as exc:
        channel_error_record(channel=channel, error=exc)
        return created
    finally:
        channel_quota_record(channel=channel, quota=connector.quota)
    changes: dict[str, Any] = {"last_polled_at": timezone.now(), "rate_limited_until": None}
    if not rejected:
        # Posts set aside in this poll keep the channel degraded until a poll stores all it gets.
        changes.update(health=Channel.Health.OK, last_error="")
    Channel.objects.filter(pk=channel.pk).update(**changes)
    return created
