"""Making untrusted text safe to store: no NULs, no lone surrogates, no control characters."""

from __future__ import annotations

import html
import math
import re
from typing import Any

import nh3

# C0 controls except tab, newline and carriage return; DEL; C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(value: str) -> str:
    """PostgreSQL refuses NUL and UTF-8 cannot carry lone surrogates; both arrive in JSON."""
    if _UNSAFE.search(value) is None:  # nearly every text: one scan, nothing copied
        return value
    return _SURROGATE.sub("\ufffd", _CONTROL.sub("", value))


def clean_json(value: Any) -> Any:
    """`value` as PostgreSQL's jsonb takes it: strings (keys too) cleaned, NaN and infinities as
    null, tuples as lists, anything else JSON has no type for as its text."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int):
        return value
    return clean_text(str(value))


def shorten(value: str, limit: int) -> str:
    """One line, at most `limit` characters, cut at a word boundary where one is near."""
    line = " ".join(value.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "…"


_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_PARAGRAPH = re.compile(r"</p\s*>\s*<p[^>]*>", re.IGNORECASE)


def html_to_text(value: str) -> str:
    """Plain text of a network's sanitised HTML (Mastodon `content`): line and paragraph
    breaks kept, tags dropped, entities decoded, then cleaned like any untrusted text."""
    # Cleaned before the sanitiser too: it encodes to UTF-8 and raises on a lone surrogate.
    value = _PARAGRAPH.sub("\n\n", _BREAK.sub("\n", clean_text(value)))
    stripped = nh3.clean(value, tags=set(), attributes={}, strip_comments=True)
    return clean_text(html.unescape(stripped)).strip()
