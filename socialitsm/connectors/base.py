"""The connector interface: what every network module provides, and the shapes it speaks."""

from __future__ import annotations

import html
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import requests
from django.db import models
from django.utils import timezone

from socialitsm import http
from socialitsm.conf import conf
from socialitsm.exceptions import ExternalError, PermanentError, TransientError

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


class RuleKind(models.TextChoices):
    """What a watch rule listens for (`WatchRule.kind`)."""

    SEARCH = "search", "Search terms"
    HASHTAG = "hashtag", "Hashtag"
    MENTIONS = "mentions", "Mentions"
    DIRECT = "direct", "Direct messages"


@dataclass(frozen=True, slots=True)
class InboundAuthor:
    external_id: str
    handle: str = ""
    name: str = ""
    profile_url: str = ""


class DetailKind(models.TextChoices):
    """What a part of a post beside its text is (`InboundPost.details`, `Post.details`)."""

    QUOTE = "quote", "Quoted post"
    POLL = "poll", "Poll option"
    ALT_TEXT = "alt_text", "Image description"
    MEDIA = "media", "Attachment"
    LINK = "link", "Link"
    CROSSPOST = "crosspost", "Crossposted from"


@dataclass(frozen=True, slots=True)
class PostDetail:
    """A part of a post an agent needs beside its text: a quoted post, a poll option, an
    image's description, a gallery item or the post a crosspost came from. Plain text; `url`
    points at the part where it has its own address."""

    kind: str
    text: str = ""
    url: str = ""


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
    # Quoted posts, poll options, image descriptions, gallery items: what the text leaves out.
    details: tuple[PostDetail, ...] = ()
    # When the author last edited the post, per the network (None = never edited, or the
    # network does not say). Ingest updates a stored post only for a newer edit.
    edited_at: datetime | None = None
    # Where the network gives each edit a new id (X), the id of the first version: ingest
    # stores every version of the post under it. "" where edits keep the id.
    original_id: str = ""
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
    # In the network's billing currency (X pay-per-use), 0 where free: what is charged per call.
    cost: float = 0.0
    # What is charged once per resource and UTC day (X reads): (day, price item, resource id) ->
    # price. The channel's counter adds only the resources not billed to it earlier that day.
    billed: dict[tuple[str, str, str], float] = field(default_factory=dict)

    @property
    def cost_delivered(self) -> float:
        """The cost of what this connector was sent, before resources billed earlier that day
        are taken out: the per-call cost plus each billed resource once."""
        return self.cost + sum(self.billed.values())


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """The typed view of a channel's `config` (its non-secret settings). Each connector names
    its own subclass in `config_class`; `parse` checks a stored or submitted config against it.
    Keys a connector does not declare are kept as they are (what `verify()` learned, the
    registry's `connector` override)."""

    account_id: str = ""
    connector: str = ""
    # The re-check of stored posts (see `Connector.recheck_budget`); 0 takes the network's default.
    recheck_minutes: int = 0
    recheck_max_posts: int = 0

    @classmethod
    def parse(cls, config: Mapping[str, Any] | None) -> ChannelConfig:
        """The typed config; raises ValueError naming the first key with a value of the wrong kind."""
        if config is None:
            config = {}
        if not isinstance(config, Mapping):
            raise ValueError("config must be a JSON object")
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name in config and config[item.name] is not None:
                values[item.name] = _typed(item.name, config[item.name], str(item.type))
        return cls(**values)


