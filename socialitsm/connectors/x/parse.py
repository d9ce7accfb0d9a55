"""X API v2 payloads (posts, DM events, error bodies) as our InboundPost."""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from socialitsm.exceptions import PermanentError

from ..base import DetailKind, InboundAuthor, InboundPost, PostDetail

logger = logging.getLogger(__name__)

SNOWFLAKE_EPOCH_MS = 1288834974657
# Language codes X uses for "no language" (undetermined, hashtags/mentions/links only, ...).
NO_LANGUAGE = {"und", "zxx", "qam", "qct", "qht", "qme", "qst"}


def _snowflake_time(tweet_id: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(((int(tweet_id) >> 22) + SNOWFLAKE_EPOCH_MS) / 1000, tz=UTC)
    except ValueError:
        return None


def _full_text(tweet: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """Long posts carry their whole text in note_tweet; `text` is then cut at 280."""
    note = tweet.get("note_tweet")
    if isinstance(note, dict) and isinstance(note.get("text"), str):
        return note["text"], note.get("entities") or {}
    return str(tweet.get("text", "")), tweet.get("entities") or {}


def plain_text(text: str, entities: Mapping[str, Any]) -> str:
    """X text with its t.co links expanded and HTML entities (&amp; &lt; &gt;) decoded."""
    for url in entities.get("urls") or []:
        if isinstance(url, dict) and url.get("url") and url.get("expanded_url"):
            text = text.replace(url["url"], url["expanded_url"])
    return html.unescape(text)


def _posted_at(value: Any, tweet_id: str) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    return parsed or _snowflake_time(tweet_id) or timezone.now()


def _language(value: Any) -> str:
    code = str(value or "").lower()
    return "" if code in NO_LANGUAGE else code


def _author(user_id: Any, user: Mapping[str, Any]) -> InboundAuthor:
    """The poster from an id and its user object in `includes` (empty when X left it out)."""
    username = str(user.get("username", ""))
    return InboundAuthor(
        external_id=str(user_id or ""),
        handle=f"@{username}" if username else "",
        name=str(user.get("name", "")),
        profile_url=f"https://x.com/{username}" if username else "",
    )


def edit_original(tweet: Mapping[str, Any]) -> str:
    """The id of the first version when `tweet` is an edit: X gives each edit a new id and
    lists every version's id, oldest first, in `edit_history_tweet_ids`. "" for a post never
    edited, and for the first version itself."""
    history = tweet.get("edit_history_tweet_ids")
    if not isinstance(history, list) or len(history) < 2 or not isinstance(history[0], str | int):
        return ""
    first = str(history[0])
    return first if first and first != str(tweet["id"]) else ""


def _by_key(items: Any, key: str) -> dict[str, Mapping[str, Any]]:
    return {str(i[key]): i for i in _as_list(items) if isinstance(i, dict) and i.get(key) is not None}


def _references(tweet: Mapping[str, Any], kind: str) -> list[str]:
    return [
        str(r["id"])
        for r in _as_list(tweet.get("referenced_tweets"))
        if isinstance(r, dict) and r.get("type") == kind and r.get("id")
    ]


def _status_url(tweet_id: str, username: str) -> str:
    return f"https://x.com/{username or 'i/web'}/status/{tweet_id}"


def original_of(tweet: Mapping[str, Any], includes: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The post to store for `tweet`: itself, or for a repost the original it reposts, taken
    from `includes.tweets`. None for a repost whose original X left out (deleted, protected):
    its own text is a cut-off "RT @...: ..." copy, not something its reposter said."""
    reposted = _references(tweet, "retweeted")
    if not reposted:
        return tweet
    original = _by_key(includes.get("tweets"), "id").get(reposted[0])
    if original is None or not original.get("id") or "text" not in original:
        logger.info("X repost %s of %s came without the original; skipped", tweet.get("id"), reposted[0])
        return None
    return original


def tweet_details(tweet: Mapping[str, Any], includes: Mapping[str, Any]) -> tuple[PostDetail, ...]:
    """What a post carries beside its text, from the response's `includes`: the posts it quotes
    (`referenced_tweets` "quoted"), its poll's options (`attachments.poll_ids` -> `polls`) and its
    media (`attachments.media_keys` -> `media`): the description an author gave an image, or the
    attachment's address where it has none."""
    details: list[PostDetail] = []
    users = _by_key(includes.get("users"), "id")
    tweets = _by_key(includes.get("tweets"), "id")
    for quoted_id in _references(tweet, "quoted"):
        quoted = tweets.get(quoted_id)
        if quoted is None:
            continue
        text, entities = _full_text(quoted)
        username = str((users.get(str(quoted.get("author_id"))) or {}).get("username", ""))
        details.append(PostDetail(DetailKind.QUOTE, plain_text(text, entities), _status_url(quoted_id, username)))
    attachments = _as_dict(tweet.get("attachments"))
    polls = _by_key(includes.get("polls"), "id")
    for poll_id in _as_list(attachments.get("poll_ids")):
        options = _as_list((polls.get(str(poll_id)) or {}).get("options"))
        ordered = sorted((o for o in options if isinstance(o, dict)), key=lambda o: _position(o.get("position")))
        details.extend(PostDetail(DetailKind.POLL, str(o.get("label") or "")) for o in ordered)
    media = _by_key(includes.get("media"), "media_key")
    for key in _as_list(attachments.get("media_keys")):
        item = media.get(str(key))
        if item is None:
            continue
        url = str(item.get("url") or item.get("preview_image_url") or "")
        alt = str(item.get("alt_text") or "")
        details.append(PostDetail(DetailKind.ALT_TEXT, alt, url) if alt else PostDetail(DetailKind.MEDIA, "", url))
    return tuple(details)


def _position(value: Any) -> int:
    return value if isinstance(value, int) else 0


def tweet_to_inbound(tweet: Mapping[str, Any], includes: Mapping[str, Any]) -> InboundPost:
    """One v2 post object (plus the response's `includes`) as our InboundPost. A repost is
    resolved with `original_of` first: this parses the post it is given. An edit keeps its
    own id and names the first version in `original_id`; it is dated when the first version
    was posted (from that id) and `edited_at` when the edit was."""
    tweet_id = str(tweet["id"])
    original = edit_original(tweet)
    created = _posted_at(tweet.get("created_at"), tweet_id)
    users = {u.get("id"): u for u in includes.get("users") or [] if isinstance(u, dict)}
    author = users.get(tweet.get("author_id")) or {}
    username = str(author.get("username", ""))
    text, entities = _full_text(tweet)
    references = [r for r in tweet.get("referenced_tweets") or [] if isinstance(r, dict)]
    referenced_ids = {str(r.get("id")) for r in references}
    related = [t for t in includes.get("tweets") or [] if isinstance(t, dict) and str(t.get("id")) in referenced_ids]
    attachments = _as_dict(tweet.get("attachments"))
    media_keys = {str(k) for k in _as_list(attachments.get("media_keys"))}
    poll_ids = {str(k) for k in _as_list(attachments.get("poll_ids"))}
    kept: dict[str, Any] = {"users": [author] if author else [], "tweets": related}
    media = [
        m for m in _as_list(includes.get("media")) if isinstance(m, dict) and str(m.get("media_key")) in media_keys
    ]
    polls = [p for p in _as_list(includes.get("polls")) if isinstance(p, dict) and str(p.get("id")) in poll_ids]
    if media:
        kept["media"] = media
    if polls:
        kept["polls"] = polls
    return InboundPost(
        external_id=tweet_id,
        author=_author(tweet.get("author_id"), author),
        text=plain_text(text, entities),
        posted_at=(_snowflake_time(original) or created) if original else created,
        url=_status_url(tweet_id, username),
        in_reply_to=next((str(r["id"]) for r in references if r.get("type") == "replied_to" and "id" in r), ""),
        conversation_id=str(tweet.get("conversation_id", "")),
        language=_language(tweet.get("lang")),
        raw={"data": dict(tweet), "includes": kept},
        details=tweet_details(tweet, includes),
        edited_at=created if original else None,
        original_id=original,
    )


def dm_to_inbound(event: Mapping[str, Any], includes: Mapping[str, Any]) -> InboundPost:
    event_id = str(event["id"])
    users = {u.get("id"): u for u in includes.get("users") or [] if isinstance(u, dict)}
    sender = users.get(event.get("sender_id")) or {}
    conversation = str(event.get("dm_conversation_id", ""))
    return InboundPost(
        external_id=event_id,
        author=_author(event.get("sender_id"), sender),
        text=plain_text(str(event.get("text", "")), event.get("entities") or {}),
        posted_at=_posted_at(event.get("created_at"), event_id),
        url=f"https://x.com/messages/{conversation}" if conversation else "",
        conversation_id=conversation,
        is_direct=True,
        raw={"data": dict(event), "includes": {"users": [sender] if sender else []}},
    )


def _valid_items(body: Mapping[str, Any], key: str = "data") -> list[Mapping[str, Any]]:
    items = body.get(key) or []
    if not isinstance(items, list):
        raise PermanentError(f"X answered with an unexpected shape: {key!r} is not a list")
    good: list[Mapping[str, Any]] = [i for i in items if isinstance(i, dict) and i.get("id") and "text" in i]
    if len(good) != len(items):
        logger.warning("X answer held %d items without id or text; skipped", len(items) - len(good))
    return good


def _problem_text(body: Mapping[str, Any]) -> str:
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("detail") or errors[0].get("title") or errors[0])
    return str(body)[:200]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _not_found(error: Any) -> str:
    """The post id of a partial error saying X has no such post (deleted, or its author's
    account is gone); "" for any other error, e.g. a post we may not see."""
    if not isinstance(error, dict) or not str(error.get("type", "")).endswith("/resource-not-found"):
        return ""
    if error.get("parameter") not in (None, "", "ids"):
        return ""  # a post it refers to, not one we asked for
    return str(error.get("resource_id") or error.get("value") or "")
