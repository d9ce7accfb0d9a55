"""Bluesky (AT Protocol): Jetstream listening, search and mentions; thread replies and chat DMs.

Channel: `base_url` is the account's PDS or the entryway (default https://bsky.social),
credentials `{"identifier": "acmesupport.bsky.social", "password": "<app password with DM access>"}`.
`verify()` opens a session and learns the DID (config `account_id`) and the PDS that serves it.
Sessions are kept per process and refreshed on ExpiredToken: createSession is limited to 30 per
5 minutes and 300 a day, so a poll never logs in again just because it runs.

Listening, per WatchRule kind (polling):
- search    app.bsky.feed.searchPosts (authenticated through the PDS; a secondary source: the
            maintainers say it is for people searching, not for monitoring);
- hashtag   the same with "#tag";
- mentions  app.bsky.notification.listNotifications: mentions, replies and quotes;
- direct    chat.bsky.convo.getLog through the chat proxy (see chat.py): messages from others
            become direct posts in their conversation, deleted ones redact our copy; an answer
            to our direct message threads into its incident. Jetstream carries no chat: a
            streaming channel reads its direct rules only when it polls (while its stream is down).
Streaming: Jetstream (`config["jetstream_url"]`, default the public jetstream2.us-east). Posts are
matched locally: a mention facet of our DID or a reply/quote of our posts (mentions), a tag facet
or #tag (hashtag), every search term in the text (search). The cursor is Jetstream's `time_us`; a
reconnection rewinds REWIND_US and ingest dedupes. Deleted posts redact our copy.

Replying: public = com.atproto.repo.createRecord with reply root/parent strong refs and facets for
@mentions and links (byte offsets into UTF-8); direct = chat.bsky.convo.getConvoForMembers +
sendMessage through the PDS with the `atproto-proxy` header (in the message's own conversation
when the post is a direct message). There is no idempotency key: a retry
first looks for the reply among our own records and the post's thread, or among the
conversation's latest messages (`find_sent`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode

import requests
from django.utils import timezone

from socialitsm.exceptions import ExternalError, PermanentError, TransientError

from ..base import (
    GONE_DELETED,
    OWN_ACCOUNT_KEY,
    Connector,
    Cursor,
    InboundAuthor,
    InboundPost,
    Limits,
    RuleKind,
    StreamMark,
    aware_time,
    backfill_only,
)
from ..wsclient import ws_connect, ws_frames
from . import chat
from .config import BlueskyConfig
from .jetstream import _Matcher
from .records import _copies, _dict, _iso, _list, _rkey
from .richtext import _LINK, _MENTION, _facet, graphemes
from .session import Session, _pds_of, _SessionExpired, _sessions, _sessions_lock

if TYPE_CHECKING:
    from socialitsm.models import Channel, Post, WatchRule

logger = logging.getLogger(__name__)

DEFAULT_SERVICE = "https://bsky.social"
DEFAULT_JETSTREAM = "wss://jetstream2.us-east.bsky.network/subscribe"
POST = "app.bsky.feed.post"
CREATE_SESSION = "com.atproto.server.createSession"
REFRESH_SESSION = "com.atproto.server.refreshSession"
MAX_GRAPHEMES = 300
MAX_POST_BYTES = 3000  # the lexicon's second bound; only long emoji sequences reach it first
PAGE_LIMIT = 100
MAX_PAGES = 5
# Our latest posts or chat messages read when a retry looks for a copy of its reply.
SENT_PAGE = 50
OVERLAP = timedelta(minutes=5)
REWIND_US = 5_000_000
RECV_TIMEOUT = 5.0
MARK_EVERY = 1.0
# The AppView indexes a new post within seconds; until then getPosts leaves it out as if deleted.
INDEX_GRACE = timedelta(minutes=10)
# Refused because of who the recipient is or what they allow, not because of our channel.
RECIPIENT_ERRORS = {
    "MessagesDisabled": "does not accept direct messages",
    "NotFollowedBySender": "only accepts direct messages from accounts they follow",
    "BlockedActor": "has blocked us, or we them",
    "BlockedSubject": "has blocked us, or we them",
    "RecipientNotFound": "cannot be found",
    "AccountSuspended": "is suspended",
    "ConvoLocked": "has locked the conversation",
}


class BlueskyConnector(Connector):
    network = "bluesky"
    label = "Bluesky"
    config_class = BlueskyConfig
    rate_limit_headers = ("RateLimit-Remaining", "RateLimit-Limit", "RateLimit-Reset")
    ERROR_WORDS: ClassVar[dict[str, str]] = {"refused": "Bluesky refused {what} (HTTP {status}): {detail}"}
    lookup_batch = 25  # app.bsky.feed.getPosts takes at most 25 uris

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self._time_us = 0
        self._handles: dict[str, str] = {}

    # -- Sessions and XRPC ------------------------------------------------------------------

    @property
    def service(self) -> str:
        return (self.channel.base_url or DEFAULT_SERVICE).rstrip("/")

    def _key(self) -> tuple[str, str]:
        return (self.service, str(self.channel.credentials.get("identifier", "")))

    def _session(self, *, fresh: bool = False) -> Session:
        with _sessions_lock:
            session = None if fresh else _sessions.get(self._key())
        if session is None:
            session = self._login()
            with _sessions_lock:
                _sessions[self._key()] = session
        return session

    def _login(self) -> Session:
        identifier = self.channel.credentials.get("identifier")
        password = self.channel.credentials.get("password")
        if not identifier or not password:
            raise PermanentError("this Bluesky channel needs an identifier and an app password in its credentials")
        data = self._send(
            "POST",
            self.service,
            CREATE_SESSION,
            body={"identifier": identifier, "password": password},
            token=None,
        )
        return self._session_from(data, fallback_pds=self.service)

    def _session_from(self, data: Mapping[str, Any], *, fallback_pds: str) -> Session:
        if not all(isinstance(data.get(k), str) for k in ("did", "handle", "accessJwt", "refreshJwt")):
            raise PermanentError("Bluesky's session answer lacks did, handle or tokens")
        return Session(
            did=data["did"],
            handle=data["handle"],
            access=data["accessJwt"],
            refresh=data["refreshJwt"],
            pds=_pds_of(data.get("didDoc")) or fallback_pds,
        )

    def _refreshed(self, session: Session) -> Session:
        try:
            data = self._send("POST", session.pds, REFRESH_SESSION, token=session.refresh)
            fresh = self._session_from(data, fallback_pds=session.pds)
        except PermanentError:
            fresh = self._login()
        with _sessions_lock:
            _sessions[self._key()] = fresh
        return fresh

    def _xrpc(
        self,
        method: str,
        nsid: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        body: Mapping[str, Any] | None = None,
        proxy: str = "",
    ) -> Any:
        """One authenticated call at the PDS; an expired or revoked access token is renewed once."""
        session = self._session()
        try:
            return self._send(method, session.pds, nsid, params=params, body=body, token=session.access, proxy=proxy)
        except _SessionExpired:
            session = self._refreshed(session)
            return self._send(method, session.pds, nsid, params=params, body=body, token=session.access, proxy=proxy)

    def _send(
        self,
        method: str,
        host: str,
        nsid: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        body: Mapping[str, Any] | None = None,
        token: str | None,
        proxy: str = "",
    ) -> Any:
        headers = {"Accept": "application/json", "User-Agent": "socialitsm"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if proxy:
            headers["atproto-proxy"] = proxy
        return self.request_json(method, f"{host}/xrpc/{nsid}", what=nsid, params=params, json=body, headers=headers)

    def problem(self, response: requests.Response) -> str:
        name, message = _problem(response)
        return f"{name}: {message}" if name and message else name or message or f"HTTP {response.status_code}"

    def error_for(self, error: ExternalError, response: requests.Response, what: str) -> ExternalError:
        status = response.status_code
        name, message = _problem(response)
        if what.startswith("chat.bsky."):
            refusal = chat.chat_refusal(name, message, status)
            if refusal is not None:
                return refusal
        # Only calls made with a session's token (not the sign-in or its renewal) renew it.
        if name in ("ExpiredToken", "InvalidToken") and what not in (CREATE_SESSION, REFRESH_SESSION):
            return _SessionExpired(self.problem(response))
        if status == 429 or status >= 500:
            return super().error_for(error, response, what)
        if what == CREATE_SESSION and status in (400, 401):
            return PermanentError(
                f"Bluesky refused the identifier or app password ({self.problem(response)})", status=status
            )
        if name in RECIPIENT_ERRORS:
            return PermanentError(f"the recipient {RECIPIENT_ERRORS[name]} ({self.problem(response)})", status=status)
        return super().error_for(error, response, what)

    # -- Channel ----------------------------------------------------------------------------

    def verify(self) -> str:
        session = self._session(fresh=True)
        self.channel.config[OWN_ACCOUNT_KEY] = session.did
        self.channel.config["pds"] = session.pds
        return f"@{session.handle}"

    def limits(self) -> Limits:
        return Limits(max_reply_chars=MAX_GRAPHEMES, unit="graphemes")

    def reply_length(self, text: str) -> int:
        return graphemes(text)

    def reply_refusal(self, post: Post, visibility: str) -> str:
        if visibility == "public" and post.is_direct:
            return "This is a Bluesky chat message: answer it with a direct message."
        return ""

    @property
    def _own_did(self) -> str:
        return str(self.channel.config.get(OWN_ACCOUNT_KEY) or "")

    # -- Polling ----------------------------------------------------------------------------

    def search(self, rule: WatchRule, cursor: Cursor) -> tuple[Sequence[InboundPost], Cursor]:
        posts, next_cursor = self._search(rule, cursor)
        return backfill_only(posts, cursor), next_cursor

    def _search(self, rule: WatchRule, cursor: Cursor) -> tuple[Sequence[InboundPost], Cursor]:
        if rule.kind == RuleKind.MENTIONS:
            return self._mentions(rule, cursor)
        if rule.kind == RuleKind.DIRECT:
            return chat.log_read(self, cursor)
        query = rule.query.strip()
        if rule.kind == RuleKind.HASHTAG:
            query = "#" + query.lstrip("#").split()[0] if query.lstrip("#") else ""
        if not query:
            raise PermanentError(f"rule {rule.name!r} has nothing to search for")
        since = aware_time(cursor.get("since"))
        views: list[dict[str, Any]] = []
        page_cursor = ""
        for _ in range(MAX_PAGES):
            params = [("q", query), ("sort", "latest"), ("limit", str(PAGE_LIMIT))]
            if since is not None:
                params.append(("since", _iso(since)))
            if page_cursor:
                params.append(("cursor", page_cursor))
            data = self._xrpc("GET", "app.bsky.feed.searchPosts", params=params)
            page = [p for p in _list(data, "posts") if isinstance(p, dict) and p.get("uri")]
            views.extend(page)
            page_cursor = str(data.get("cursor") or "")
            if since is None or not page_cursor or len(page) < PAGE_LIMIT:
                break  # a first search takes only the latest page: listening starts now
        return self._from_views(views, rule, cursor, "since")

    def _mentions(self, rule: WatchRule, cursor: Cursor) -> tuple[Sequence[InboundPost], Cursor]:
        seen_at = aware_time(cursor.get("seen_at"))
        notes: list[dict[str, Any]] = []
        page_cursor = ""
        for _ in range(MAX_PAGES):
            params = [("limit", str(PAGE_LIMIT))] + ([("cursor", page_cursor)] if page_cursor else [])
            data = self._xrpc("GET", "app.bsky.notification.listNotifications", params=params)
            page = [n for n in _list(data, "notifications") if isinstance(n, dict) and n.get("uri")]
            notes.extend(page)
            page_cursor = str(data.get("cursor") or "")
            times = [t for t in (aware_time(n.get("indexedAt")) for n in page) if t is not None]
            oldest = min(times) if times else None
            if seen_at is None or not page_cursor or (oldest is not None and oldest <= seen_at):
                break
        wanted = [n for n in notes if n.get("reason") in ("mention", "reply", "quote")]
        return self._from_views(wanted, rule, cursor, "seen_at")

    def _from_views(
        self, views: list[dict[str, Any]], rule: WatchRule, cursor: Cursor, key: str
    ) -> tuple[list[InboundPost], Cursor]:
        since = aware_time(cursor.get(key))
        posts = []
        for view in views:
            post = self.parse_view(view, rule_id=rule.pk)
            indexed = aware_time(view.get("indexedAt"))
            if post is None or (since is not None and indexed is not None and indexed < since - OVERLAP):
                continue
            posts.append(post)
        posts.sort(key=lambda p: (p.posted_at, p.external_id))
        newest = max((t for t in (aware_time(v.get("indexedAt")) for v in views) if t), default=None)
        if newest is None:
            return posts, cursor
        # Search results can be indexed late: keep an overlap; notifications are in order.
        mark = newest - OVERLAP if key == "since" else newest
        return posts, {key: _iso(mark)}

    def parse_view(self, view: Mapping[str, Any], *, rule_id: int | None = None) -> InboundPost | None:
        """A postView (search) or notification as our InboundPost; None without the basics."""
        author = view.get("author")
        record = view.get("record")
        if not isinstance(author, dict) or not isinstance(record, dict) or not author.get("did"):
            return None
        return self._post(
            uri=str(view["uri"]),
            did=str(author["did"]),
            handle=str(author.get("handle") or ""),
            name=str(author.get("displayName") or ""),
            record=record,
            raw={
                "uri": view["uri"],
                "cid": view.get("cid"),
                "author": author,
                "record": record,
                "indexedAt": view.get("indexedAt"),
            },
            rule_id=rule_id,
        )

    def _post(
        self,
        *,
        uri: str,
        did: str,
        handle: str,
        name: str,
        record: Mapping[str, Any],
        raw: dict[str, Any],
        rule_id: int | None,
    ) -> InboundPost | None:
        posted_at = aware_time(record.get("createdAt"))
        if posted_at is None:
            return None
        reply = _dict(record.get("reply"))
        parent = str(_dict(reply.get("parent")).get("uri") or "")
        root = str(_dict(reply.get("root")).get("uri") or "")
        langs = record.get("langs") if isinstance(record.get("langs"), list) else []
        profile = f"https://bsky.app/profile/{handle or did}"
        return InboundPost(
            external_id=uri,
            author=InboundAuthor(
                external_id=did, handle=f"@{handle}" if handle else "", name=name, profile_url=profile
            ),
            text=str(record.get("text") or ""),
            posted_at=posted_at,
            url=f"{profile}/post/{_rkey(uri)}",
            in_reply_to=parent,
            conversation_id=root or uri,
            language=str(langs[0])[:16].lower() if langs else "",
            raw=raw,
            rule_id=rule_id,
        )

    # -- Jetstream --------------------------------------------------------------------------

    def stream(self, rules: Sequence[WatchRule]) -> Iterator[InboundPost | StreamMark]:
        saved = int((self.channel.stream_cursor or {}).get("time_us") or 0)
        self._time_us = saved
        params: list[tuple[str, str]] = [("wantedCollections", POST)]
        if saved:
            params.append(("cursor", str(max(0, saved - REWIND_US))))
        url = str(self.channel.config.get("jetstream_url") or DEFAULT_JETSTREAM)
        matcher = _Matcher(rules, self._own_did)
        with ws_connect(f"{url}?{urlencode(params)}", name="Jetstream") as connection:
            last_mark = time.monotonic()
            for frame in ws_frames(connection, timeout=RECV_TIMEOUT, name="Jetstream"):
                if frame is None:
                    yield StreamMark()
                    last_mark = time.monotonic()
                    continue
                post = self._event(frame, matcher)
                if post is not None:
                    yield post
                elif time.monotonic() - last_mark >= MARK_EVERY:
                    yield StreamMark()
                    last_mark = time.monotonic()

    def _event(self, frame: str | bytes, matcher: _Matcher) -> InboundPost | None:
        try:
            event = json.loads(frame)
        except ValueError:
            return None  # a malformed frame is skipped; Jetstream is at-least-once anyway
        if not isinstance(event, dict):
            return None
        time_us = event.get("time_us")
        if isinstance(time_us, int) and time_us > self._time_us:
            self._time_us = time_us
        did = str(event.get("did") or "")
        if event.get("kind") == "identity" and isinstance(event.get("identity"), dict):
            handle = event["identity"].get("handle")
            if isinstance(handle, str) and did in self._handles:
                self._handles[did] = handle
            return None
        commit = event.get("commit")
        if event.get("kind") != "commit" or not isinstance(commit, dict) or commit.get("collection") != POST:
            return None
        uri = f"at://{did}/{POST}/{commit.get('rkey')}"
        if commit.get("operation") == "delete":
            # Ingest redacts our copy if we have one and ignores the rest, in batches.
            return InboundPost(
                external_id=uri, author=InboundAuthor(did), text="", posted_at=timezone.now(), deleted=True
            )
        record = commit.get("record")
        if commit.get("operation") != "create" or not isinstance(record, dict) or did == self._own_did:
            return None
        rule = matcher.match(record)
        if rule is None:
            return None
        return self._post(
            uri=uri,
            did=did,
            handle=self._handle_for(did),
            name="",
            record=record,
            raw=dict(event),
            rule_id=rule.pk,
        )

    def _handle_for(self, did: str) -> str:
        """The author's handle, for matched posts only (Jetstream sends DIDs); "" if unknown."""
        if did not in self._handles:
            try:
                profile = self._xrpc("GET", "app.bsky.actor.getProfile", params=[("actor", did)])
                self._handles[did] = str(profile.get("handle") or "") if isinstance(profile, dict) else ""
            except ExternalError as exc:
                logger.info("no handle for %s: %s", did, exc.message)
                self._handles[did] = ""
        return self._handles[did]

    def stream_cursor(self) -> Cursor:
        return {"time_us": self._time_us} if self._time_us else {}

    # -- Replying ---------------------------------------------------------------------------

    def reply(self, post: Post, text: str, visibility: str, *, idempotency_key: str) -> str:
        if visibility == "direct":
            return chat.message_send(self, post, text)
        if len(text.encode("utf-8")) > MAX_POST_BYTES:
            raise PermanentError(
                f"the reply is {len(text.encode('utf-8'))} bytes; a Bluesky post holds {MAX_POST_BYTES}"
            )
        session = self._session()
        parent, root = self._refs(post)
        record: dict[str, Any] = {
            "$type": POST,
            "text": text,
            "createdAt": _iso(timezone.now()),
            "reply": {"root": root, "parent": parent},
        }
        facets = self._facets(text, post)
        if facets:
            record["facets"] = facets
        created = self._xrpc(
            "POST",
            "com.atproto.repo.createRecord",
            body={"repo": session.did, "collection": POST, "record": record},
        )
        if not isinstance(created, dict) or not created.get("uri"):
            raise PermanentError("Bluesky accepted the reply but did not say its uri")
        return str(created["uri"])

    def status_refusal(self) -> str:
        return ""

    def post_status(self, text: str, *, idempotency_key: str) -> tuple[str, str]:
        """A top-level post of our account (com.atproto.repo.createRecord without reply refs).
        Bluesky has no idempotency key."""
        if graphemes(text) > MAX_GRAPHEMES:
            raise PermanentError(
                f"the status post is {graphemes(text)} graphemes; a Bluesky post holds {MAX_GRAPHEMES}"
            )
        if len(text.encode("utf-8")) > MAX_POST_BYTES:
            raise PermanentError(
                f"the status post is {len(text.encode('utf-8'))} bytes; a Bluesky post holds {MAX_POST_BYTES}"
            )
        session = self._session()
        record: dict[str, Any] = {"$type": POST, "text": text, "createdAt": _iso(timezone.now())}
        links = [
            _facet(text, m.start(), m.start() + len(url), {"$type": "app.bsky.richtext.facet#link", "uri": url})
            for m in _LINK.finditer(text)
            if (url := m.group().rstrip(".,;:!?"))
        ]
        if links:
            record["facets"] = links
        created = self._xrpc(
            "POST", "com.atproto.repo.createRecord", body={"repo": session.did, "collection": POST, "record": record}
        )
        uri = str(created.get("uri") or "") if isinstance(created, dict) else ""
        if not uri:
            raise PermanentError("Bluesky accepted the status post but did not say its uri")
        rkey = uri.rsplit("/", 1)[-1]
        return uri, f"https://bsky.app/profile/{session.did}/post/{rkey}"

    def _refs(self, post: Post) -> tuple[dict[str, str], dict[str, str]]:
        """Strong refs {uri, cid} of the post and of its thread's root (the post itself if it
        starts the thread). The cid comes from the stored payload, else from the AppView."""
        raw = post.raw or {}
        record = raw.get("record") or (raw.get("commit") or {}).get("record")
        cid = raw.get("cid") or (raw.get("commit") or {}).get("cid")
        if not cid or not isinstance(record, dict):
            found = _list(self._xrpc("GET", "app.bsky.feed.getPosts", params=[("uris", post.external_id)]), "posts")
            if not found or not isinstance(found[0], dict):
                raise PermanentError("the post is gone from Bluesky (deleted?); there is nothing to reply to")
            cid, record = found[0].get("cid"), found[0].get("record")
        parent = {"uri": post.external_id, "cid": str(cid)}
        root = ((record or {}).get("reply") or {}).get("root")
        if isinstance(root, dict) and root.get("uri") and root.get("cid"):
            return parent, {"uri": str(root["uri"]), "cid": str(root["cid"])}
        return parent, dict(parent)

    def posts_gone(self, posts: Sequence[Post]) -> dict[str, str]:
        """app.bsky.feed.getPosts (25 uris a call): a uri missing from the answer is gone. The
        AppView does not say whether the author deleted the post or it was taken down; a post
        stored in the last INDEX_GRACE may not be indexed yet and is left out."""
        posts = [post for post in posts if not post.is_direct]  # chat messages have no look-up
        if not posts:
            return {}
        data = self._xrpc("GET", "app.bsky.feed.getPosts", params=[("uris", post.external_id) for post in posts])
        uris = [view.get("uri") if isinstance(view, dict) else None for view in _list(data, "posts")]
        if not all(isinstance(uri, str) and uri for uri in uris):
            # Posts we cannot read are no proof that the others are gone.
            raise TransientError("Bluesky answered getPosts with posts that have no uri")
        found = set(uris)
        settled = timezone.now() - INDEX_GRACE
        return {
            post.external_id: GONE_DELETED
            for post in posts
            if post.external_id not in found and post.ingested_at <= settled
        }

    def _facets(self, text: str, post: Post) -> list[dict[str, Any]]:
        """Mention and link facets, with byte offsets into the UTF-8 text as the lexicon wants."""
        facets = []
        author_handle = post.author.handle.lstrip("@").lower()
        for match in _MENTION.finditer(text):
            handle = match.group(1).rstrip(".").lower()
            did = post.author.external_id if handle == author_handle else self._resolve(handle)
            if did:
                facets.append(
                    _facet(
                        text,
                        match.start(),
                        match.start() + 1 + len(handle),
                        {"$type": "app.bsky.richtext.facet#mention", "did": did},
                    )
                )
        for match in _LINK.finditer(text):
            url = match.group().rstrip(".,;:!?")
            facets.append(
                _facet(
                    text, match.start(), match.start() + len(url), {"$type": "app.bsky.richtext.facet#link", "uri": url}
                )
            )
        return sorted(facets, key=lambda f: f["index"]["byteStart"])

    def _resolve(self, handle: str) -> str:
        try:
            data = self._xrpc("GET", "com.atproto.identity.resolveHandle", params=[("handle", handle)])
        except PermanentError:
            return ""  # not a handle after all: the text stays as written
        return str(data.get("did") or "") if isinstance(data, dict) else ""

    def find_sent(self, post: Post, text: str, visibility: str, *, since: datetime) -> list[str]:
        """Public: our own records (the PDS's list of our posts, newest first), then the post's
        direct replies in its thread (the AppView), for a reply to this post with this text.
        Direct: the latest messages of our conversation with the poster."""
        did = self._session().did
        if visibility == "direct":
            return chat.messages_sent(self, post, text, did, since)
        data = self._xrpc(
            "GET",
            "com.atproto.repo.listRecords",
            params=[("repo", did), ("collection", POST), ("limit", str(SENT_PAGE))],
        )
        records = [
            (str(item.get("uri") or ""), _dict(item.get("value")))
            for item in _list(data, "records")
            if isinstance(item, dict)
        ]
        found = _copies(records, post.external_id, text, since)
        return found or _copies(self._thread_replies(post.external_id, did), post.external_id, text, since)

    def _thread_replies(self, uri: str, did: str) -> list[tuple[str, dict[str, Any]]]:
        """(uri, record) of our direct replies to `uri` as its thread shows them."""
        try:
            data = self._xrpc(
                "GET", "app.bsky.feed.getPostThread", params=[("uri", uri), ("depth", "1"), ("parentHeight", "0")]
            )
        except PermanentError as exc:
            if "NotFound" in exc.message:
                return []  # the post is gone from the AppView: there is no thread to look in
            raise
        replies = _dict(_dict(data).get("thread")).get("replies")
        views = [_dict(_dict(reply).get("post")) for reply in replies] if isinstance(replies, list) else []
        return [
            (str(view.get("uri") or ""), _dict(view.get("record")))
            for view in views
            if _dict(view.get("author")).get("did") == did
        ]


def _problem(response: requests.Response) -> tuple[str, str]:
    try:
        data = response.json()
    except ValueError:
        text = response.text.strip()
        return "", "" if text.startswith("<") else text[:200]
    if isinstance(data, dict):
        return str(data.get("error") or ""), str(data.get("message") or "")
    return "", response.text[:200]
