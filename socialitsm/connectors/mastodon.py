"""Mastodon (and any server speaking the Mastodon client API): hashtags, mentions, direct messages.

Channel: `base_url` is the server (https://mastodon.example), credentials
`{"access_token": "..."}` (a user token with read + write:statuses). `verify()` learns the
account (config `account_id`, `acct`) and, where the server says, its post length and streaming host.

Besides its text, a status's poll options, image descriptions and quoted post (Mastodon 4.4+
`quote: {state, quoted_status}`, or a Status in `quote` on servers that quoted before) become its
`details`.

Listening, per WatchRule kind:
- hashtag   GET /api/v1/timelines/tag/:tag, or the `hashtag` stream;
- mentions  GET /api/v1/notifications?types[]=mention (all but direct ones), or the `user` stream;
- direct    the same notifications, direct ones only;
- search    GET /api/v2/search?type=statuses: only where the server has full-text search, and even
            then only opted-in accounts are searchable (an empty answer is not an error).
Polls page forward with `min_id` and rewind by OVERLAP on the next poll: federated posts get ids
from their own (earlier) timestamps, so they can arrive "behind" the cursor. Ingest dedupes.

Streaming: one WebSocket, `user` plus one `hashtag` subscription per rule. Mastodon cannot replay a
stream, so every (re)connection first catches up by polling from the stream cursor; servers
without a streaming API (404) are polled instead. `delete` events redact our copy; `status.update`
events (an edit: the same Status, with `edited_at`) update it, as an edited status met by a poll does.

Replying: POST /api/v1/statuses with Idempotency-Key; the author is @-mentioned first (a direct
status reaches only the accounts it mentions). A public reply is never seen by more people than
the post it answers: to a followers-only post it goes followers-only, to an unlisted one unlisted
at most (`reply_visibility`); a direct message is answered only directly. Servers that ignore the
key (Takahē) would post a retry twice, so a retry first looks for the reply where the server lists
it (`find_sent`).
Errors map as socialitsm.http does, plus the server quirks in API-CONTRACTS.md (a bad token may
be a 400 with a plain-text body).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

import requests
from django.utils import timezone

from socialitsm.exceptions import ExternalError, PermanentError, TransientError
from socialitsm.text import html_to_text

from .base import (
    GONE_DELETED,
    OWN_ACCOUNT_KEY,
    ChannelConfig,
    Connector,
    Cursor,
    DetailKind,
    InboundAuthor,
    InboundPost,
    Limits,
    PostDetail,
    RuleKind,
    StreamMark,
    aware_time,
    backfill_only,
    same_text,
)
from .wsclient import ws_connect, ws_frames

if TYPE_CHECKING:
    from socialitsm.models import Post, WatchRule

logger = logging.getLogger(__name__)

DEFAULT_MAX_CHARACTERS = 500
# Mastodon counts a link as 23 characters and a mention as its local part only (StatusLengthValidator).
URL_LENGTH = 23
# Room kept for the "@username " we put in front of a reply (usernames have at most 30 characters).
MENTION_ROOM = 32
PAGE_LIMIT = 40
MAX_PAGES = 10
OVERLAP = timedelta(minutes=10)
# Seconds without a frame before the stream yields a mark (and notices a stop request).
RECV_TIMEOUT = 5.0

# Who sees a status, narrowest first. A visibility the API does not document (a fork's "local",
# "limited") is taken as followers-only: an answer must not reach more people than the post did.
VISIBILITIES = ("direct", "private", "unlisted", "public")
UNKNOWN_VISIBILITY = "private"
AUDIENCE = {
    "public": "Public: anyone can see it.",
    "unlisted": "Unlisted: anyone can see it, but it is kept out of public timelines and search.",
    "private": "Followers only: {who} and our account's followers see it.",
    "direct": "Direct message: only {who} sees it.",
}
VISIBILITY_WORDS = {
    "public": "public",
    "unlisted": "unlisted",
    "private": "for followers only",
    "direct": "a direct message",
}

_URL = re.compile(r"https?://[^\s<>\"']+")
_MENTION = re.compile(r"(?<![\w/])@(\w+)@[\w.-]+\w", re.UNICODE)


@dataclass(frozen=True, slots=True)
class MastodonConfig(ChannelConfig):
    """What `verify()` learns (acct, post length, streaming host) and how public replies show."""

    acct: str = ""
    max_characters: int = DEFAULT_MAX_CHARACTERS
    streaming_url: str = ""
    reply_visibility: str = "public"

    def __post_init__(self) -> None:
        if self.reply_visibility not in ("public", "unlisted"):
            raise ValueError("config reply_visibility: expected public or unlisted")
        if self.streaming_url and not self.streaming_url.startswith(("wss://", "ws://")):
            raise ValueError("config streaming_url: expected a wss:// address")


def _id_key(value: str) -> tuple[int, str]:
    """Ids are strings of digits on Mastodon (not guaranteed): compare numerically where they are."""
    return (len(value), value) if value.isdigit() else (0, value)


def _newest(ids: Sequence[str]) -> str:
    return max(ids, key=_id_key)


def status_length(text: str) -> int:
    """Length of a status as Mastodon measures it."""
    text = _URL.sub("x" * URL_LENGTH, text)
    text = _MENTION.sub(lambda m: "@" + m.group(1), text)
    return len(text)


class MastodonConnector(Connector):
    network = "mastodon"
    label = "Mastodon"
    config_class = MastodonConfig
    problem_keys = ("error", "error_description")
    # Every error names the server, says what happened, then "(HTTP n): the server's words".
    ERROR_WORDS: ClassVar[dict[str, str]] = {
        case: "{host} " + happened + " {said}"
        for case, happened in [
            ("rate_limited", "rate limit reached"),
            ("failing", "is failing"),
            ("credentials", "refused the access token"),
            ("forbidden", "does not allow this token to do that"),
            ("missing", "has no such resource"),
            ("refused", "refused the request"),
        ]
    }
    ERROR_WORDS["rate_limited"] += "{when}"
    # One GET per status (the batch GET /api/v1/statuses?id[]= is Mastodon 4.3+ only).
    lookup_batch = 20

    def __init__(self, channel) -> None:
        super().__init__(channel)
        self._paused_until: datetime | None = None
        self._stream_position: dict[str, str] = {}
        self._notifications: dict[str, tuple[list[dict[str, Any]], Cursor]] = {}

    # -- HTTP -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        url = (self.channel.base_url or "").rstrip("/")
        if not url:
            raise PermanentError("this Mastodon channel has no base URL (the server, e.g. https://mastodon.example)")
        return url

    def _headers(self) -> dict[str, str]:
        token = self.channel.credentials.get("access_token")
        if not token:
            raise PermanentError("this Mastodon channel has no access_token in its credentials")
        return {"Authorization": f"Bearer {token}", "Accept": "application/json", "User-Agent": "socialitsm"}

    def _json(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        return self.request_json(method, self.base_url + path, what=path, **self._arguments(params, body, headers))

    def _arguments(
        self,
        params: Sequence[tuple[str, str]] | None,
        body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        return {"params": params, "json": body, "headers": {**self._headers(), **(headers or {})}}

    def request(self, method: str, url: str, *, what: str, record: bool = True, **kwargs: Any) -> requests.Response:
        """A used-up allowance stops further calls until it resets."""
        now = timezone.now()
        if self._paused_until is not None and self._paused_until > now:
            raise TransientError(
                f"Mastodon allowance used up until {self._paused_until:%H:%M:%S} UTC", retry_at=self._paused_until
            )
        return super().request(method, url, what=what, record=record, **kwargs)

    def note_response(self, response: requests.Response, *, cost: float = 0.0) -> None:
        super().note_response(response, cost=cost)
        remaining, _limit, reset_at = self.rate_limit(response)
        if remaining == 0 and reset_at is not None:
            self._paused_until = reset_at

    def error_for(self, error: ExternalError, response: requests.Response, what: str) -> ExternalError:
        # Takahē and other servers answer a bad token with 400 "Invalid Bearer token".
        if response.status_code == 400 and "token" in self.problem(response).lower():
            return self.worded("credentials", error, response, what)
        return super().error_for(error, response, what)

    # -- Channel ----------------------------------------------------------------------------

    def verify(self) -> str:
        account = self._json("GET", "/api/v1/accounts/verify_credentials")
        if not isinstance(account, dict) or not account.get("id"):
            raise PermanentError("the server's verify_credentials answer has no account id")
        self.channel.config[OWN_ACCOUNT_KEY] = str(account["id"])
        acct = str(account.get("acct") or account.get("username") or "")
        self.channel.config["acct"] = acct
        self._learn_instance()
        domain = urlsplit(self.base_url).hostname or ""
        return f"@{acct}" if "@" in acct else f"@{acct}@{domain}"

    def _learn_instance(self) -> None:
        """Post length and streaming host, where the server publishes them (v2 instance)."""
        try:
            instance = self._json("GET", "/api/v2/instance")
        except ExternalError:
            return
        configuration = instance.get("configuration") if isinstance(instance, dict) else None
        if not isinstance(configuration, dict):
            return
        statuses = configuration.get("statuses") or {}
        if isinstance(statuses.get("max_characters"), int) and statuses["max_characters"] > MENTION_ROOM:
            self.channel.config["max_characters"] = statuses["max_characters"]
        streaming = (configuration.get("urls") or {}).get("streaming")
        if isinstance(streaming, str) and streaming.startswith(("wss://", "ws://")):
            self.channel.config["streaming_url"] = streaming.rstrip("/")

    def limits(self) -> Limits:
        maximum = int(self.channel.config.get("max_characters", DEFAULT_MAX_CHARACTERS))
        return Limits(max_reply_chars=maximum - MENTION_ROOM, unit="characters")

    def reply_length(self, text: str) -> int:
        return status_length(text)

    # -- Listening --------------------------------------------------------------------------

    def search(self, rule: WatchRule, cursor: Cursor) -> tuple[Sequence[InboundPost], Cursor]:
        posts, next_cursor = self._search(rule, cursor)
        return backfill_only(posts, cursor), next_cursor

    def _search(self, rule: WatchRule, cursor: Cursor) -> tuple[Sequence[InboundPost], Cursor]:
        if rule.kind == RuleKind.HASHTAG:
            tag = _tag(rule.query)
            if not tag:
                raise PermanentError(f"rule {rule.name!r} has no hashtag to follow")
            statuses, cursor = self._page_forward(f"/api/v1/timelines/tag/{quote(tag, safe='')}", cursor, status=True)
            return self._posts(statuses, rule), cursor
        if rule.kind in (RuleKind.MENTIONS, RuleKind.DIRECT):
            # A channel's mentions and direct rules read the same notifications: ask once.
            key = str(cursor.get("min_id", ""))
            if key not in self._notifications:
                self._notifications[key] = self._page_forward(
                    "/api/v1/notifications", cursor, status=False, params=[("types[]", "mention")]
                )
            notifications, cursor = self._notifications[key]
            statuses = [n["status"] for n in notifications if isinstance(n.get("status"), dict)]
            return self._posts(statuses, rule), cursor
        return self._search_statuses(rule, cursor)

    def _page_forward(
        self, path: str, cursor: Cursor, *, status: bool, params: Sequence[tuple[str, str]] = ()
    ) -> tuple[list[dict[str, Any]], Cursor]:
        """Everything above the cursor's min_id, oldest first, paging forward; the next cursor
        rewinds by OVERLAP (statuses) so late federated posts are not skipped."""
        min_id = str(cursor.get("min_id", ""))
        items: list[dict[str, Any]] = []
        caught_up = False
        for _ in range(MAX_PAGES):
            query = [*params, ("limit", str(PAGE_LIMIT))] + ([("min_id", min_id)] if min_id else [])
            page = self._json("GET", path, params=query)
            if not isinstance(page, list):
                raise TransientError(f"Mastodon answered {path} with {type(page).__name__}, not a list")
            page = [item for item in page if isinstance(item, dict) and item.get("id")]
            items.extend(page)
            # A first poll takes only the latest page: listening starts now, not years ago.
            if not page or not cursor.get("min_id") or len(page) < PAGE_LIMIT:
                caught_up = True
                break
            min_id = _newest([str(item["id"]) for item in page])
        items.sort(key=lambda item: _id_key(str(item["id"])))
        if not items:
            return items, cursor
        # Rewinding is for a poll that caught up; in a burst bigger than MAX_PAGES it would
        # fetch the same pages forever, so the next poll goes on from the newest instead.
        rewind = status and caught_up
        return items, {"min_id": self._rewound(items) if rewind else str(items[-1]["id"])}

    def _rewound(self, statuses: list[dict[str, Any]]) -> str:
        newest = statuses[-1]
        newest_at = aware_time(newest.get("created_at"))
        if newest_at is None:
            return str(newest["id"])
        older = [s for s in statuses if (aware_time(s.get("created_at")) or newest_at) <= newest_at - OVERLAP]
        # Nothing older than the overlap in this batch: keep a little of it by restarting at the
        # oldest status we got (a re-fetch of one batch, deduped by ingest).
        return str((older[-1] if older else statuses[0])["id"]) if len(statuses) > 1 else str(newest["id"])

    def _search_statuses(self, rule: WatchRule, cursor: Cursor) -> tuple[Sequence[InboundPost], Cursor]:
        # No paging parameters: some servers (Takahē) answer any of them with nothing.
        found = self._json(
            "GET",
            "/api/v2/search",
            params=[("q", rule.query), ("type", "statuses"), ("resolve", "false"), ("limit", str(PAGE_LIMIT))],
        )
        statuses = found.get("statuses") if isinstance(found, dict) else None
        if not isinstance(statuses, list):
            raise TransientError("Mastodon search answered without a statuses list")
        after = str(cursor.get("min_id", ""))
        fresh = [s for s in statuses if isinstance(s, dict) and s.get("id")]
        fresh = [s for s in fresh if not after or _id_key(str(s["id"])) > _id_key(after)]
        fresh.sort(key=lambda s: _id_key(str(s["id"])))
        if not fresh:
            return [], cursor
        return self._posts(fresh, rule), {"min_id": self._rewound(fresh)}

    def _posts(self, statuses: Sequence[dict[str, Any]], rule: WatchRule | None) -> list[InboundPost]:
        posts = []
        for status in statuses:
            post = self.parse_status(status, rule_id=rule.pk if rule is not None else None)
            if post is None:
                continue
            if rule is not None and rule.kind == RuleKind.DIRECT and not post.is_direct:
                continue
            if rule is not None and rule.kind == RuleKind.MENTIONS and post.is_direct:
                continue
            posts.append(post)
        return posts

    def parse_status(self, status: Mapping[str, Any], *, rule_id: int | None = None) -> InboundPost | None:
        """A Status entity as our InboundPost; None for boosts and statuses without the basics."""
        if status.get("reblog"):
            return None
        account = status.get("account")
        posted_at = aware_time(status.get("created_at"))
        if not isinstance(account, dict) or not account.get("id") or posted_at is None or not status.get("id"):
            return None
        text = html_to_text(str(status.get("content") or ""))
        warning = str(status.get("spoiler_text") or "").strip()
        if warning:
            text = f"CW: {warning}\n\n{text}"
        return InboundPost(
            external_id=str(status["id"]),
            author=InboundAuthor(
                external_id=str(account["id"]),
                handle=self._handle(str(account.get("acct") or account.get("username") or "")),
                name=str(account.get("display_name") or ""),
                profile_url=str(account.get("url") or ""),
            ),
            text=text,
            posted_at=posted_at,
            url=str(status.get("url") or status.get("uri") or ""),
            in_reply_to=str(status.get("in_reply_to_id") or ""),
            language=str(status.get("language") or "")[:16].lower(),
            is_direct=status.get("visibility") == "direct",
            raw=dict(status),
            details=status_details(status),
            rule_id=rule_id,
            edited_at=aware_time(status.get("edited_at")),
        )

    def _handle(self, acct: str) -> str:
        if not acct:
            return ""
        domain = urlsplit(self.base_url).hostname or ""
        return f"@{acct}" if "@" in acct else f"@{acct}@{domain}"

    # -- Streaming --------------------------------------------------------------------------

    def stream(self, rules: Sequence[WatchRule]) -> Iterator[InboundPost | StreamMark]:
        saved = self.channel.stream_cursor or {}
        self._stream_position = {str(k): str(v) for k, v in saved.items() if isinstance(v, str | int)}
        hashtags = {_tag(rule.query).lower(): rule for rule in rules if rule.kind == RuleKind.HASHTAG}
        listening = [rule for rule in rules if rule.kind in (RuleKind.HASHTAG, RuleKind.MENTIONS, RuleKind.DIRECT)]
        url = self.channel.config.get("streaming_url") or "wss://" + (urlsplit(self.base_url).netloc)
        if self.base_url.startswith("http://") and not self.channel.config.get("streaming_url"):
            url = "ws://" + urlsplit(self.base_url).netloc
        with ExitStack() as stack:
            try:
                connection = stack.enter_context(
                    ws_connect(url + "/api/v1/streaming", headers=self._headers(), name="Mastodon streaming")
                )
            except PermanentError as exc:
                if exc.status != 404:
                    raise
                # No streaming API here (Takahē, some proxies): the runner polls meanwhile.
                raise TransientError(
                    "this server has no streaming API (HTTP 404); polling instead",
                    status=404,
                    retry_at=timezone.now() + timedelta(hours=1),
                ) from exc
            connection.send(json.dumps({"type": "subscribe", "stream": "user"}))
            for tag in hashtags:
                connection.send(json.dumps({"type": "subscribe", "stream": "hashtag", "tag": tag}))
            # Mastodon does not replay a stream: what came while we were away is polled first.
            yield from self._catch_up(listening)
            yield from self._events(connection, rules, hashtags)

    def _catch_up(self, rules: Sequence[WatchRule]) -> Iterator[InboundPost | StreamMark]:
        for rule in rules:
            key = str(rule.pk)
            start = self._stream_position.get(key) or str((rule.cursor or {}).get("min_id", ""))
            if not start:
                continue  # never listened before: start live
            posts, cursor = self.search(rule, {"min_id": start})
            if cursor.get("min_id"):
                self._stream_position[key] = str(cursor["min_id"])
            yield from posts
            yield StreamMark()

    def _events(
        self, connection: Any, rules: Sequence[WatchRule], hashtags: Mapping[str, WatchRule]
    ) -> Iterator[InboundPost | StreamMark]:
        by_kind = {rule.kind: rule for rule in rules}
        last_mark = time.monotonic()
        for frame in ws_frames(connection, timeout=RECV_TIMEOUT, name="Mastodon streaming"):
            if frame is None:
                yield StreamMark()
                last_mark = time.monotonic()
                continue
            yield from self._frame_items(frame, by_kind, hashtags)
            if time.monotonic() - last_mark > RECV_TIMEOUT:
                yield StreamMark()
                last_mark = time.monotonic()

    def _frame_items(
        self, frame: str | bytes, by_kind: Mapping[str, WatchRule], hashtags: Mapping[str, WatchRule]
    ) -> Iterator[InboundPost]:
        try:
            message = json.loads(frame)
            event = message.get("event")
            payload = message.get("payload")
            if isinstance(message.get("error"), str):
                # E.g. {"error": "Unknown stream type", "status": 400} for one subscription;
                # the others go on. A refused token closes the socket instead.
                logger.warning("Mastodon streaming of %s: %s", self.channel.slug, message["error"])
                return
            if event == "delete" and payload:
                yield self._deletion(str(payload))
                return
            data = json.loads(payload) if isinstance(payload, str) else payload
        except (ValueError, AttributeError, TypeError):
            return  # a malformed frame is skipped, not fatal: the next poll covers it
        if not isinstance(data, dict):
            return
        if event == "notification" and data.get("type") == "mention" and isinstance(data.get("status"), dict):
            status = data["status"]
            rule = by_kind.get(RuleKind.DIRECT if status.get("visibility") == "direct" else RuleKind.MENTIONS)
            if rule is not None:
                post = self.parse_status(status, rule_id=rule.pk)
                if post is not None:
                    self._stream_position[str(rule.pk)] = str(data.get("id") or "")
                    yield post
        elif event in ("update", "status.update"):
            stream = message.get("stream") or []
            tags = {str(t.get("name", "")).lower() for t in data.get("tags") or [] if isinstance(t, dict)}
            if isinstance(stream, list) and len(stream) > 1 and stream[0] == "hashtag":
                tags.add(str(stream[1]).lower())
            matched = next((hashtags[t] for t in sorted(tags) if t in hashtags), None)
            if matched is None and event == "status.update":
                matched = self._mention_rule(data, by_kind)
            if matched is not None:
                post = self.parse_status(data, rule_id=matched.pk)
                if post is not None:
                    if event == "update":
                        # An edit carries an older id: the stream's position stays where it is.
                        self._stream_position[str(matched.pk)] = post.external_id
                    yield post

    def _mention_rule(self, status: Mapping[str, Any], by_kind: Mapping[str, WatchRule]) -> WatchRule | None:
        """The mentions or direct rule for an edited status that mentions our account (edits
        come as `status.update`, not as a new mention notification)."""
        own = str(self.channel.config.get(OWN_ACCOUNT_KEY) or "")
        mentioned = {str(m.get("id")) for m in status.get("mentions") or [] if isinstance(m, dict)}
        if not own or own not in mentioned:
            return None
        return by_kind.get(RuleKind.DIRECT if status.get("visibility") == "direct" else RuleKind.MENTIONS)

    def _deletion(self, status_id: str) -> InboundPost:
        return InboundPost(
            external_id=status_id,
            author=InboundAuthor(external_id=""),
            text="",
            posted_at=timezone.now(),
            deleted=True,
        )

    def stream_cursor(self) -> Cursor:
        """Per rule id: the newest status (hashtag) or notification (mentions) id seen."""
        return dict(self._stream_position)

    # -- Replying ---------------------------------------------------------------------------

    def reply(self, post: Post, text: str, visibility: str, *, idempotency_key: str) -> str:
        body = self._status_body(post, text, visibility)
        status = self._json("POST", "/api/v1/statuses", body=body, headers={"Idempotency-Key": idempotency_key})
        if not isinstance(status, dict) or not status.get("id"):
            raise PermanentError("the server accepted the reply but did not say its id")
        return str(status["id"])

    def reply_visibility(self, post: Post, visibility: str) -> str:
        """The Mastodon visibility a reply of ours (`visibility` "public" or "direct") to `post`
        is sent with: a direct one direct; a public one the channel's public visibility (public
        or unlisted), narrowed to that of the post it answers, which is kept in its payload."""
        if visibility == "direct":
            return "direct"
        return min(self._public_visibility(), _visibility_of(post), key=VISIBILITIES.index)

    def reply_refusal(self, post: Post, visibility: str) -> str:
        if visibility == "public" and self.reply_visibility(post, visibility) == "direct":
            return "This is a direct message on Mastodon: answer it with a direct message."
        return ""

    def reply_audience(self, post: Post, visibility: str) -> str:
        chosen = self.reply_visibility(post, visibility)
        audience = AUDIENCE[chosen].format(who=post.author.handle or "the poster")
        if visibility == "public" and chosen != self._public_visibility():
            audience += (
                f" The post answered was {VISIBILITY_WORDS[_visibility_of(post)]}, and a reply reaches no further."
            )
        return audience

    def status_refusal(self) -> str:
        return ""

    def post_status(self, text: str, *, idempotency_key: str) -> tuple[str, str]:
        """A public status of our account: POST /api/v1/statuses with the Idempotency-Key."""
        maximum = int(self.channel.config.get("max_characters", DEFAULT_MAX_CHARACTERS))
        if status_length(text) > maximum:
            raise PermanentError(f"the status post is {status_length(text)} characters; the server allows {maximum}")
        status = self._json(
            "POST",
            "/api/v1/statuses",
            body={"status": text, "visibility": "public"},
            headers={"Idempotency-Key": idempotency_key},
        )
        if not isinstance(status, dict) or not status.get("id"):
            raise PermanentError("the server accepted the status post but did not say its id")
        return str(status["id"]), str(status.get("url") or "")

    def _status_body(self, post: Post, text: str, visibility: str) -> dict[str, Any]:
        """The status that answers `post`: the author @-mentioned first (a direct status reaches
        only the accounts it mentions), in the private thread for a DM to a DM."""
        mention = post.author.handle if post.author.handle.startswith("@") else f"@{post.author.handle}"
        if post.author.handle and mention.lower() not in text.lower():
            text = f"{mention} {text}"
        maximum = int(self.channel.config.get("max_characters", DEFAULT_MAX_CHARACTERS))
        if status_length(text) > maximum:
            raise PermanentError(
                f"the reply with its mention is {status_length(text)} characters; the server allows {maximum}"
            )
        refusal = self.reply_refusal(post, visibility)
        if refusal:
            raise PermanentError(refusal)
        direct = visibility == "direct"
        body: dict[str, Any] = {"status": text, "visibility": self.reply_visibility(post, visibility)}
        # A DM answers in the private thread; a public post answered privately starts a new one.
        if not direct or post.is_direct:
            body["in_reply_to_id"] = post.external_id
        return body

    def find_sent(self, post: Post, text: str, visibility: str, *, since: datetime) -> list[str]:
        """Our statuses answering `post` with this text. Mastodon dedupes by Idempotency-Key
        for an hour; other servers (Takahē) ignore the key, and their list of our own statuses
        leaves direct ones out, so every place a server may list them is read, one page each,
        until one holds a copy: the post's replies (context descendants), our own statuses, and
        for a direct message the conversations (empty on Takahē) and our home timeline."""
        account = str(self.channel.config.get(OWN_ACCOUNT_KEY) or "")
        if not account:
            raise PermanentError("verify the Mastodon channel first: looking for an earlier reply needs our account id")
        body = self._status_body(post, text, visibility)
        parent = str(body.get("in_reply_to_id") or "")
        direct = body["visibility"] == "direct"
        sources: list[tuple[str, list[tuple[str, str]], str]] = []
        if parent:
            sources.append((f"/api/v1/statuses/{quote(parent, safe='')}/context", [], "descendants"))
        sources.append((f"/api/v1/accounts/{quote(account, safe='')}/statuses", [("limit", str(PAGE_LIMIT))], ""))
        if direct:
            sources.append(("/api/v1/conversations", [("limit", str(PAGE_LIMIT))], "last_status"))
            sources.append(("/api/v1/timelines/home", [("limit", str(PAGE_LIMIT))], ""))
        for path, params, key in sources:
            found = [
                str(status["id"])
                for status in self._listed_statuses(path, params, key)
                if self._is_copy(status, body, account=account, recipient=post.author.external_id, since=since)
            ]
            if found:
                return sorted(set(found), key=_id_key)
        return []

    def _listed_statuses(self, path: str, params: Sequence[tuple[str, str]], key: str) -> list[dict[str, Any]]:
        """The statuses of one listing: the list itself, the `descendants` of a context, or the
        `last_status` of each conversation. A listing the server does not have (404) is empty."""
        try:
            data = self._json("GET", path, params=params)
        except PermanentError as exc:
            if exc.status == 404:
                return []
            raise
        if key == "descendants":
            # A server may leave out an empty list; anything else in its place is malformed.
            data = data.get("descendants", []) if isinstance(data, dict) else None
        if not isinstance(data, list):
            raise TransientError(f"Mastodon answered {path} without a list")
        if key == "last_status":
            data = [item.get("last_status") for item in data if isinstance(item, dict)]
        return [status for status in data if isinstance(status, dict) and status.get("id")]

    def _is_copy(
        self, status: Mapping[str, Any], body: Mapping[str, Any], *, account: str, recipient: str, since: datetime
    ) -> bool:
        created = aware_time(status.get("created_at"))
        if created is None or created < since or status.get("reblog"):
            return False
        author = status.get("account")
        if not isinstance(author, dict) or str(author.get("id") or "") != account:
            return False
        if (status.get("visibility") == "direct") != (body["visibility"] == "direct"):
            return False
        if str(status.get("in_reply_to_id") or "") != str(body.get("in_reply_to_id") or ""):
            return False
        mentions = status.get("mentions")
        mentioned = {str(m.get("id")) for m in mentions if isinstance(m, dict)} if isinstance(mentions, list) else set()
        if mentioned and recipient and recipient not in mentioned:
            return False
        return same_text(str(body["status"]), html_to_text(str(status.get("content") or "")))

    # -- Deletions --------------------------------------------------------------------------

    def posts_gone(self, posts: Sequence[Post]) -> dict[str, str]:
        """GET /api/v1/statuses/:id per post: 404 or 410 is gone (Mastodon cannot tell a deletion
        from a moderator's removal or a suspended account; Takahē answers 404 as an HTML page)."""
        gone: dict[str, str] = {}
        for post in posts:
            try:
                path = f"/api/v1/statuses/{quote(post.external_id, safe='')}"
                self.request("GET", self.base_url + path, what=path, **self._arguments(None, None, None))
            except PermanentError as exc:
                if exc.status not in (404, 410):
                    raise
                gone[post.external_id] = GONE_DELETED
        return gone

    def _public_visibility(self) -> str:
        chosen = self.channel.config.get("reply_visibility", "public")
        return chosen if chosen in ("public", "unlisted") else "public"


def _tag(query: str) -> str:
    return query.strip().lstrip("#").split()[0] if query.strip().lstrip("#") else ""


def _visibility_of(post: Post) -> str:
    """The visibility of a stored status, from its payload (every Status names one)."""
    raw = post.raw if isinstance(post.raw, dict) else {}
    visibility = str(raw.get("visibility") or ("direct" if post.is_direct else UNKNOWN_VISIBILITY))
    return visibility if visibility in VISIBILITIES else UNKNOWN_VISIBILITY


def status_details(status: Mapping[str, Any]) -> tuple[PostDetail, ...]:
    """What a status carries beside its text: the status it quotes, its poll's options, and its
    attachments (an image's description, or the attachment's address where it has none)."""
    details: list[PostDetail] = []
    quoted = _quoted_status(status)
    if quoted is not None:
        text = html_to_text(str(quoted.get("content") or ""))
        warning = str(quoted.get("spoiler_text") or "").strip()
        if warning:
            text = f"CW: {warning}\n\n{text}"
        details.append(PostDetail(DetailKind.QUOTE, text, str(quoted.get("url") or quoted.get("uri") or "")))
    poll = status.get("poll")
    if isinstance(poll, dict) and isinstance(poll.get("options"), list):
        details.extend(
            PostDetail(DetailKind.POLL, str(option.get("title") or ""))
            for option in poll["options"]
            if isinstance(option, dict)
        )
    attachments = status.get("media_attachments")
    for media in attachments if isinstance(attachments, list) else []:
        if not isinstance(media, dict):
            continue
        url = str(media.get("url") or media.get("remote_url") or media.get("preview_url") or "")
        description = str(media.get("description") or "")
        kind = DetailKind.ALT_TEXT if description else DetailKind.MEDIA
        details.append(PostDetail(kind, description, url))
    return tuple(details)


def _quoted_status(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The status a status quotes, where the answer carries it: Mastodon 4.4+ sends
    `quote: {state, quoted_status}` (a status only once the quote is accepted; a shallow quote
    has only its id), servers that quoted before put the Status itself in `quote` (or Akkoma's
    `pleroma.quote`)."""
    quote_ = status.get("quote")
    if not isinstance(quote_, dict):
        pleroma = status.get("pleroma")
        quote_ = pleroma.get("quote") if isinstance(pleroma, dict) else None
        if not isinstance(quote_, dict):
            return None
    if "state" in quote_ and "content" not in quote_:
        quoted = quote_.get("quoted_status")
        if quote_.get("state") != "accepted" or not isinstance(quoted, dict):
            return None
        return quoted
    return quote_ if "content" in quote_ else None
