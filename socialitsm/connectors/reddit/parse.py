"""Reddit things (t1 comments, t3 posts, t4 messages) as our InboundPost, and rule terms."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from ..base import GONE_DELETED, GONE_REMOVED, InboundAuthor, InboundPost
from .markdown import markdown_to_text

WEB = "https://www.reddit.com"
GONE = {"[deleted]", "[removed]"}


def _created(data: Mapping[str, Any]) -> datetime:
    try:
        return datetime.fromtimestamp(float(data["created_utc"]), tz=UTC)
    except (KeyError, TypeError, ValueError):
        return timezone.now()


def edited_time(data: Mapping[str, Any]) -> datetime | None:
    """When a comment or post was last edited: Reddit's `edited` is false, or the edit's Unix
    time (a few very old things say true, with no time: left undated)."""
    value = data.get("edited")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _is_gone(kind: str, data: Mapping[str, Any]) -> bool:
    return bool(gone_reason(kind, data))


# Values of a post's removed_by_category that mean its author deleted it; the others
# (moderator, reddit, automod_filtered, anti_evil_ops, copyright_takedown, ...) are removals.
BY_AUTHOR = {"deleted", "author"}


def gone_reason(kind: str, data: Mapping[str, Any]) -> str:
    """GONE_DELETED where the author deleted the post or comment (its text reads "[deleted]"),
    GONE_REMOVED where moderators, Reddit or its filters took it down ("[removed]"), "" while
    it stands. A comment whose author deleted their account stays up under "[deleted]"."""
    body = str(data.get("selftext" if kind == "t3" else "body", ""))
    category = data.get("removed_by_category") if kind == "t3" else None
    if body == "[removed]" or (category and str(category) not in BY_AUTHOR):
        return GONE_REMOVED
    if body == "[deleted]" or category:
        return GONE_DELETED
    return ""


_THREAD = re.compile(r"/comments/([a-z0-9]+)/")


def thing_to_inbound(kind: str, data: Mapping[str, Any]) -> InboundPost:
    """A listing child (t1 comment, t3 post, t4 private message) as our InboundPost. External ids
    are fullnames ("t3_abc"), which is what replying needs as thing_id."""
    name = str(data.get("name") or f"{kind}_{data['id']}")
    author = str(data.get("author") or "[deleted]")
    permalink = str(data.get("permalink") or data.get("context") or "")
    if kind == "t3":
        title = html.unescape(str(data.get("title", "")))
        body = markdown_to_text(str(data.get("selftext", "")))
        if not data.get("is_self", True) and data.get("url"):
            body = "\n".join(p for p in (body, str(data["url"])) if p)
        text = f"{title}\n\n{body}" if body else title
        in_reply_to, conversation = "", name
    elif kind == "t1":
        text = markdown_to_text(str(data.get("body", "")))
        in_reply_to = str(data.get("parent_id", ""))
        # Inbox items carry no link_id; their context link names the thread.
        thread = _THREAD.search(permalink)
        conversation = str(data.get("link_id") or (f"t3_{thread.group(1)}" if thread else in_reply_to))
    else:
        subject = html.unescape(str(data.get("subject", "")))
        body = markdown_to_text(str(data.get("body", "")))
        text = f"{subject}\n\n{body}" if subject and not subject.lower().startswith("re:") else body
        in_reply_to = str(data.get("parent_id") or "")
        conversation = str(data.get("first_message_name") or name)
        permalink = permalink or f"/message/messages/{data.get('id', '')}"
    return InboundPost(
        external_id=name,
        author=InboundAuthor(
            external_id=author,
            handle=f"u/{author}" if author not in GONE else author,
            profile_url=f"{WEB}/user/{author}" if author not in GONE else "",
        ),
        text=text,
        posted_at=_created(data),
        url=f"{WEB}{permalink}" if permalink.startswith("/") else permalink,
        in_reply_to=in_reply_to,
        conversation_id=conversation,
        is_direct=kind == "t4",
        deleted=_is_gone(kind, data),
        gone_reason=gone_reason(kind, data),
        raw={"kind": kind, "data": dict(data)},
        edited_at=edited_time(data),
    )


_TERM = re.compile(r'(-?)"([^"]+)"|(-?)(\S+)')
_OPERATORS = {"AND", "OR", "NOT"}


def query_terms(query: str) -> tuple[list[str], list[str]]:
    """The words and phrases of a search query, as (wanted, excluded), without operators."""
    wanted: list[str] = []
    excluded: list[str] = []
    for match in _TERM.finditer(query):
        negative = bool(match.group(1) or match.group(3))
        term = (match.group(2) or match.group(4) or "").strip("()").casefold()
        if not term or term.upper() in _OPERATORS or ":" in term:
            continue
        (excluded if negative else wanted).append(term)
    return wanted, excluded


def matches(text: str, wanted: Sequence[str], excluded: Sequence[str]) -> bool:
    folded = text.casefold()
    return (not wanted or any(t in folded for t in wanted)) and not any(t in folded for t in excluded)
