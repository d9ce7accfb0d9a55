"""Bluesky chat: direct messages read from the chat service's event log, and sent to a poster.

Every call goes to the account's PDS with the `atproto-proxy` header naming the chat service,
which the PDS forwards it to. Listening reads `chat.bsky.convo.getLog`, the account's log of
chat events in order: each logCreateMessage from someone else becomes a direct post (its id the
message id, its conversation the convo id); each logDeleteMessage of such a message redacts our
copy. The rule's cursor keeps the log's cursor, so every event is read once across restarts.

The log also carries the messages we sent. The cursor remembers our latest message in each
recent conversation, and an answer in that conversation names it as the message it answers
(`in_reply_to`), so routing threads it into the incident our direct message came from. For a
conversation the log has not shown a message of ours in (we wrote before listening began), the
conversation's latest messages are read once (`chat.bsky.convo.getMessages`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from socialitsm.conf import conf
from socialitsm.exceptions import PermanentError

from ..base import Cursor, DetailKind, InboundAuthor, InboundPost, PostDetail, aware_time, same_text
from .records import _dict, _iso, _list

if TYPE_CHECKING:
    from datetime import datetime

    from socialitsm.models import Post

    from .connector import BlueskyConnector

CHAT_PROXY = "did:web:api.bsky.chat#bsky_chat"
GET_LOG = "chat.bsky.convo.getLog"
LOG_CREATE = "chat.bsky.convo.defs#logCreateMessage"
LOG_DELETE = "chat.bsky.convo.defs#logDeleteMessage"
MESSAGE_VIEW = "chat.bsky.convo.defs#messageView"
RECORD_VIEW = "app.bsky.embed.record#view"
# Log pages read per poll; a longer backlog is resumed at the next poll from the saved cursor.
MAX_LOG_PAGES = 10
# Conversations whose latest message of ours the cursor remembers (the most recent ones).
OURS_KEPT = 200
# Our latest chat messages read when a retry looks for a copy of its direct message.
SENT_PAGE = 50


def chat_refusal(name: str, message: str, status: int) -> PermanentError | None:
    """The error for a chat call the channel's session cannot make: an app password created
    without access to direct messages ("Bad token scope", later "Bad token method"). Renewing
    the session would not help, so it is permanent and says what to change. None otherwise."""
    if name == "InvalidToken" and "bad token" in message.lower():
        return PermanentError(
            f"Bluesky chat refused this channel's session (InvalidToken: {message}): direct messages "
            "need an app password created with access to direct messages in the channel's credentials",
            status=status,
        )
    return None


def _chat(connector: BlueskyConnector, method: str, nsid: str, **kwargs: Any) -> Any:
    return connector._xrpc(method, nsid, proxy=CHAT_PROXY, **kwargs)


# -- Listening ---------------------------------------------------------------------------------


def log_read(connector: BlueskyConnector, cursor: Cursor) -> tuple[list[InboundPost], Cursor]:
    """The direct messages and deletions in the chat log after `cursor`, oldest first, and the
    cursor to save once they are stored: {"log": the log's cursor, "from": messages sent before
    this are never taken (listening started then, less SOCIALITSM_BACKFILL_HOURS), "ours": {convo
    id: our latest message id, "" for none}}. Raises TransientError or PermanentError (see `chat_refusal`)."""
    own = connector._session().did
    log_cursor = str(cursor.get("log") or "")
    start = aware_time(cursor.get("from")) or timezone.now() - timedelta(hours=conf.BACKFILL_HOURS)
    ours: dict[str, str] = {str(k): str(v) for k, v in _dict(cursor.get("ours")).items()}
    posts: list[InboundPost] = []
    for _ in range(MAX_LOG_PAGES):
        data = _chat(connector, "GET", GET_LOG, params=[("cursor", log_cursor)] if log_cursor else None)
        logs = [entry for entry in _list(data, "logs") if isinstance(entry, dict)]
        for entry in logs:
            post = _event(connector, entry, own, ours, start)
            if post is not None:
                posts.append(post)
        revs = [str(entry["rev"]) for entry in logs if isinstance(entry.get("rev"), str) and entry["rev"]]
        following = str(_dict(data).get("cursor") or "") or max(revs, default="")
        if not logs or not following or following == log_cursor:
            log_cursor = following or log_cursor
            break
        log_cursor = following
    kept = dict(list(ours.items())[-OURS_KEPT:])
    next_cursor: Cursor = {"from": _iso(start), "ours": kept}
    if log_cursor:
        next_cursor["log"] = log_cursor
    return posts, next_cursor


def _event(
    connector: BlueskyConnector, entry: Mapping[str, Any], own: str, ours: dict[str, str], start: datetime
) -> InboundPost | None:
    kind = entry.get("$type")
    convo = str(entry.get("convoId") or "")
    message = _dict(entry.get("message"))
    message_id = str(message.get("id") or "")
    sender = str(_dict(message.get("sender")).get("did") or "")
    if kind not in (LOG_CREATE, LOG_DELETE) or not convo or not message_id or not sender:
        return None  # conversations begun, accepted, read, muted; reactions: nothing to store
    if kind == LOG_DELETE:
        if sender == own:
            return None  # our own messages are replies, not posts
        return InboundPost(
            external_id=message_id, author=InboundAuthor(sender), text="", posted_at=timezone.now(), deleted=True
        )
    if sender == own:
        ours.pop(convo, None)
        ours[convo] = message_id  # kept in the order last written: the oldest are dropped first
        return None
    sent_at = aware_time(message.get("sentAt"))
    # A deletedMessageView has no text: there is nothing left to read.
    if sent_at is None or sent_at < start or not isinstance(message.get("text"), str):
        return None
    if convo not in ours:
        ours[convo] = _ours_before(connector, convo, own, sent_at)
    handle = connector._handle_for(sender)
    profile = f"https://bsky.app/profile/{handle or sender}"
    return InboundPost(
        external_id=message_id,
        author=InboundAuthor(external_id=sender, handle=f"@{handle}" if handle else "", profile_url=profile),
        text=message["text"],
        posted_at=sent_at,
        url=f"https://bsky.app/messages/{convo}",
        in_reply_to=ours.get(convo, ""),
        conversation_id=convo,
        is_direct=True,
        raw={"convoId": convo, "rev": entry.get("rev"), "message": dict(message)},
        details=_shared_post(message.get("embed")),
    )


def _ours_before(connector: BlueskyConnector, convo: str, own: str, sent_at: datetime) -> str:
    """The id of our latest message in `convo` sent before `sent_at`, among its latest
    SENT_PAGE messages; "" when there is none (remembered, so it is not looked up again)."""
    data = _chat(
        connector, "GET", "chat.bsky.convo.getMessages", params=[("convoId", convo), ("limit", str(SENT_PAGE))]
    )
    found = []
    for message in _list(data, "messages"):
        if not isinstance(message, dict) or _dict(message.get("sender")).get("did") != own:
            continue
        when = aware_time(message.get("sentAt"))
        if when is not None and when <= sent_at and message.get("id"):
            found.append((when, str(message["id"])))
    return max(found)[1] if found else ""


def _shared_post(embed: Any) -> tuple[PostDetail, ...]:
    """A post shared into the message (app.bsky.embed.record#view) as a quoted post."""
    embed = _dict(embed)
    record = _dict(embed.get("record"))
    value = _dict(record.get("value"))
    if embed.get("$type") != RECORD_VIEW or not isinstance(value.get("text"), str):
        return ()
    uri, author = str(record.get("uri") or ""), _dict(record.get("author"))
    who = str(author.get("handle") or author.get("did") or "")
    url = f"https://bsky.app/profile/{who}/post/{uri.rsplit('/', 1)[-1]}" if who and uri.startswith("at://") else ""
    return (PostDetail(kind=DetailKind.QUOTE, text=value["text"], url=url),)


# -- Sending -----------------------------------------------------------------------------------


def convo_with(connector: BlueskyConnector, recipient: str) -> str:
    """The id of our 1:1 chat conversation with `recipient` (Bluesky makes it if need be)."""
    data = _chat(connector, "GET", "chat.bsky.convo.getConvoForMembers", params=[("members", recipient)])
    convo = data.get("convo") if isinstance(data, dict) else None
    if not isinstance(convo, dict) or not convo.get("id"):
        raise PermanentError("Bluesky chat answered without a conversation")
    return str(convo["id"])


def message_send(connector: BlueskyConnector, post: Post, text: str) -> str:
    """Send `text` to the poster of `post`: in the conversation the post came from when it is
    a direct message, else in our 1:1 conversation with them. Returns the message id."""
    convo = post.conversation_id if post.is_direct and post.conversation_id else ""
    sent = _chat(
        connector,
        "POST",
        "chat.bsky.convo.sendMessage",
        body={"convoId": convo or convo_with(connector, post.author.external_id), "message": {"text": text}},
    )
    if not isinstance(sent, dict) or not sent.get("id"):
        raise PermanentError("Bluesky chat accepted the message but did not say its id")
    return str(sent["id"])


def messages_sent(connector: BlueskyConnector, post: Post, text: str, did: str, since: datetime) -> list[str]:
    """Ids of our messages with `text` sent at or after `since` in the conversation
    `message_send` would use, oldest first (its latest SENT_PAGE messages)."""
    convo = post.conversation_id if post.is_direct and post.conversation_id else ""
    data = _chat(
        connector,
        "GET",
        "chat.bsky.convo.getMessages",
        params=[("convoId", convo or convo_with(connector, post.author.external_id)), ("limit", str(SENT_PAGE))],
    )
    found = []
    for message in _list(data, "messages"):
        # A deleted message has neither text nor anything to match.
        if not isinstance(message, dict) or _dict(message.get("sender")).get("did") != did:
            continue
        sent_at = aware_time(message.get("sentAt"))
        if sent_at is not None and sent_at >= since and same_text(text, str(message.get("text") or "")):
            found.append((sent_at, str(message.get("id") or "")))
    return [message_id for _, message_id in sorted(found) if message_id]