def _typed(name: str, value: Any, kind: str) -> Any:
    """`value` as the declared `kind` of config key `name` (annotations are strings here)."""
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"config {name}: expected true or false, got {value!r}")
        return value
    if kind in ("int", "float"):
        try:
            number = float(value) if kind == "float" else int(value)
        except (TypeError, ValueError):
            raise ValueError(f"config {name}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or number < 0:
            raise ValueError(f"config {name}: expected a number of at least 0, got {value!r}")
        return number
    if kind.startswith("tuple[str"):
        items = value.replace(",", " ").split() if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise ValueError(f"config {name}: expected a list of names, got {value!r}")
        return tuple(items)
    if kind.startswith("dict"):
        if not isinstance(value, dict):
            raise ValueError(f"config {name}: expected a JSON object, got {value!r}")
        return dict(value)
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError(f"config {name}: expected text, got {value!r}")
    return str(value)


def backfill_only(posts: Sequence[InboundPost], cursor: Cursor) -> list[InboundPost]:
    """On a rule's first poll (empty cursor) keep only posts from the last SOCIALITSM_BACKFILL_HOURS;
    later polls keep everything. The cursor still moves past what was dropped."""
    if cursor:
        return list(posts)
    since = timezone.now() - timedelta(hours=conf.BACKFILL_HOURS)
    return [p for p in posts if p.posted_at >= since]


# How a connector words a failed call, by case. Fields: {name} (the connector's `label`),
# {host}, {status}, {detail} (the network's own words, see `Connector.problem`), {said}
# ("(HTTP 403): detail", or "(HTTP 403)" without detail), {what} (what was being done), and
# for "rate_limited" {when}, which is "reset" filled with {reset} when the network said.
# A network's own `ERROR_WORDS` override these; its "refused" also stands for the 401, 403
# and 404 cases it does not word itself.
ERROR_WORDS: dict[str, str] = {
    "rate_limited": "{name} rate limit reached ({detail}){when}",
    "reset": "; it resets at {reset:%H:%M:%S} UTC",
    "failing": "{name} is failing (HTTP {status}): {detail}",
    "credentials": "{name} refused the channel's credentials (HTTP 401): {detail}",
    "forbidden": "{name} does not allow this (HTTP 403): {detail}",
    "missing": "{name} has no such resource (HTTP 404): {detail}",
    "refused": "{name} refused the request (HTTP {status}): {detail}",
}


def reset_time(value: str | None) -> datetime | None:
    """A rate-limit reset header as a time: an ISO 8601 time, a Unix timestamp, or (a smaller
    number) seconds from now; None when missing or unreadable."""
    if not value or not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        return aware_time(value.strip())
    if number >= 1e9:
        return datetime.fromtimestamp(number, tz=UTC)
    return timezone.now() + timedelta(seconds=number)


class Connector(ABC):
    """One network behind one small interface. Connectors never touch the ORM for writes.

    Every call to the network goes through `request` (or `request_json`): socialitsm.http
    sends it, the rate-limit headers of every answer (errors included) are recorded through
    the `rate_limit` hook, and a refused call becomes TransientError or PermanentError worded
    by `ERROR_WORDS` and `problem`. A network fills those hooks; it copies no plumbing."""

    network: str = ""
    # The network's name in messages ("Mastodon").
    label: ClassVar[str] = ""
    # The headers naming the remaining calls, the allowance and its reset (see `rate_limit`).
    rate_limit_headers: ClassVar[tuple[str, str, str]] = (
        "X-RateLimit-Remaining",
        "X-RateLimit-Limit",
        "X-RateLimit-Reset",
    )
    # The keys of a JSON error body that hold the network's words (see `problem`).
    problem_keys: ClassVar[tuple[str, ...]] = ("error", "message")
    # Overrides of the module's ERROR_WORDS for this network.
    ERROR_WORDS: ClassVar[dict[str, str]] = {}
    # The typed view of `Channel.config` (see `ChannelConfig`).
    config_class: ClassVar[type[ChannelConfig]] = ChannelConfig
    # Posts one `posts_gone` call looks up; 0 where the network has no look-up (webhook, replay).
    lookup_batch: int = 0
    # How often one stored post may be looked up again, and how many posts one re-check sweep
    # looks up per channel; None takes SOCIALITSM_RECHECK_MINUTES / _RECHECK_MAX_POSTS.
    recheck_minutes: int | None = None
    recheck_max_posts: int | None = None

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.quota = Quota()

    # -- transport -------------------------------------------------------------------------------

    def request(self, method: str, url: str, *, what: str, record: bool = True, **kwargs: Any) -> requests.Response:
        """One call through socialitsm.http. The answer's rate-limit headers are recorded
        (unless `record` is False: the caller records it, e.g. with a cost); a refused call's
        too, before `error_for` words it. Raises TransientError or PermanentError."""
        try:
            response = http.request(method, url, **kwargs)
        except ExternalError as exc:
            if exc.response is None:
                raise
            self.note_response(exc.response)
            raise self.error_for(exc, exc.response, what) from exc
        if record:
            self.note_response(response)
        return response

    def request_json(
        self,
        method: str,
        url: str,
        *,
        what: str,
        charge: Callable[[Mapping[str, Any]], float] | None = None,
        **kwargs: Any,
    ) -> Any:
        """`request`, and the answer's JSON (see `decode`). `charge` prices an answer that is an
        object (pay per use); it is recorded with the answer."""
        response = self.request(method, url, what=what, record=charge is None, **kwargs)
        if charge is None:
            return self.decode(response, what)
        try:
            data = self.decode(response, what)
        except TransientError:
            self.note_response(response)
            raise
        self.note_response(response, cost=charge(data) if isinstance(data, dict) else 0.0)
        return data

    def request_object(self, method: str, url: str, *, what: str, **kwargs: Any) -> Mapping[str, Any]:
        """`request_json` for calls that answer with a JSON object (see `decode_object`)."""
        return self.decode_object(self.request_json(method, url, what=what, **kwargs), what)

    def decode(self, response: requests.Response, what: str) -> Any:
        """The answer's JSON. Raises TransientError when it is not JSON (a proxy's error page)."""
        try:
            return response.json()
        except ValueError:
            raise TransientError(
                f"{self.label} answered {what} with something that is not JSON: {response.text[:100]!r}",
                status=response.status_code,
            ) from None

    def decode_object(self, data: Any, what: str) -> Mapping[str, Any]:
        """`data` when it is a JSON object; anything else is a TransientError."""
        if not isinstance(data, dict):
            raise TransientError(f"{self.label} answered {what} with unexpected JSON: {str(data)[:120]}")
        return data

    def note_response(self, response: requests.Response, *, cost: float = 0.0) -> None:
        """Record one answer of the network in `self.quota`."""
        remaining, limit, reset_at = self.rate_limit(response)
        self.note_quota(remaining=remaining, limit=limit, reset_at=reset_at, cost=cost)

    def rate_limit(self, response: requests.Response) -> tuple[int | None, int | None, datetime | None]:
        """(remaining, limit, reset time) from an answer's `rate_limit_headers`; a network whose
        headers need more than that (Reddit's "used" and fractions) overrides it."""
        remaining, limit, reset = self.rate_limit_headers
        return (
            http.header_int(response, remaining),
            http.header_int(response, limit),
            reset_time(response.headers.get(reset)),
        )

    def problem(self, response: requests.Response) -> str:
        """The network's own words in an error answer: the `problem_keys` of a JSON body joined
        by ": ", else the text (an HTML error page says nothing useful: "")."""
        try:
            body = response.json()
        except ValueError:
            text = response.text.strip()
            return "" if text.startswith("<") else text[:200]
        if isinstance(body, dict):
            parts = [str(body[key]) for key in self.problem_keys if body.get(key)]
            if parts:
                return ": ".join(parts)
        return response.text[:200].strip()

    def error_for(self, error: ExternalError, response: requests.Response, what: str) -> ExternalError:
        """The error to raise for a refused call: 429 and 5xx transient (retry at the
        allowance's reset, or when Retry-After said), the rest permanent, in the network's words.
        Networks override it for their own cases and fall back to it."""
        status = response.status_code
        if status == 429:
            return self.worded("rate_limited", error, response, what)
        if status >= 500:
            return self.worded("failing", error, response, what)
        case = {401: "credentials", 403: "forbidden", 404: "missing"}.get(status, "refused")
        return self.worded(case, error, response, what)

    def worded(self, case: str, error: ExternalError, response: requests.Response, what: str) -> ExternalError:
        """The error for `case` (a key of ERROR_WORDS) in this network's words."""
        words = {**ERROR_WORDS, **self.ERROR_WORDS}
        if case in ("credentials", "forbidden", "missing") and case not in self.ERROR_WORDS:
            words[case] = self.ERROR_WORDS.get("refused", words[case])
        status = response.status_code
        detail = self.problem(response)
        retry_at = getattr(error, "retry_at", None)
        if case == "rate_limited":
            retry_at = self.rate_limit(response)[2] or retry_at
        message = words[case].format(
            name=self.label,
            host=urlsplit(response.url or "").netloc,
            status=status,
            detail=detail,
            said=f"(HTTP {status}): {detail}" if detail else f"(HTTP {status})",
            what=what,
            when=words["reset"].format(reset=retry_at) if retry_at and case == "rate_limited" else "",
        )
        if case in ("rate_limited", "failing"):
            return TransientError(message, status=status, retry_at=retry_at, response=response)
        return PermanentError(message, status=status, response=response)

    def bill(self, item: str, resource_ids: Iterable[Any], price: float) -> None:
        """Charge `price` for each of `resource_ids` (read as `item`, e.g. "post_read") once per
        UTC day, as pay-per-use networks do: noted in `quota.billed` under today's UTC date;
        `channel_quota_record` adds to the channel's cost only what it had not billed that day."""
        day = timezone.now().astimezone(UTC).date().isoformat()
        for resource_id in resource_ids:
            if resource_id not in (None, ""):
                self.quota.billed[(day, item, str(resource_id))] = price

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

    def status_refusal(self) -> str:
        """Why this channel cannot publish a standalone status post ("" when it can)."""
        return f"{self.label or self.network.capitalize()} channels cannot publish a status post"

    def post_status(self, text: str, *, idempotency_key: str) -> tuple[str, str]:
        """Publish `text` as a top-level post of the channel's account (not a reply), e.g. "We
        know e-mail is down, updates here", and return the network's id and the post's URL ("" if
        the network gives none). Raises TransientError or PermanentError; a network without status
        posts raises PermanentError with `status_refusal()`."""
        raise PermanentError(self.status_refusal())

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

    def reply_audience(self, post: Post, visibility: str) -> str:
        """Who will see a reply of this visibility to `post`, in a sentence for the agent, where
        the network narrows or widens it beyond "public" and "direct" ("" to say nothing)."""
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
