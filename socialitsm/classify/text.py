"""Normalisation of raw social posts into text the scorers can rely on."""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

MAX_CHARS = 2000
# Markup, URLs and entities shrink during cleaning, so the raw cut is looser than the analysed one.
_RAW_CAP = MAX_CHARS + MAX_CHARS // 2

_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_MARKUP = re.compile(r"<[A-Za-z/!?][^<>]{0,500}>")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@#])([@#])(\w+)")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"'})

_CASE_PIECES = re.compile(r"[A-Z]+[a-z]*|[a-z]+|\d+")
_UPPER_THEN_LOWER = re.compile(r"([A-Z]{2,})([a-z]+)")

# Vocabulary for splitting run-together hashtags such as #vpndown or #ITsucks.
_HASHTAG_VOCABULARY = """
    again all broken crash crashing dead desk down email epic error fail failed fails help
    helpdesk internet is issue issues it laptop login mail monday mondays network no not now
    office outage outlook password printer problem problems sap server service servicedesk slow
    so still sucks support team teams the ticket today vpn why wifi working works
"""
_HASHTAG_WORDS = frozenset(_HASHTAG_VOCABULARY.split())
_LONGEST_WORD = max(map(len, _HASHTAG_WORDS))
_MAX_SEGMENTED = 40
_MAX_HANDLES = 10


@dataclass(frozen=True, slots=True)
class Clean:
    text: str
    lowered: str
    tags: frozenset[str]
    mentions: bool = False
    urls: bool = False
    handles: str = ""  # the accounts mentioned, as lowercase words: "@ITSupport" -> "it support"


def normalise(text: object) -> Clean:
    """Return cleaned text (original case), its lowercase form, the lowercased hashtags and
    whether @mentions or URLs were removed."""
    raw = _decode_markup(_as_str(text)[:_RAW_CAP])
    raw = unicodedata.normalize("NFKC", raw).translate(_QUOTES)
    # The substring guards skip whole regex passes, which matter for long posts.
    urls = False
    if "://" in raw or "www." in raw.lower():
        raw, count = _URL.subn(" ", raw)
        urls = count > 0
    tags: frozenset[str] = frozenset()
    mentions = ""
    if "@" in raw or "#" in raw:
        handles = _HANDLE.findall(raw)
        tags = frozenset(body.lower() for mark, body in handles if mark == "#")
        mentions = " ".join(split_hashtag(body) for mark, body in handles[:_MAX_HANDLES] if mark == "@")
        raw = _HANDLE.sub(_expand_handle, raw)
    cleaned = " ".join(raw.split())[:MAX_CHARS]
    return Clean(cleaned, cleaned.lower(), tags, bool(mentions), urls, mentions)


def _as_str(text: object) -> str:
    if isinstance(text, str):
        return text
    return "" if text is None else str(text)


def _decode_markup(raw: str) -> str:
    # Entities are decoded after tags are dropped so "&lt;b&gt;" survives as text; the decoded
    # result is filtered again because entities can name control characters.
    raw = _BAD_CHARS.sub(" ", raw)
    if "<" in raw:
        raw = _MARKUP.sub(" ", raw)
    if "&" in raw:
        raw = _BAD_CHARS.sub(" ", html.unescape(raw))
    return raw


def _expand_handle(match: re.Match[str]) -> str:
    # A mention names an account (often our own, "@ITSupport"), not a service or a complaint.
    if match.group(1) == "@":
        return " "
    return " " + split_hashtag(match.group(2)) + " "


@lru_cache(maxsize=20_000)
def split_hashtag(body: str) -> str:
    """Split a hashtag or handle body into lowercase words: "VPNdown" -> "vpn down"."""
    words: list[str] = []
    for chunk in body.replace("_", " ").split():
        if chunk.isascii():
            for piece in _CASE_PIECES.findall(chunk) or [chunk]:
                words.extend(_split_piece(piece))
        else:
            words.append(chunk.lower())
    return " ".join(words)


def _split_piece(piece: str) -> list[str]:
    mixed = _UPPER_THEN_LOWER.fullmatch(piece)
    if mixed:
        upper, lower = mixed.groups()
        tail = _segment(lower) if len(lower) <= _MAX_SEGMENTED else None
        if tail:
            return [upper.lower(), *tail]
        return [upper[:-1].lower(), (upper[-1] + lower).lower()]
    lowered = piece.lower()
    if lowered.isalpha() and lowered not in _HASHTAG_WORDS and len(lowered) <= _MAX_SEGMENTED:
        return _segment(lowered) or [lowered]
    return [lowered]


def _segment(word: str) -> list[str] | None:
    """Fewest-words split of `word` into known hashtag words, or None when impossible."""
    best: list[list[str] | None] = [[]] + [None] * len(word)
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - _LONGEST_WORD), end):
            prefix = best[start]
            part = word[start:end]
            if prefix is None or part not in _HASHTAG_WORDS:
                continue
            current = best[end]
            if current is None or len(prefix) + 1 < len(current):
                best[end] = [*prefix, part]
    return best[-1]
