"""X (API v2): recent search, mentions and the filtered stream in; summoned replies and DMs out.

Credentials (encrypted on the channel):
    bearer_token        app-only token: recent search, the filtered stream and its rules
    consumer_key, consumer_secret, access_token, access_token_secret
                        OAuth 1.0a user context of the channel's account ("Read, Write and
                        Direct Messages"): who-am-I, mentions, DMs, posting replies. These
                        tokens do not expire, unlike OAuth 2.0 user tokens (2 h), which would
                        need a refresh-and-store cycle the connector cannot do without writes.
Config (not secret):
    account_id          our account's user id, filled by verify()
    reply_policy        "summoned" (self-serve tiers, default) or "any" (Enterprise)
    prices              overrides of DEFAULT_PRICES, in USD per resource
    max_pages           pages of 100 per rule and poll (default 5)
    stream_backfill_minutes   ask the stream to replay up to 5 minutes after a reconnect
                        (only some access levels allow it; default off)
    stream_timeout      seconds of silence after which the stream counts as dropped (30)
The channel's base_url, when set, replaces https://api.x.com (a proxy, or a test server).

Cursor per rule: {"since_id"} once caught up; {"since_id", "until_id", "newest_id"} while a
backlog larger than max_pages is being worked off oldest-last, so nothing between is skipped.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

import requests
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from socialitsm.exceptions import PermanentError, TransientError

from ..base import (
    GONE_DELETED,
    OWN_ACCOUNT_KEY,
    Connector,
    Cursor,
    InboundPost,
    Limits,
    RuleKind,
    StreamMark,
    same_text,
)
from .config import XConfig
from .oauth import USER_KEYS, oauth1_header
from .parse import (
    _as_dict,
    _as_list,
    _full_text,
    _not_found,
    _posted_at,
    _problem_text,
    _snowflake_time,
    _valid_items,
    dm_to_inbound,
    original_of,
    plain_text,
    tweet_to_inbound,
)
from .text import MAX_WEIGHTED_LENGTH, contains_url, weighted_length

if TYPE_CHECKING:
    from socialitsm.models import Channel, Post, WatchRule

logger = logging.getLogger(__name__)

API = "https://api.x.com"
# Pay-per-use prices from the X pricing page (2026-08), USD per resource; channel.config["prices"]
# overrides any of them. X charges a resource read once per UTC day: reads are billed per resource
# (`Connector.bill`) and the channel's counter adds each (day, price item, resource) once.
DEFAULT_PRICES: dict[str, float] = {
    "post_read": 0.005,
    "user_read": 0.010,
    "owned_read": 0.001,
    "dm_read": 0.010,
    "post_create": 0.015,
    "post_create_url": 0.20,
    "summoned_reply": 0.010,
    "dm_create": 0.015,
}
TWEET_FIELDS = (
    "attachments,author_id,conversation_id,created_at,edit_controls,edit_history_tweet_ids,entities,"
    "in_reply_to_user_id,lang,note_tweet,referenced_tweets"
)
# Quoted and reposted posts with their authors, poll options and image descriptions come as includes.
EXPANSIONS = "author_id,referenced_tweets.id,referenced_tweets.id.author_id,attachments.poll_ids,attachments.media_keys"
USER_FIELDS = "username,name"
MEDIA_FIELDS = "alt_text,preview_image_url,type,url"
POLL_FIELDS = "options"
POST_FIELDS = {
    "tweet.fields": TWEET_FIELDS,
    "expansions": EXPANSIONS,
    "user.fields": USER_FIELDS,
    "media.fields": MEDIA_FIELDS,
    "poll.fields": POLL_FIELDS,
}
DM_FIELDS = "id,text,event_type,created_at,sender_id,dm_conversation_id"
PAGE_SIZE = 100
# Pages of our own posts or DM events read when a retry looks for a copy of its reply.
SENT_PAGES = 2
# Pay-per-use search and stream rules take queries of up to 512 characters (Enterprise: more; the
# channel's config["max_query_length"] raises it).
MAX_QUERY_LENGTH = 512
# Recent search reaches back 7 days; an older since_id is refused, so we start from the edge.
SEARCH_WINDOW = timedelta(days=7) - timedelta(minutes=5)
STREAM_READ_TIMEOUT = 30.0  # X sends a keep-alive at least every 20 s; silence beyond is a drop
# A stream line is one post with its expansions, a few kB; a longer one means a broken stream.
MAX_STREAM_LINE = 1024 * 1024
TAG_PREFIX = "socialitsm"


class XConnector(Connector):
    network = "x"
    label = "X"
    config_class = XConfig
    rate_limit_headers = ("x-rate-limit-remaining", "x-rate-limit-limit", "x-rate-limit-reset")
    problem_keys = ("title", "detail")
    # 5xx retry when Retry-After says, not at x-rate-limit-reset: that is when the allowance
    # refills, not when X recovers.
    ERROR_WORDS: ClassVar[dict[str, str]] = {
        "rate_limited": "X rate limit or usage cap reached ({detail}){when}",
        "reset": "; allowance resets at {reset:%H:%M:%S} UTC",
    }
    lookup_batch = 100  # GET /2/tweets takes up to 100 ids
    # Every post read is billed (once per UTC day): look posts up a few times a day, not hourly.
    recheck_minutes = 360
    recheck_max_posts = 20

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self._stream_last: Cursor = dict(getattr(channel, "stream_cursor", None) or {})

    # --- configuration ---------------------------------------------------------------------------

    def price(self, item: str) -> float:
        overrides = self.channel.config.get("prices") or {}
        try:
            return float(overrides.get(item, DEFAULT_PRICES[item]))
        except (TypeError, ValueError):
            return DEFAULT_PRICES[item]

    @property
    def account_id(self) -> str:
        return str(self.channel.config.get(OWN_ACCOUNT_KEY) or "")

    @property
    def username(self) -> str:
        return self.channel.handle.strip().lstrip("@")

    def _has_user_context(self) -> bool:
        return all(self.channel.credentials.get(key) for key in USER_KEYS)

    def _max_pages(self) -> int:
        try:
            return max(1, min(50, int(self.channel.config.get("max_pages", 5))))
        except (TypeError, ValueError):
            return 5

    # --- transport -------------------------------------------------------------------------------

    def problem(self, response: requests.Response) -> str:
        """The readable part of an X error body: RFC 7807 problem, v1.1 errors list, or raw text."""
        try:
            body = response.json()
        except ValueError:
            return response.text[:200].strip()
        if not isinstance(body, dict):
            return str(body)[:200]
        errors = body.get("errors")
        titled = any(body.get(key) for key in self.problem_keys)
        if not titled and isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return str(first.get("detail") or first.get("message") or first.get("title") or first)
        return super().problem(response)

    def _auth(self, method: str, url: str, params: Mapping[str, str], auth: str) -> str:
        credentials = self.channel.credentials
        if auth == "user":
            if not self._has_user_context():
                raise PermanentError(
                    "this X channel has no OAuth 1.0a user keys (consumer_key, consumer_secret, "
                    "access_token, access_token_secret); they are needed to read mentions and DMs and to reply"
                )
            return oauth1_header(method, url, params, credentials)
        token = credentials.get("bearer_token")
        if not token:
            raise PermanentError("this X channel has no bearer_token (app-only token for search and the stream)")
        return f"Bearer {token}"

    def _signed(self, method: str, path: str, auth: str, params: Mapping[str, str] | None) -> dict[str, Any]:
        """The URL and arguments of one call, signed for `auth` ("app" or "user")."""
        url = (self.channel.base_url or API).rstrip("/") + path
        params = dict(params or {})
        headers = {"Authorization": self._auth(method, url, params, auth), "User-Agent": "socialitsm"}
        return {"url": url, "params": params or None, "headers": headers}

    def _send(
        self,
        method: str,
        path: str,
        *,
        auth: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        stream: bool = False,
        timeout: float | None = None,
    ) -> requests.Response:
        """One call; the caller records the answer (the stream, once it is open)."""
        signed = self._signed(method, path, auth, params)
        return self.request(method, what=path, record=False, json=body, stream=stream, timeout=timeout, **signed)

    def _json(
        self,
        method: str,
        path: str,
        *,
        auth: str,
        charge: Callable[[Mapping[str, Any]], float] | None = None,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Mapping[str, Any]:
        return self.request_object(
            method, what=path, charge=charge, json=body, **self._signed(method, path, auth, params)
        )

    def _bill_reads(self, body: Mapping[str, Any], item: str) -> float:
        """Bill what an answer delivered: its posts (`data`, a list or one object) and the posts
        it includes at `item`'s price, the users it includes as user reads. Returns 0: the cost
        is counted per resource and UTC day when the channel records it (`Connector.bill`)."""
        includes = _as_dict(body.get("includes"))
        data = body.get("data")
        items = [data] if isinstance(data, dict) else _as_list(data)
        posts = [i.get("id") for i in items + _as_list(includes.get("tweets")) if isinstance(i, dict)]
        self.bill(item, posts, self.price(item))
        users = [u.get("id") for u in _as_list(includes.get("users")) if isinstance(u, dict)]
        self.bill("user_read", users, self.price("user_read"))
        return 0.0

    def _bill_items(self, body: Mapping[str, Any], item: str) -> float:
        """Bill the resources of an answer's `data` list at `item`'s price (see `_bill_reads`)."""
        self.bill(item, [i.get("id") for i in _as_list(body.get("data")) if isinstance(i, dict)], self.price(item))
        return 0.0

    def _bill_user(self, body: Mapping[str, Any]) -> float:
        user = body.get("data")
        self.bill("user_read", [user.get("id")] if isinstance(user, dict) else [], self.price("user_read"))
        return 0.0

    # --- identity --------------------------------------------------------------------------------

    def verify(self) -> str:
        """Who-am-I with the user keys (/2/users/me) or, with only an app token, a lookup of the
        channel's handle. Stores the account id in config["account_id"]."""
        credentials = self.channel.credentials
        if not credentials.get("bearer_token") and not self._has_user_context():
            raise PermanentError("an X channel needs a bearer_token and/or the four OAuth 1.0a user keys")
        if self._has_user_context():
            body = self._json(
                "GET",
                "/2/users/me",
                auth="user",
                params={"user.fields": USER_FIELDS},
                charge=self._bill_user,
            )
        else:
            if not self.username:
                raise PermanentError("set the channel's handle: with only an app token X cannot tell who we are")
            body = self._json(
                "GET",
                f"/2/users/by/username/{quote(self.username, safe='')}",
                auth="app",
                params={"user.fields": USER_FIELDS},
                charge=self._bill_user,
            )
        user = body.get("data")
        if not isinstance(user, dict) or not user.get("id") or not user.get("username"):
            raise PermanentError(f"X did not say who this account is: {_problem_text(body)}")
        if credentials.get("bearer_token") and self._has_user_context():
            # The app token is used for search and the stream: check it too (free call).
            self._json("GET", "/2/tweets/search/stream/rules", auth="app", params={"max_results": "1"})
        self.channel.config[OWN_ACCOUNT_KEY] = str(user["id"])
        return f"@{user['username']}"

    # --- listening -------------------------------------------------------------------------------

    def rule_query(self, rule: WatchRule) -> str:
        """The X search/stream query of a watch rule: its terms, its languages, no reposts, not
        our own posts."""
        terms = rule.query.strip()
        if rule.kind == RuleKind.HASHTAG:
            tags = [t.lstrip("#") for t in terms.split() if t.lstrip("#")]
            terms = " OR ".join(f"#{t}" for t in tags)
            if len(tags) > 1:
                terms = f"({terms})"
        elif rule.kind == RuleKind.MENTIONS:
            if not self.username:
                raise PermanentError("set the channel's handle to listen for mentions")
            terms = f"@{self.username}"
        if not terms:
            raise PermanentError(f"watch rule {rule.name!r} has no search terms")
        parts = [terms]
        languages = [str(code) for code in rule.languages or [] if str(code).strip()]
        if languages:
            langs = " OR ".join(f"lang:{code}" for code in languages)
            parts.append(f"({langs})" if len(languages) > 1 else langs)
        parts.append("-is:retweet")
        if self.username:
            parts.append(f"-from:{self.username}")
        query = " ".join(parts)
        limit = int(self.channel.config.get("max_query_length") or MAX_QUERY_LENGTH)
        if len(query) > limit:
            raise PermanentError(
                f"watch rule {rule.name!r} makes an X query of {len(query)} characters; the limit is {limit}"
            )
        return query

    def search(self, rule: WatchRule, cursor: Cursor) -> tuple[Sequence[InboundPost], Cursor]:
        fields = dict(POST_FIELDS)
        if rule.kind == RuleKind.DIRECT:
            return self._dm_events(cursor)
        if rule.kind == RuleKind.MENTIONS:
            if not self.account_id:
                raise PermanentError("verify the X channel first: listening for mentions needs our account id")
            return self._timeline(
                f"/2/users/{self.account_id}/mentions", fields, cursor, auth="user", price="owned_read", window=None
            )
        query = self.rule_query(rule)
        return self._timeline(
            "/2/tweets/search/recent",
            {**fields, "query": query},
            cursor,
            auth="app",
            price="post_read",
            window=SEARCH_WINDOW,
        )

    def _timeline(
        self,
        path: str,
        params: Mapping[str, str],
        cursor: Cursor,
        *,
        auth: str,
        price: str,
        window: timedelta | None,
    ) -> tuple[list[InboundPost], Cursor]:
        """Newest-first pages after since_id, up to max_pages. A first poll takes only the newest
        page (no week-long backfill bill); a backlog beyond the cap is resumed next poll from
        until_id, and since_id only moves once everything up to newest_id is stored."""
        since = str(cursor.get("since_id") or "")
        until = str(cursor.get("until_id") or "")
        newest = str(cursor.get("newest_id") or "")
        base: dict[str, str] = {**params, "max_results": str(PAGE_SIZE)}
        if since:
            sent = _snowflake_time(since)
            if window is not None and sent is not None and sent < timezone.now() - window:
                # The gap is older than recent search reaches: take what it still has.
                base["start_time"] = (timezone.now() - window).strftime("%Y-%m-%dT%H:%M:%SZ")
            else:
                base["since_id"] = since
        if until:
            base["until_id"] = until
        first = not since and not until
        pages = 1 if first else self._max_pages()
        posts: dict[str, InboundPost] = {}
        token = ""
        for _ in range(pages):
            query = {**base, "pagination_token": token} if token else base
            body = self._json("GET", path, auth=auth, params=query, charge=lambda b: self._bill_reads(b, price))
            includes = body.get("includes") or {}
            for tweet in _valid_items(body):
                # The mentions timeline has no -is:retweet: a repost counts as the post it reposts.
                original = original_of(tweet, includes)
                if original is not None:
                    post = tweet_to_inbound(original, includes)
                    posts[post.external_id] = post
            meta = body.get("meta") or {}
            if meta.get("newest_id") and _newer(str(meta["newest_id"]), newest):
                newest = str(meta["newest_id"])
            token = str(meta.get("next_token") or "")
            if not token:
                break
        ordered = sorted(posts.values(), key=lambda p: int(p.external_id))
        oldest = ordered[0].external_id if ordered else until
        if token and not first and oldest:
            return ordered, {"since_id": since, "until_id": oldest, "newest_id": newest}
        return ordered, {"since_id": newest or since} if (newest or since) else {}

    def _dm_events(self, cursor: Cursor) -> tuple[list[InboundPost], Cursor]:
        """DM events come newest first without since_id: page back until the last one stored."""
        since = str(cursor.get("since_id") or "")
        newest = since
        params = {
            "event_types": "MessageCreate",
            "dm_event.fields": DM_FIELDS,
            "expansions": "sender_id",
            "user.fields": USER_FIELDS,
            "max_results": str(PAGE_SIZE),
        }
        posts: list[InboundPost] = []
        token = str(cursor.get("pagination_token") or "")
        pending_newest = str(cursor.get("newest_id") or "")
        pages = 1 if not since else self._max_pages()
        reached = False
        for _ in range(pages):
            query = {**params, "pagination_token": token} if token else params
            body = self._json(
                "GET",
                "/2/dm_events",
                auth="user",
                params=query,
                charge=lambda b: self._bill_items(b, "dm_read"),
            )
            includes = body.get("includes") or {}
            for event in _valid_items(body):
                if since and not _newer(str(event["id"]), since):
                    reached = True
                    break
                posts.append(dm_to_inbound(event, includes))
            token = str((body.get("meta") or {}).get("next_token") or "")
            if reached or not token:
                token = ""
                break
        for post in posts:
            if _newer(post.external_id, newest):
                newest = post.external_id
        if pending_newest and _newer(pending_newest, newest):
            newest = pending_newest
        posts.sort(key=lambda p: int(p.external_id))
        if token and since:
            return posts, {"since_id": since, "pagination_token": token, "newest_id": newest}
        return posts, {"since_id": newest} if newest else {}

    # --- filtered stream -------------------------------------------------------------------------

    def rule_tag(self, rule: WatchRule) -> str:
        return f"{TAG_PREFIX}:{self.channel.pk}:{rule.pk}"

    def stream_rules_sync(self, rules: Sequence[WatchRule]) -> dict[str, int]:
        """Make the app's stream rules match `rules`: add the missing, delete ours that are stale
        (rule gone, disabled or edited). Rules of other channels or tools on the same app are
        left alone; their matches are dropped by `stream`. Returns {"added", "deleted", "kept"}."""
        wanted = {
            self.rule_tag(rule): self.rule_query(rule)
            for rule in rules
            if rule.enabled and rule.kind != RuleKind.DIRECT
        }
        current: list[Mapping[str, Any]] = []
        token = ""
        while True:
            params = {"max_results": "1000", **({"pagination_token": token} if token else {})}
            body = self._json("GET", "/2/tweets/search/stream/rules", auth="app", params=params)
            current.extend(r for r in body.get("data") or [] if isinstance(r, dict))
            token = str((body.get("meta") or {}).get("next_token") or "")
            if not token:
                break
        prefix = f"{TAG_PREFIX}:{self.channel.pk}:"
        ours = [r for r in current if str(r.get("tag", "")).startswith(prefix)]
        stale = [str(r["id"]) for r in ours if wanted.get(str(r["tag"])) != r.get("value")]
        present = {(str(r["tag"]), r.get("value")) for r in ours}
        missing = [{"value": value, "tag": tag} for tag, value in wanted.items() if (tag, value) not in present]
        if stale:
            self._json("POST", "/2/tweets/search/stream/rules", auth="app", body={"delete": {"ids": stale}})
        if missing:
            body = self._json("POST", "/2/tweets/search/stream/rules", auth="app", body={"add": missing})
            refused = [e for e in body.get("errors") or [] if isinstance(e, dict) and e.get("title") != "DuplicateRule"]
            if refused:
                details = "; ".join(f"{e.get('value', '?')}: {e.get('details') or e.get('title')}" for e in refused)
                raise PermanentError(f"X refused stream rules: {details}")
        return {"added": len(missing), "deleted": len(stale), "kept": len(ours) - len(stale)}

    def stream(self, rules: Sequence[WatchRule]) -> Iterator[InboundPost | StreamMark]:
        """Syncs the stream rules, then reads the filtered stream until it drops. Raises
        TransientError when the connection ends, stalls past 30 s or X disconnects us."""
        self.stream_rules_sync(rules)
        tags = {self.rule_tag(rule) for rule in rules if rule.enabled}
        params = dict(POST_FIELDS)
        backfill = self._backfill_minutes()
        if backfill:
            params["backfill_minutes"] = str(backfill)
        response = self._send(
            "GET", "/2/tweets/search/stream", auth="app", params=params, stream=True, timeout=self._stream_timeout()
        )
        self.note_response(response)
        try:
            yield from self._stream_lines(response, tags)
        except requests.RequestException as exc:
            raise TransientError(f"the X stream dropped: {exc.__class__.__name__}") from exc
        finally:
            response.close()
        raise TransientError("X closed the stream")

    def _stream_lines(self, response: requests.Response, tags: set[str]) -> Iterator[InboundPost | StreamMark]:
        for line in bounded_lines(response.iter_content(chunk_size=None), MAX_STREAM_LINE):
            if not line.strip():
                yield StreamMark()
                continue
            try:
                event = json.loads(line)
            except ValueError:
                logger.warning("X stream sent a line that is not JSON (%d characters); skipped", len(line))
                yield StreamMark()
                continue
            data = event.get("data") if isinstance(event, dict) else None
            if not isinstance(data, dict):
                errors = event.get("errors") if isinstance(event, dict) else None
                if errors:
                    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
                    reason = first.get("disconnect_type") or first.get("connection_issue") or first.get("title")
                    raise TransientError(f"X ended the stream: {reason}: {first.get('detail', '')}".rstrip(": "))
                yield StreamMark()
                continue
            matched = {str(m.get("tag")) for m in event.get("matching_rules") or [] if isinstance(m, dict)}
            if (tags and not matched & tags) or not data.get("id"):
                yield StreamMark()
                continue
            includes = _as_dict(event.get("includes"))
            # Billed like search: the post, the posts it references and the users expanded.
            self._bill_reads({"data": [data], "includes": includes}, "post_read")
            # Where the stream was, by what it delivered (a repost, not the older post it reposts).
            delivered = str(data["id"])
            self._stream_last = {
                "last_id": delivered,
                "last_at": _posted_at(data.get("created_at"), delivered).isoformat(),
            }
            original = original_of(data, includes)
            if original is None:
                yield StreamMark()
                continue
            yield tweet_to_inbound(original, includes)

    def _stream_timeout(self) -> float:
        try:
            return max(0.1, float(self.channel.config.get("stream_timeout", STREAM_READ_TIMEOUT)))
        except (TypeError, ValueError):
            return STREAM_READ_TIMEOUT

    def _backfill_minutes(self) -> int:
        """Minutes to replay after a reconnect, if the channel asks for it: since the last post
        seen, at most what X allows (5)."""
        allowed = int(self.channel.config.get("stream_backfill_minutes") or 0)
        last = parse_datetime(str(self._stream_last.get("last_at", ""))) if self._stream_last else None
        if not allowed or last is None:
            return 0
        gap = (timezone.now() - last).total_seconds() / 60
        return max(1, min(allowed, 5, int(gap) + 1))

    def stream_cursor(self) -> Cursor:
        return dict(self._stream_last)

    # --- replying --------------------------------------------------------------------------------

    def limits(self) -> Limits:
        return Limits(max_reply_chars=MAX_WEIGHTED_LENGTH, unit="weighted characters")

    def reply_length(self, text: str) -> int:
        return weighted_length(text)

    def summoned(self, post: Post) -> bool:
        """Did the author @mention our account or quote one of our posts? Read from the stored
        payload's entities (mentions) and referenced posts (quotes)."""
        raw: dict[str, Any] = post.raw if isinstance(post.raw, dict) else {}
        data: dict[str, Any] = raw["data"] if isinstance(raw.get("data"), dict) else {}
        mentions: list[Any] = []
        for holder in (data, data.get("note_tweet") or {}):
            if isinstance(holder, dict):
                mentions.extend((holder.get("entities") or {}).get("mentions") or [])
        me, name = self.account_id, self.username.casefold()
        for mention in mentions:
            if not isinstance(mention, dict):
                continue
            if (me and str(mention.get("id", "")) == me) or (
                name and str(mention.get("username", "")).casefold() == name
            ):
                return True
        quoted = {str(r.get("id")) for r in data.get("referenced_tweets") or [] if r.get("type") == "quoted"}
        included = (raw.get("includes") or {}).get("tweets") or []
        if me and any(str(t.get("id")) in quoted and str(t.get("author_id")) == me for t in included):
            return True
        # Payloads stored without entities: fall back to the text itself.
        return bool(name) and re.search(rf"(?<![\w@])@{re.escape(name)}\b", post.text, re.IGNORECASE) is not None

    def reply_refusal(self, post: Post, visibility: str) -> str:
        if not self._has_user_context():
            return "This X channel has no OAuth user keys, so it cannot post replies or send direct messages."
        if visibility != "public":
            return ""
        if post.is_direct:
            return "This is a direct message on X: answer it with a direct message."
        if self.channel.config.get("reply_policy", "summoned") == "any" or self.summoned(post):
            return ""
        who = f"@{self.username}" if self.username else "our account"
        return (
            f"X only allows automated public replies to posts that mention or quote {who}, and this one "
            "does neither. Send a direct message instead, or answer from the X app."
        )

    def posts_gone(self, posts: Sequence[Post]) -> dict[str, str]:
        """GET /2/tweets?ids=: a post X reports as resource-not-found is gone (X does not say
        whether its author or X removed it). Direct messages have no look-up and are left out.
        Uses the user keys where the channel has them, else the app token."""
        ids = sorted({post.external_id for post in posts if not post.is_direct})
        if not ids:
            return {}
        body = self._json(
            "GET",
            "/2/tweets",
            auth="user" if self._has_user_context() else "app",
            params={"ids": ",".join(ids)},
            charge=lambda b: self._bill_items(b, "post_read"),
        )
        missing = {_not_found(error) for error in _as_list(body.get("errors"))}
        return {post_id: GONE_DELETED for post_id in ids if post_id in missing}

    def reply(self, post: Post, text: str, visibility: str, *, idempotency_key: str) -> str:
        """Public: POST /2/tweets as a reply; direct: POST /2/dm_conversations/with/:id/messages.
        X has no idempotency key: a retry looks for the earlier copy first (`find_sent`)."""
        refusal = self.reply_refusal(post, visibility)
        if refusal:
            raise PermanentError(refusal)
        if visibility == "public":
            if contains_url(text):
                cost = self.price("post_create_url")
            elif self.channel.config.get("reply_policy", "summoned") == "summoned":
                cost = self.price("summoned_reply")
            else:
                cost = self.price("post_create")
            body = self._json(
                "POST",
                "/2/tweets",
                auth="user",
                body={"text": text, "reply": {"in_reply_to_tweet_id": post.external_id}},
                charge=lambda b: cost,
            )
            sent = (body.get("data") or {}).get("id")
        else:
            recipient = post.author.external_id
            body = self._json(
                "POST",
                f"/2/dm_conversations/with/{quote(recipient, safe='')}/messages",
                auth="user",
                body={"text": text},
                charge=lambda b: self.price("dm_create"),
            )
            sent = (body.get("data") or {}).get("dm_event_id")
        if not sent:
            raise PermanentError(f"X accepted the message but returned no id: {_problem_text(body)}")
        return str(sent)

    def status_refusal(self) -> str:
        return ""

    def post_status(self, text: str, *, idempotency_key: str) -> tuple[str, str]:
        """A post of our account: POST /2/tweets without reply settings. X has no idempotency key."""
        cost = self.price("post_create_url" if contains_url(text) else "post_create")
        body = self._json("POST", "/2/tweets", auth="user", body={"text": text}, charge=lambda b: cost)
        sent = (body.get("data") or {}).get("id")
        if not sent:
            raise PermanentError(f"X accepted the status post but returned no id: {_problem_text(body)}")
        return str(sent), f"https://x.com/i/web/status/{quote(str(sent), safe='')}"

    def find_sent(self, post: Post, text: str, visibility: str, *, since: datetime) -> list[str]:
        """Public: our posts since `since` (GET /2/users/:id/tweets, replies included, billed as
        owned reads) that reply to the post. Direct: the DM events of our conversation with the
        poster (newest first, billed as DM reads). At most SENT_PAGES pages of 100 each."""
        if not self.account_id:
            raise PermanentError("verify the X channel first: looking for an earlier reply needs our account id")
        if visibility == "public":
            params = {
                "max_results": str(PAGE_SIZE),
                "start_time": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "tweet.fields": "created_at,entities,note_tweet,referenced_tweets",
            }
            path, billed_as = f"/2/users/{quote(self.account_id, safe='')}/tweets", "owned_read"
        else:
            params = {"event_types": "MessageCreate", "dm_event.fields": DM_FIELDS, "max_results": str(PAGE_SIZE)}
            recipient = quote(post.author.external_id, safe="")
            path, billed_as = f"/2/dm_conversations/with/{recipient}/dm_events", "dm_read"
        found: list[str] = []
        token = ""
        for _ in range(SENT_PAGES):
            body = self._json(
                "GET",
                path,
                auth="user",
                params={**params, "pagination_token": token} if token else params,
                charge=lambda b: self._bill_items(b, billed_as),
            )
            items = _valid_items(body)
            found.extend(str(item["id"]) for item in items if self._is_copy(item, post, text, visibility, since))
            token = str((body.get("meta") or {}).get("next_token") or "")
            times = [_posted_at(item.get("created_at"), str(item["id"])) for item in items]
            if not token or (times and min(times) < since):
                break
        return sorted(set(found), key=int)

    def _is_copy(self, item: Mapping[str, Any], post: Post, text: str, visibility: str, since: datetime) -> bool:
        if _posted_at(item.get("created_at"), str(item["id"])) < since:
            return False
        if visibility == "public":
            references = [r for r in item.get("referenced_tweets") or [] if isinstance(r, dict)]
            if not any(r.get("type") == "replied_to" and str(r.get("id")) == post.external_id for r in references):
                return False
            listed, entities = _full_text(item)
        else:
            if str(item.get("sender_id") or "") != self.account_id:
                return False
            listed, entities = str(item.get("text", "")), item.get("entities") or {}
        return same_text(text, plain_text(listed, entities if isinstance(entities, dict) else {}))


def _newer(candidate: str, than: str) -> bool:
    if not than:
        return True
    try:
        return int(candidate) > int(than)
    except ValueError:
        return candidate > than


def bounded_lines(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """Lines of a chunked byte stream, without their line ends, as they complete.

    Raises TransientError once a line grows past `limit` bytes, instead of buffering without end."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.rstrip(b"\r")
        if len(pending) > limit:
            raise TransientError(f"the X stream sent a line longer than {limit} bytes; reconnecting")
    if pending:
        yield pending.rstrip(b"\r")
