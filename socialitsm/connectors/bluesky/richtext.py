"""Bluesky rich text: length in graphemes, and mention and link facets with UTF-8 byte offsets."""

from __future__ import annotations

import re
from typing import Any

import regex

_MENTION = re.compile(r"(?:^|(?<=[\s(]))@([a-zA-Z0-9][a-zA-Z0-9.-]*\.[a-zA-Z][a-zA-Z0-9-]*)")


_LINK = re.compile(r"https?://[^\s<>\"')\]]+")


def graphemes(text: str) -> int:
    return len(regex.findall(r"\X", text))


def _facet(text: str, start: int, end: int, feature: dict[str, Any]) -> dict[str, Any]:
    byte_start = len(text[:start].encode("utf-8"))
    return {
        "index": {"byteStart": byte_start, "byteEnd": byte_start + len(text[start:end].encode("utf-8"))},
        "features": [feature],
    }
