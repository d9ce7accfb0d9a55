"""Reddit: subreddit search, new posts and comments, mentions and private messages in; comment
replies and private messages out.

API access needs Reddit's approval (Responsible Builder Policy) before any of this runs live.

Credentials (encrypted on the channel): client_id, client_secret and either username + password
(a "script" app owned by the support account) or refresh_token (an installed/web app authorised
with duration=permanent). Scopes: identity read submit privatemessages history (a retried reply
looks for its earlier copy among the account's own comments).
Config (not secret):
    subreddits      names to watch, e.g. ["sysadmin", "acme"]; search rules without them search
                    all of Reddit
    include_comments  also read new comments of those subreddits for search rules (default true);
                    Reddit has no comment search, so comments are matched here on the rule's terms
    user_agent      the descriptive User-Agent Reddit requires; default names the account
    max_pages       pages of 100 per listing and poll (default 5)
    overlap_seconds re-read this far behind the newest item seen (default 600): search results
                    and listings can surface late; what was already handed out is remembered
    dm_subject      subject of private messages that start a conversation
    account_id      our username, filled by verify(); ingest skips its posts

The inbox is read, never marked read: marking would need the post stored first (a crash in
between loses it) and would hide messages from the people who also read the account on Reddit.
Cursors (timestamp watermark + recently seen names) make re-reading cheap and exact.

Private messages come in threads: the listings name a thread once, by its first message, with
the later messages (ours and theirs) nested in `replies`, and list threads by their latest
message. Every message of a thread is handed out once, by its own time, so an answer in an old
thread is caught; each carries `parent_id` (in_reply_to) and the thread's first message
(conversation_id), which is how routing threads it into its incident. Messages from a
subreddit's moderators carry no author: they are filed under "#<subreddit>" ("r/<sub>
moderators") and answered in their thread. Posts of deleted accounts get an author each (see
parse.DELETED_AUTHOR). Galleries, polls and crossposts fill `InboundPost.details`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

import requests
from django.utils import timezone

from socialitsm.exceptions import PermanentError, TransientError

from ..base import (
    OWN_ACCOUNT_KEY,
    SENT_CLOCK_SKEW,
    Connector,
    Cursor,
    InboundPost,
    Limits,
    RuleKind,
    reset_time,
    same_text,
)
from .config import RedditConfig
from .markdown import markdown_escape
from .parse import _created, gone_reason, is_deleted_author, matches, query_terms, thing_to_inbound, thread_of

if TYPE_CHECKING:
    from socialitsm.models import Post, WatchRule

logger = logging.getLogger(__name__)

API = "https://oauth.reddit.com"
TOKEN_URL = "https://www.reddit.com/api/v1/access_token"  # noqa: S105 (an address, not a secret)
MAX_REPLY_CHARS = 10_000
MAX_SUBJECT_CHARS = 100
PAGE_SIZE = 100

# Access tokens per process, keyed by channel and a digest of its credentials: never written to a
# shared cache or the database, so a token is no more exposed than the worker's memory.
_tokens: dict[tuple[int | None, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


# --- errors -----------------------------------------------------------------------------------

ERRORS = {
    "THREAD_LOCKED": "the thread is locked",
    "TOO_OLD": "the post is archived and takes no more comments",
    "DELETED_COMMENT": "the comment was deleted",
    "DELETED_LINK": "the post was deleted",
    "USER_DOESNT_EXIST": "that account does not exist",
    "NOT_WHITELISTED_BY_USER_MESSAGE": "the user only accepts private messages from people they approved",
    "USER_BLOCKED_MESSAGE": "the user blocked private messages from us",
    "SUBREDDIT_NOTALLOWED": "we may not comment in this subreddit",
    "BAD_CAPTCHA": "Reddit wants a captcha (new or low-karma account)",
}


def _json_errors(body: Mapping[str, Any]) -> list[list[Any]]:
    inner = body.get("json")
    if not isinstance(inner, dict):
        return []
    errors = inner.get("errors") or []
    return [e for e in errors if isinstance(e, list) and e]


def _time(item: Mapping[str, Any]) -> float:
    """A thing's created_utc; 0 where it is missing or not a number."""
    try:
        return float(item.get("created_utc") or 0)
    except (TypeError, ValueError):
        return 0.0


