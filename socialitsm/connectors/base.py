"""The connector interface: what every network module provides, and the shapes it speaks."""

from __future__ import annotations

import html
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from socialitsm.conf import conf

if TYPE_CHECKING:
    from socialitsm.models import Channel, Post, WatchRule

Cursor = dict[str, Any]

# The key of `Channel.config` holding the network's id of the channel's own account. Ingest
# skips posts by that author (and posts whose id is one of our sent replies), so our own
# answers are never taken for new complaints. `verify()` fills it.
OWN_ACCOUNT_KEY = "account_id"

# What `Connector.posts_gone` says of a post no longer on the network (the values of Post.Gone).
GONE_DELETED = "deleted"  # by its author
GONE_REMOVED = "removed"  # by the community's moderators or the network

# A network's clock and ours may disagree: an earlier copy of a reply is looked for from this
# long before the reply was queued (see `Connector.find_sent`).
SENT_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class InboundAuthor:
    external_id: str
    handle: str = ""
    name: str = ""
    profile_url: str = ""


@dataclass(frozen=True, slots=True)
class InboundPost:
    """A post as our pipeline sees it, whatever network it came from. Text is plain text."""

    external_id: str
    author: InboundAuthor
    text: str
    posted_at: datetime
    url: str = ""
    in_reply_to: str = ""
    conversation_id: str = ""
    language: str = ""
    is_direct: bool = False
    # True for a deletion seen upstream: only external_id matters, and our copy gets redacted.
    deleted: bool = False
    # With `deleted`: GONE_REMOVED where the network says moderators took it down ("" = by its author).
    gone_reason: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    # From `stream()`: the WatchRule whose subscription heard the post (search() passes its
    # rule to ingest instead). None leaves it to the rule ingest was given, if any.
    rule_id: int | None = None


@dataclass(frozen=True, slots=True)
class StreamMark:
    """Yielded by `Connector.stream` when the stream moved on without a post to store: a
    heartbeat, or events the connector filtered out. It lets the runner save the cursor of a
    quiet stream, flush a partial batch, and notice a stop request. Carries nothing."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What a network allows a reply to be. `max_reply_chars` is in the network's own unit
    (characters, graphemes or X's weighted characters); `Connector.reply_length` measures it."""

    max_reply_chars: int
    supports_direct: bool = True
    supports_public: bool = True
    unit: str = "characters"


@dataclass(slots=True)
class Quota:
    """What the network said about our allowance during one call of the connector.

    Connectors fill it from response headers (`note_quota`); the poll persists it on the channel."""

    remaining: int | None = None
    limit: int | None = None
    reset_at: datetime | None = None
    requests: int = 0
    cost: float = 0.0  # in the network's billing currency (X pay-per-use), 0 where free


def backfill_only(posts: Sequence[InboundPost], cursor: Cursor) -> list[InboundPost]:
    """On a rule's first poll (empty cursor) keep only posts from the last SOCIALITSM_BACKFILL_HOURS;
    later polls keep everything. The cursor still moves past what was dropped."""
    if cursor:
        return list(posts)
    since = timezone.now() - timedelta(hours=conf.BACKFILL_HOURS)
    return [p for p in posts if p.posted_at >= since]


