"""Reddit things (t1 comments, t3 posts, t4 messages) as our InboundPost, and rule terms."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from django.utils import timezone

from ..base import GONE_DELETED, GONE_REMOVED, DetailKind, InboundAuthor, InboundPost, PostDetail
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
# The text Reddit shows for a post or comment its own staff took down (comments carry no
# removed_by_category), e.g. "[ Removed by Reddit ]" or "[ Removed by Reddit on account of ...]".
_REMOVED_BY_REDDIT = re.compile(r"^\[\s*removed by reddit\b", re.IGNORECASE)


def gone_reason(kind: str, data: Mapping[str, Any]) -> str:
    """GONE_DELETED where the author deleted the post or comment (its text reads "[deleted]",
    a post's removed_by_category is "deleted"), GONE_REMOVED where moderators, Reddit or its
    filters took it down ("[removed]", "[ Removed by Reddit ]", any other removed_by_category),
    "" while it stands. A post or comment whose author deleted their account stays up under
    the author "[deleted]"."""
    body = str(data.get("selftext" if kind == "t3" else "body", "")).strip()
    category = data.get("removed_by_category") if kind == "t3" else None
    if body == "[removed]" or _REMOVED_BY_REDDIT.match(body) or (category and str(category) not in BY_AUTHOR):
        return GONE_REMOVED
    if body == "[deleted]" or category:
        return GONE_DELETED
    return ""


_THREAD = re.compile(r"/comments/([a-z0-9]+)/")
# Where an author's account is gone, the id of the Author we file the post under starts with
# this, followed by the post's fullname (a message's by its thread's): each such post gets an
# author of its own, stable across re-reads, so different people are never merged into one.
DELETED_AUTHOR = "[deleted]:"
# Messages a subreddit's moderators send come without an author (Reddit hides who wrote them)
# but with the subreddit: they are filed under the subreddit's moderators, with the name Reddit
# itself gives a subreddit as a message's addressee ("dest"), which no username can take.
MODERATORS = "#"
# A private message thread is read to this depth at most (Reddit nests answers under the
# thread's first message; a deeper payload is malformed, not a longer conversation).
MAX_THREAD_DEPTH = 50


def _absolute(url: str) -> str:
    """A link Reddit gives relative to its site ("/r/acme/comments/...") made absolute."""
    return f"{WEB}{url}" if url.startswith("/") else url


def is_deleted_author(external_id: str) -> bool:
    """Whether an Author id stands for an account that no longer exists on Reddit."""
    return external_id in GONE or external_id.startswith(DELETED_AUTHOR)


def is_moderators(external_id: str) -> bool:
    """Whether an Author id stands for a subreddit's moderators (see MODERATORS)."""
    return external_id.startswith(MODERATORS) and len(external_id) > 1


def author_of(kind: str, data: Mapping[str, Any], name: str, conversation: str) -> InboundAuthor:
    """The author of a thing: the account; the subreddit's moderators for a moderator message
    (`author` null, `subreddit` set); else a deleted account, one per post (per thread for a
    private message, which has one other party)."""
    author = str(data.get("author") or "")
    if author and author not in GONE:
        return InboundAuthor(external_id=author, handle=f"u/{author}", profile_url=f"{WEB}/user/{author}")
    subreddit = str(data.get("subreddit") or "").strip()
    if kind == "t4" and not author and subreddit:
        return InboundAuthor(
            external_id=f"{MODERATORS}{subreddit}",
            handle=f"r/{subreddit} moderators",
            profile_url=f"{WEB}/r/{quote(subreddit, safe='')}/about/moderators",
        )
    return InboundAuthor(external_id=f"{DELETED_AUTHOR}{conversation if kind == 't4' else name}", handle="[deleted]")


def thread_of(kind: str, data: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """A listing child and, for a private message, the later messages of its thread: Reddit
    lists a thread once, under its first message, with the answers in `replies` (a Listing of
    t4 children, which may nest further). First message first, answers in the order given."""
    found: list[tuple[str, Mapping[str, Any]]] = []

    def walk(kind: str, data: Mapping[str, Any], depth: int) -> None:
        found.append((kind, data))
        replies = data.get("replies")
        listing = replies.get("data") if isinstance(replies, dict) and replies.get("kind") == "Listing" else None
        children = listing.get("children") if isinstance(listing, dict) else None
        if depth >= MAX_THREAD_DEPTH or not isinstance(children, list):
            return
        for child in children:
            if isinstance(child, dict) and isinstance(child.get("data"), dict) and child.get("kind") == "t4":
                walk("t4", child["data"], depth + 1)

    walk(kind, data, 0)
    return found


def thing_to_inbound(kind: str, data: Mapping[str, Any]) -> InboundPost:
    """A listing child (t1 comment, t3 post, t4 private message) as our InboundPost. External ids
    are fullnames ("t3_abc"), which is what replying needs as thing_id."""
    name = str(data.get("name") or f"{kind}_{data['id']}")
    permalink = str(data.get("permalink") or data.get("context") or "")
    details: tuple[PostDetail, ...] = ()
    if kind == "t3":
        title = html.unescape(str(data.get("title", "")))
        body = markdown_to_text(str(data.get("selftext", "")))
        if not data.get("is_self", True) and data.get("url"):
            body = "\n".join(p for p in (body, _absolute(str(data["url"]))) if p)
        text = f"{title}\n\n{body}" if body else title
        in_reply_to, conversation = "", name
        details = post_details(data)
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
        author=author_of(kind, data, name, conversation),
        text=text,
        posted_at=_created(data),
        url=f"{WEB}{permalink}" if permalink.startswith("/") else permalink,
        in_reply_to=in_reply_to,
        conversation_id=conversation,
        is_direct=kind == "t4",
        deleted=_is_gone(kind, data),
        gone_reason=gone_reason(kind, data),
        # Without the thread's later messages: each is a post of its own, with its own payload.
        raw={"kind": kind, "data": {k: v for k, v in data.items() if k != "replies"}},
        details=details,
        edited_at=edited_time(data),
    )


# --- what a post holds beside its text ------------------------------------------------------------


def post_details(data: Mapping[str, Any], *, nested: bool = False) -> tuple[PostDetail, ...]:
    """A post's crossposted original, poll options and gallery items, in that order."""
    details: list[PostDetail] = []
    parents = data.get("crosspost_parent_list")
    if not nested and isinstance(parents, list) and parents and isinstance(parents[0], dict):
        details.extend(_crosspost(parents[0]))
    details.extend(_poll(data.get("poll_data")))
    if data.get("is_gallery"):
        details.extend(_gallery(data.get("gallery_data"), data.get("media_metadata")))
    return tuple(details)


def _crosspost(original: Mapping[str, Any]) -> list[PostDetail]:
    """The post a crosspost shares: where and by whom, its title and text, then its own parts."""
    subreddit = str(original.get("subreddit") or "")
    author = str(original.get("author") or "")
    where = ", ".join(
        p for p in (f"r/{subreddit}" if subreddit else "", f"u/{author}" if author and author not in GONE else "") if p
    )
    title = html.unescape(str(original.get("title") or "")).strip()
    selftext = str(original.get("selftext") or "")
    body = "" if selftext.strip() in GONE else markdown_to_text(selftext)
    if not original.get("is_self", True) and original.get("url"):
        body = "\n".join(p for p in (body, _absolute(str(original["url"]))) if p)
    head = f"{where}: {title}" if where and title else where or title
    text = "\n\n".join(p for p in (head, body) if p)
    url = _absolute(str(original.get("permalink") or ""))
    return [PostDetail(kind=DetailKind.CROSSPOST, text=text, url=url), *post_details(original, nested=True)]


def _poll(poll: Any) -> list[PostDetail]:
    """Each option, with its votes where Reddit shows them, then when voting ends."""
    if not isinstance(poll, dict) or not isinstance(poll.get("options"), list):
        return []
    details = []
    for option in poll["options"]:
        if not isinstance(option, dict) or not str(option.get("text") or "").strip():
            continue
        text = html.unescape(str(option["text"])).strip()
        votes = option.get("vote_count")
        if isinstance(votes, int) and not isinstance(votes, bool):
            text = f"{text} ({votes} vote{'' if votes == 1 else 's'})"
        details.append(PostDetail(kind=DetailKind.POLL, text=text))
    ends = poll.get("voting_end_timestamp")
    if details and isinstance(ends, int | float) and not isinstance(ends, bool):
        try:
            at = datetime.fromtimestamp(ends / 1000, tz=UTC)  # milliseconds
        except (OverflowError, OSError, ValueError):
            return details
        state = "ends" if at > timezone.now() else "ended"
        details.append(PostDetail(kind=DetailKind.POLL, text=f"Voting {state} {at:%Y-%m-%d %H:%M} UTC"))
    return details


def _gallery(gallery: Any, metadata: Any) -> list[PostDetail]:
    """Each gallery item as an attachment (its caption and image), and its link where it has one."""
    items = gallery.get("items") if isinstance(gallery, dict) else None
    if not isinstance(items, list):
        return []
    media = metadata if isinstance(metadata, dict) else {}
    details = []
    for item in items:
        if not isinstance(item, dict):
            continue
        caption = html.unescape(str(item.get("caption") or "")).strip()
        meta = media.get(str(item.get("media_id") or ""))
        source = meta.get("s") if isinstance(meta, dict) and meta.get("status", "valid") == "valid" else None
        image = ""
        if isinstance(source, dict):
            image = next((str(source[k]) for k in ("u", "gif", "mp4") if source.get(k)), "")
        if caption or image:
            details.append(PostDetail(kind=DetailKind.MEDIA, text=caption, url=html.unescape(image)))
        link = str(item.get("outbound_url") or "")
        if link.startswith(("https://", "http://")):
            details.append(PostDetail(kind=DetailKind.LINK, text=caption, url=html.unescape(link)))
    return details


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