def _float_header(response: requests.Response, name: str) -> float | None:
    try:
        return float(response.headers[name])
    except (KeyError, ValueError):
        return None


# Reddit's longest post title.
STATUS_TITLE_CHARS = 300


class RedditConnector(Connector):
    network = "reddit"
    label = "Reddit"
    config_class = RedditConfig
    problem_keys = ("message", "reason", "explanation")
    ERROR_WORDS: ClassVar[dict[str, str]] = {
        "rate_limited": "Reddit rate limit reached on {what}; wait for the reset",
        "failing": "Reddit is failing (HTTP {status}) on {what}",
        "credentials": "Reddit refused the channel's credentials on {what} (HTTP 401): {detail}",
        "forbidden": "Reddit forbids {what} (HTTP 403: {detail}): private or banned subreddit, or a missing scope",
        "missing": "Reddit has no {what} (HTTP 404): {detail}",
        "refused": "Reddit refused {what} (HTTP {status}): {detail}",
    }
    lookup_batch = 100  # /api/info takes up to 100 fullnames

    # --- configuration ---------------------------------------------------------------------------

    @property
    def user_agent(self) -> str:
        configured = str(self.channel.config.get("user_agent") or "").strip()
        if configured:
            return configured
        owner = self.channel.credentials.get("username") or self.channel.handle.removeprefix("u/").lstrip("/")
        return f"server:socialitsm:v1 (by /u/{owner})" if owner else "server:socialitsm:v1"

    def _setting(self, name: str, default: int) -> int:
        try:
            return max(1, int(self.channel.config.get(name, default)))
        except (TypeError, ValueError):
            return default

    def _subreddits(self) -> list[str]:
        names = self.channel.config.get("subreddits") or []
        if isinstance(names, str):
            names = names.replace(",", " ").split()
        return [str(n).strip().removeprefix("r/").removeprefix("/r/") for n in names if str(n).strip()]

    # --- OAuth ------------------------------------------------------------------------------------

    def _token_key(self) -> tuple[int | None, str]:
        c = self.channel.credentials
        material = "\n".join(
            str(c.get(k, "")) for k in ("client_id", "client_secret", "username", "password", "refresh_token")
        )
        return self.channel.pk, hashlib.sha256(material.encode()).hexdigest()

    def _token(self, *, fresh: bool = False) -> str:
        key = self._token_key()
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached and not fresh and cached[1] > time.monotonic():
                return cached[0]
        token, lifetime = self._token_fetch()
        with _tokens_lock:
            # A minute's margin: a token must not expire between the check and the call.
            _tokens[key] = (token, time.monotonic() + max(60.0, lifetime - 60.0))
        return token

    def _token_fetch(self) -> tuple[str, float]:
        c = self.channel.credentials
        if not c.get("client_id") or not c.get("client_secret"):
            raise PermanentError("a Reddit channel needs client_id and client_secret")
        if c.get("refresh_token"):
            form = {"grant_type": "refresh_token", "refresh_token": c["refresh_token"]}
        elif c.get("username") and c.get("password"):
            form = {"grant_type": "password", "username": c["username"], "password": c["password"]}
        else:
            raise PermanentError("a Reddit channel needs username and password (script app) or a refresh_token")
        response = self._send("POST", TOKEN_URL, data=form, auth=(c["client_id"], c["client_secret"]), what="sign-in")
        body = self._decode(response, "sign-in")
        # Reddit answers a wrong password with HTTP 200 and {"error": "invalid_grant"}.
        if body.get("error") or not body.get("access_token"):
            raise PermanentError(f"Reddit refused the sign-in ({body.get('error') or 'no access token'})")
        try:
            lifetime = float(body.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        return str(body["access_token"]), lifetime

    # --- HTTP -------------------------------------------------------------------------------------

    def _send(self, method: str, url: str, *, what: str, **kwargs: Any) -> requests.Response:
        """One call with the User-Agent Reddit requires; a redirect is an error of its own."""
        headers = {"User-Agent": self.user_agent, **kwargs.pop("headers", {})}
        response = self.request(method, url, what=what, headers=headers, **kwargs)
        if 300 <= response.status_code < 400:
            # Reddit sends unknown subreddits to its search page instead of a 404.
            target = response.headers.get("Location", "")
            raise PermanentError(
                f"Reddit redirected {what} to {target or 'elsewhere'}: it does not exist or is private"
            )
        return response

    def rate_limit(self, response: requests.Response) -> tuple[int | None, int | None, datetime | None]:
        remaining = _float_header(response, "X-Ratelimit-Remaining")
        used = _float_header(response, "X-Ratelimit-Used")
        return (
            int(remaining) if remaining is not None else None,
            round(remaining + used) if remaining is not None and used is not None else None,
            reset_time(response.headers.get("X-Ratelimit-Reset")),
        )

    def _decode(self, response: requests.Response, what: str) -> Mapping[str, Any]:
        return self.decode_object(self.decode(response, what), what)

    def _api(self, method: str, path: str, *, what: str, **kwargs: Any) -> Mapping[str, Any]:
        """An authenticated API call; a 401 (token revoked or expired early) gets one fresh
        token and one retry."""
        try:
            response = self._authorised(method, path, self._token(), what=what, **kwargs)
        except PermanentError as exc:
            if exc.status != 401:
                raise
            response = self._authorised(method, path, self._token(fresh=True), what=what, **kwargs)
        body = self._decode(response, what)
        self._raise_json_errors(body, what)
        return body

    def _authorised(self, method: str, path: str, token: str, *, what: str, **kwargs: Any) -> requests.Response:
        return self._send(method, API + path, what=what, headers={"Authorization": f"bearer {token}"}, **kwargs)

    def _raise_json_errors(self, body: Mapping[str, Any], what: str) -> None:
        """Reddit reports refused writes as HTTP 200 with {"json": {"errors": [[code, text, field]]}}."""
        errors = _json_errors(body)
        if not errors:
            return
        code, text = str(errors[0][0]), str(errors[0][1]) if len(errors[0]) > 1 else ""
        if code == "RATELIMIT":
            inner = body.get("json") or {}
            seconds = inner.get("ratelimit") if isinstance(inner, dict) else None
            if not isinstance(seconds, int | float):
                found = re.search(r"(\d+)\s*(second|minute)", text)
                seconds = int(found.group(1)) * (60 if found and found.group(2) == "minute" else 1) if found else 60
            raise TransientError(
                f"Reddit rate limit on {what}: {text}", status=429, retry_at=timezone.now() + timedelta(seconds=seconds)
            )
        reason = ERRORS.get(code, text or code)
        raise PermanentError(f"Reddit refused {what}: {reason} ({code})")

    # --- identity ---------------------------------------------------------------------------------

    def verify(self) -> str:
        """Signs in and asks /api/v1/me who we are; the username goes to config["account_id"]."""
        body = self._api("GET", "/api/v1/me", what="the account check")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise PermanentError("Reddit did not say which account these credentials belong to")
        self.channel.config[OWN_ACCOUNT_KEY] = name
        return f"u/{name}"

    # --- listening --------------------------------------------------------------------------------

    def search(self, rule: WatchRule, cursor: Cursor) -> tuple[Sequence[InboundPost], Cursor]:
        if rule.kind == RuleKind.MENTIONS:
            # The inbox holds username mentions and replies to our comments and posts (t1);
            # private messages (t4) belong to direct rules.
            posts, state = self._listing(
                "/message/inbox", {}, cursor.get("inbox") or {}, kinds={"t1"}, what="the inbox"
            )
            return posts, {"inbox": state}
        if rule.kind == RuleKind.DIRECT:
            posts, state = self._listing(
                "/message/messages", {}, cursor.get("messages") or {}, kinds={"t4"}, what="private messages"
            )
            return posts, {"messages": state}
        terms = rule.query.strip()
        subreddits = self._subreddits()
        scope = f"/r/{'+'.join(quote(s, safe='') for s in subreddits)}" if subreddits else ""
        if not terms and not scope:
            raise PermanentError(f"watch rule {rule.name!r} has no search terms and the channel watches no subreddits")
        if terms:
            path, params = f"{scope}/search", {"q": terms, "sort": "new", "t": "week", "type": "link"}
            if scope:
                params["restrict_sr"] = "1"
        else:
            # No terms: every new post of the watched subreddits (e.g. the company's own).
            path, params = f"{scope}/new", {}
        where = f"{'search in ' if terms else 'new posts in '}{scope or 'Reddit'}"
        posts, posts_state = self._listing(path, params, cursor.get("posts") or {}, kinds={"t3"}, what=where)
        result: Cursor = {"posts": posts_state}
        if scope and self.channel.config.get("include_comments", True):
            wanted, excluded = query_terms(terms)
            comments, comments_state = self._listing(
                f"{scope}/comments", {}, cursor.get("comments") or {}, kinds={"t1"}, what=f"new comments in {scope}"
            )
            posts = [*posts, *(c for c in comments if c.deleted or matches(c.text, wanted, excluded))]
            result["comments"] = comments_state
        posts.sort(key=lambda p: p.posted_at)
        return posts, result

    def _listing(
        self, path: str, params: Mapping[str, str], state: Cursor, *, kinds: set[str], what: str
    ) -> tuple[list[InboundPost], Cursor]:
        """New items of a newest-first listing since the last poll.

        State: {"watermark": newest created_utc handed out, "seen": names within the overlap
        window}. We read from the top down to watermark - overlap, skip what was seen, and keep
        the names in the window, so late-indexed items are caught and nothing is handed out twice.
        A first poll takes one page. When max_pages runs out first, "after" and "pending" carry
        the backfill on to the next poll before the watermark moves.

        A private message thread counts as one child: its answers (nested in `replies`) are
        handed out one by one, each once, by their own time, whatever the age of the thread's
        first message; ours among them are left to ingest, which skips our own posts."""
        overlap = self._setting("overlap_seconds", 600)
        watermark = float(state.get("watermark") or 0)
        floor = watermark - overlap if watermark else None
        seen: dict[str, float] = dict(state.get("seen") or {})
        after = str(state.get("after") or "")
        pages = self._setting("max_pages", 5) if watermark else 1
        fresh: list[InboundPost] = []
        newest = max(watermark, float(state.get("pending") or 0))
        for _ in range(pages):
            query = {**params, "limit": str(PAGE_SIZE), "raw_json": "1", **({"after": after} if after else {})}
            body = self._api("GET", path, what=what, params=query)
            data = body.get("data") if body.get("kind") == "Listing" else None
            if not isinstance(data, dict) or not isinstance(data.get("children"), list):
                raise TransientError(f"Reddit answered {what} with something that is not a listing")
            reached = False
            for child in data["children"]:
                if not isinstance(child, dict) or not isinstance(child.get("data"), dict):
                    continue
                thread = thread_of(str(child.get("kind") or ""), child["data"])
                # Message threads are listed by their latest message, so an old thread with a
                # new answer comes up top: the thread's newest time decides where reading stops.
                # The rest of a page already read is still looked through (items older than the
                # floor are skipped one by one), so an answered thread listed out of that order
                # is not lost.
                if floor is not None and max(_time(item) for _, item in thread) < floor:
                    reached = True
                    continue
                for kind, item in thread:
                    created = _time(item)
                    if kind not in kinds or not item.get("id") or (floor is not None and created < floor):
                        continue
                    post = thing_to_inbound(kind, item)
                    newest = max(newest, created)
                    # A deletion or an edit is handed out even if the post was: ingest redacts or
                    # updates our copy (and ignores an edit it already has).
                    if post.external_id not in seen or post.deleted or post.edited_at is not None:
                        seen[post.external_id] = created
                        fresh.append(post)
            after = str(data.get("after") or "")
            if reached or not after or not data["children"]:
                after = ""
                break
        fresh.sort(key=lambda p: p.posted_at)
        if after and watermark:
            return fresh, {"watermark": watermark, "seen": seen, "after": after, "pending": newest}
        if not newest:
            return fresh, {}
        # Names older than the window can no longer come back: forget them.
        window = newest - overlap
        return fresh, {"watermark": newest, "seen": {name: at for name, at in seen.items() if at >= window}}

    # --- deletions --------------------------------------------------------------------------------

    def posts_gone(self, posts: Sequence[Post]) -> dict[str, str]:
        """GET /api/info?id=t1_..,t3_..: deleted and removed posts and comments still come back,
        with "[deleted]" or "[removed]" for their text. Private messages have no look-up, and a
        thing missing from the answer (a private or banned subreddit) cannot be told: both are
        left out."""
        names = sorted({p.external_id for p in posts if p.external_id.startswith(("t1_", "t3_"))})
        if not names:
            return {}
        body = self._api(
            "GET", "/api/info", what="the look-up of stored posts", params={"id": ",".join(names), "raw_json": "1"}
        )
        data = body.get("data") if body.get("kind") == "Listing" else None
        if not isinstance(data, dict) or not isinstance(data.get("children"), list):
            raise TransientError("Reddit answered the look-up of stored posts with something that is not a listing")
        gone: dict[str, str] = {}
        for child in data["children"]:
            item = child.get("data") if isinstance(child, dict) else None
            if not isinstance(item, dict) or str(item.get("name") or "") not in names:
                continue
            reason = gone_reason(str(child.get("kind") or ""), item)
            if reason:
                gone[str(item["name"])] = reason
        return gone

    # --- replying ---------------------------------------------------------------------------------

    def limits(self) -> Limits:
        return Limits(max_reply_chars=MAX_REPLY_CHARS, unit="characters")

    def reply_length(self, text: str) -> int:
        """Length of the markdown actually sent, escapes included."""
        return len(markdown_escape(text))

    def reply_refusal(self, post: Post, visibility: str) -> str:
        if visibility == "public" and post.external_id.startswith("t4_"):
            return "This is a private message on Reddit: answer it with a direct message."
        data = post.raw.get("data") if isinstance(post.raw, dict) else None
        if visibility == "public" and isinstance(data, dict) and (data.get("locked") or data.get("archived")):
            state = "locked" if data.get("locked") else "archived"
            return f"This Reddit thread is {state} and takes no comments: answer with a direct message."
        # A moderators' message stored before they had an author of their own reads "[deleted]":
        # its payload (no author, a subreddit) tells, and its thread takes the answer.
        moderators = (
            post.external_id.startswith("t4_")
            and isinstance(data, dict)
            and not data.get("author")
            and data.get("subreddit")
        )
        if visibility == "direct" and is_deleted_author(post.author.external_id) and not moderators:
            return "The author's Reddit account is deleted: there is nobody to send a private message to."
        return ""

    def reply(self, post: Post, text: str, visibility: str, *, idempotency_key: str) -> str:
        """Public: /api/comment under the post or comment. Direct: a reply in the message thread
        for a private message (a moderators' message too), otherwise /api/compose to the author.
        Returns the fullname of what was sent. Compose does not say it: the message is looked up
        among our sent messages (`find_sent`), so the person's answer, which names it as its
        parent, joins the incident; "" when that look-up finds nothing or fails (the message is
        out all the same). Reddit has no idempotency key: a retry looks for the earlier copy
        first (`find_sent`)."""
        refusal = self.reply_refusal(post, visibility)
        if refusal:
            raise PermanentError(refusal)
        body = markdown_escape(text)
        if visibility == "public" or post.external_id.startswith("t4_"):
            answer = self._api(
                "POST",
                "/api/comment",
                what="the reply",
                data={"api_type": "json", "thing_id": post.external_id, "text": body},
            )
            things = ((answer.get("json") or {}).get("data") or {}).get("things") or []
            name = things[0].get("data", {}).get("name") if things and isinstance(things[0], dict) else None
            if not name:
                raise PermanentError(f"Reddit accepted the reply but did not return it: {str(answer)[:200]}")
            return str(name)
        self._api(
            "POST",
            "/api/compose",
            what="the private message",
            data={"api_type": "json", "to": post.author.external_id, "subject": self._subject(post), "text": body},
        )
        try:
            sent = self.find_sent(post, text, visibility, since=timezone.now() - SENT_CLOCK_SKEW)
        except (TransientError, PermanentError) as exc:
            logger.warning("sent a private message about %s but could not look up its id: %s", post, exc.message)
            return ""
        return sent[-1] if sent else ""

    def status_refusal(self) -> str:
        return ""

    def post_status(self, text: str, *, idempotency_key: str) -> tuple[str, str]:
        """A self post (/api/submit) in config `status_subreddit`, else on the account's own
        profile (u_<name>); the title is the text's first line. Reddit has no idempotency key."""
        config = self.channel.config if isinstance(self.channel.config, dict) else {}
        subreddit = str(config.get("status_subreddit") or "").strip().removeprefix("r/")
        if not subreddit:
            username = str(config.get(OWN_ACCOUNT_KEY) or self.channel.credentials.get("username") or "")
            if not username:
                raise PermanentError(
                    "verify the Reddit channel first, or set status_subreddit: a profile post needs our username"
                )
            subreddit = f"u_{username}"
        title = text.strip().splitlines()[0][:STATUS_TITLE_CHARS] if text.strip() else ""
        answer = self._api(
            "POST",
            "/api/submit",
            what="the status post",
            data={"api_type": "json", "kind": "self", "sr": subreddit, "title": title, "text": markdown_escape(text)},
        )
        data = (answer.get("json") or {}).get("data") or {}
        name = data.get("name") if isinstance(data, dict) else None
        if not name:
            raise PermanentError(f"Reddit accepted the status post but did not return it: {str(answer)[:200]}")
        return str(name), str(data.get("url") or "")

    def find_sent(self, post: Post, text: str, visibility: str, *, since: datetime) -> list[str]:
        """Comments: the account's comments (/user/:name/comments, scope `history`) that answer
        the post. Private messages, new or in a message thread: the account's sent messages
        (/message/sent) to the poster. One page of 100, newest first; bodies are compared as
        the markdown we sent."""
        username = str(self.channel.config.get(OWN_ACCOUNT_KEY) or self.channel.credentials.get("username") or "")
        if not username:
            raise PermanentError("verify the Reddit channel first: looking for an earlier reply needs our username")
        if visibility == "public":
            path, kind, what = f"/user/{quote(username, safe='')}/comments", "t1", "our comments"
            params = {"sort": "new", "limit": str(PAGE_SIZE), "raw_json": "1"}
        else:
            path, kind, what = "/message/sent", "t4", "our sent messages"
            params = {"limit": str(PAGE_SIZE), "raw_json": "1"}
        body = self._api("GET", path, what=what, params=params)
        data = body.get("data") if body.get("kind") == "Listing" else None
        if not isinstance(data, dict) or not isinstance(data.get("children"), list):
            raise TransientError(f"Reddit answered {what} with something that is not a listing")
        sent = markdown_escape(text)
        found = []
        for child in data["children"]:
            item = child.get("data") if isinstance(child, dict) and child.get("kind") == kind else None
            if not isinstance(item, dict) or not item.get("name"):
                continue
            created = _created(item)
            if created < since or str(item.get("author") or "").casefold() != username.casefold():
                continue
            if not self._answers(item, post, kind) or not same_text(sent, str(item.get("body") or "")):
                continue
            found.append((created, str(item["name"])))
        return [name for _, name in sorted(found)]

    def _answers(self, item: Mapping[str, Any], post: Post, kind: str) -> bool:
        """Whether a comment or sent message of ours is addressed where a reply to `post` goes."""
        if kind == "t1":
            return str(item.get("parent_id") or "") == post.external_id
        if str(item.get("dest") or "").casefold() != post.author.external_id.casefold():
            return False
        if not post.external_id.startswith("t4_"):
            return True
        thread = {post.external_id, post.conversation_id} - {""}
        return str(item.get("parent_id") or "") in thread or str(item.get("first_message_name") or "") in thread

    def _subject(self, post: Post) -> str:
        configured = str(self.channel.config.get("dm_subject") or "").strip()
        if configured:
            return configured[:MAX_SUBJECT_CHARS]
        raw = post.raw.get("data") if isinstance(post.raw, dict) else None
        title = str((raw or {}).get("title") or (raw or {}).get("link_title") or "").strip()
        subject = f"Re: {title}" if title else f"About your post, from {self.channel.name}"
        return subject if len(subject) <= MAX_SUBJECT_CHARS else subject[: MAX_SUBJECT_CHARS - 1] + "…"