class Connector(ABC):
    """One network behind one small interface. Connectors never touch the ORM for writes."""

    network: str = ""
    # Posts one `posts_gone` call looks up; 0 where the network has no look-up (webhook, replay).
    lookup_batch: int = 0
    # How often one stored post may be looked up again, and how many posts one re-check sweep
    # looks up per channel; None takes SOCIALITSM_RECHECK_MINUTES / _RECHECK_MAX_POSTS.
    recheck_minutes: int | None = None
    recheck_max_posts: int | None = None

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.quota = Quota()

    def note_quota(
        self,
        *,
        remaining: int | None = None,
        limit: int | None = None,
        reset_at: datetime | None = None,
        cost: float = 0.0,
    ) -> None:
        """Record one request to the network and what its rate-limit headers said."""
        self.quota.requests += 1
        self.quota.cost += cost
        if remaining is not None:
            self.quota.remaining = remaining
        if limit is not None:
            self.quota.limit = limit
        if reset_at is not None:
            self.quota.reset_at = reset_at

    def verify(self) -> str:
        """Check the channel's credentials against the network and return the account's handle.
        Raises PermanentError with a readable message when they do not work, TransientError
        when the network cannot be reached.

        It may fill non-secret facts the connector needs later into `self.channel.config`,
        above all `config["account_id"]`: the network's id of our own account, which ingest
        uses to skip our own posts (see `OWN_ACCOUNT_KEY`). The caller saves the channel."""
        return self.channel.handle

    @abstractmethod
    def search(self, rule: WatchRule, cursor: Cursor) -> tuple[Sequence[InboundPost], Cursor]:
        """Posts matching `rule` after `cursor`, oldest first, and the cursor to save once they
        are stored. Raises TransientError (retry later) or PermanentError (fix the channel)."""

    def stream(self, rules: Sequence[WatchRule]) -> Iterator[InboundPost | StreamMark]:
        """Posts as the network pushes them, for networks with a streaming API; blocks between
        events and runs until the connection ends.

        The contract with the runner (`manage.py socialitsm_stream`):
        - Resume from `self.channel.stream_cursor` (a dict, `{}` on the first run). The runner
          builds a fresh connector from the stored channel for every (re)connection.
        - After each item yielded, `stream_cursor()` is the position to resume from once that
          item and every earlier one are stored; the runner saves it on the channel in the
          same transaction as the posts. It is read once more when the stream ends or fails,
          so it must never cover an event that was read but neither yielded nor deliberately
          skipped. Where the network replays from a cursor, rewind a little and let ingest
          dedupe (it is idempotent on the post's id).
        - Subscribe for `rules` as given: when the channel's rules or settings change, the
          runner closes this stream and opens a new one.
        - Yield a `StreamMark` at least every few seconds while nothing matches (heartbeat,
          receive timeout, filtered events), so a quiet stream's cursor is saved and a stop
          request is noticed. A deletion upstream is an InboundPost with `deleted=True`.
        - A dropped connection or 429/5xx raises TransientError (retry_at where the network
          named one); refused credentials raise PermanentError. Returning ends the stream
          like a dropped connection: the runner reconnects with backoff and polls
          (`search`) while the stream is down."""
        raise NotImplementedError(f"{self.network} has no streaming listener")

    def stream_cursor(self) -> Cursor:
        """Where `stream` would resume after the last item it yielded (see `stream`)."""
        return {}

    @abstractmethod
    def reply(self, post: Post, text: str, visibility: str, *, idempotency_key: str) -> str:
        """Send `text` to the poster of `post`, publicly or by direct message, and return the
        network's id of what was sent. Raises TransientError or PermanentError."""

    def find_sent(self, post: Post, text: str, visibility: str, *, since: datetime) -> list[str]:
        """Ids of what our account already sent to the poster of `post` as this reply (same
        kind, same target, the same text as the network shows it, see `same_text`), created at
        or after `since`, oldest first: the copy an earlier attempt got onto the network although
        its answer was lost. Looked for wherever the network lists it, one or two pages of each
        listing at most. Raises TransientError when a listing cannot be read (the caller retries
        later instead of sending blind) and PermanentError when it is refused. A network that
        lists nothing of the kind returns [] (the README names them); `reply` then relies on
        the best guard it has, such as an idempotency key."""
        return []

    @abstractmethod
    def limits(self) -> Limits:
        """The reply limits of this network."""

    def reply_length(self, text: str) -> int:
        """Length of `text` in the unit of `limits().max_reply_chars`."""
        return len(text)

    def reply_refusal(self, post: Post, visibility: str) -> str:
        """Why the network would refuse this kind of reply to `post` ("" when it would not),
        e.g. X allows a public reply only where the author mentioned or quoted us."""
        return ""

    def posts_gone(self, posts: Sequence[Post]) -> dict[str, str]:
        """Which of `posts` (at most `lookup_batch` of this channel's posts) are gone from the
        network, by external id: GONE_DELETED where the author deleted the post, GONE_REMOVED
        where moderators or the network took it down. A post left out is still there, or its
        state cannot be told (hidden from us, a kind the look-up does not cover): "cannot
        tell" is never "gone". Networks without a look-up return {} (see `lookup_batch`).

        Raises TransientError when the network cannot answer now (timeouts, 429, 5xx) and
        PermanentError when it refuses the channel (credentials); an error never marks a post gone."""
        return {}

    def recheck_budget(self) -> tuple[timedelta, int]:
        """How long a looked-up post rests before it is looked up again, and how many posts one
        sweep may look up for this channel: channel config "recheck_minutes" and
        "recheck_max_posts", else the network's default, else the SOCIALITSM_RECHECK_* settings."""
        config = self.channel.config if isinstance(self.channel.config, dict) else {}

        def setting(key: str, default: int | None, fallback: int) -> int:
            try:
                return max(1, int(config.get(key, default if default is not None else fallback)))
            except (TypeError, ValueError):
                return max(1, default if default is not None else fallback)

        minutes = setting("recheck_minutes", self.recheck_minutes, conf.RECHECK_MINUTES)
        return timedelta(minutes=minutes), setting("recheck_max_posts", self.recheck_max_posts, conf.RECHECK_MAX_POSTS)


_REMOTE_MENTION = re.compile(r"(?<![\w@])@(\w[\w.-]*?)@[\w-]+(?:\.[\w-]+)+")
_LINK = re.compile(r"https?://\S+|(?<![\w@/.-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}(?:/\S*)?", re.IGNORECASE)
_LEADING_MENTIONS = re.compile(r"^(?:@[\w.-]+\s+)+")


def sent_text_key(text: str) -> str:
    """`text` reduced to what survives a network's rendering of it: entities decoded, every
    link one token (networks shorten, wrap and cut links), `@user@server` as `@user` (Mastodon
    shows the local part), mentions in front dropped (networks and `reply` add them), case and
    whitespace folded."""
    text = unicodedata.normalize("NFC", html.unescape(text))
    text = _REMOTE_MENTION.sub(r"@\1", text)
    text = _LINK.sub("\u27e8link\u27e9", text)
    text = " ".join(text.split()).casefold()
    return _LEADING_MENTIONS.sub("", text + " ").strip()


def same_text(sent: str, listed: str) -> bool:
    """Whether `listed`, the plain text a network shows for a message, is `sent` as we wrote it
    (see `sent_text_key`); a listing that cut the text short with an ellipsis matches its start."""
    ours, theirs = sent_text_key(sent), sent_text_key(listed)
    if not ours or not theirs:
        return False
    if ours == theirs:
        return True
    cut = theirs.removesuffix("…").removesuffix("...").rstrip()
    return cut != theirs and len(cut) >= 20 and ours.startswith(cut)


def aware_time(value: Any) -> datetime | None:
    """An ISO 8601 time with an offset ("Z" included) as an aware datetime; None for anything
    else (missing, not a string, malformed, or naive), so network JSON never raises here."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
