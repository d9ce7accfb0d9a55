"""X's weighted text length (twitter-text v3): what counts against the 280-character limit."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

# Implemented from the v3 configuration (config/v3.json of twitter/twitter-text): scale 100,
# default weight 200, weight 100 in the ranges below, every URL counts as 23, an emoji sequence
# counts once at the default weight, text is NFC-normalised first. The Python ports
# (twitter-text-parser 3.0.0, 2023) are unmaintained and carry their own copy of an old emoji
# table; this is 60 lines we can test against the project's conformance cases.
MAX_WEIGHTED_LENGTH = 280
URL_LENGTH = 23
_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_EMOJI_PRESENTED = (
    "[\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u21aa\u231a-\u23ff\u24c2\u25aa-\u27bf"
    "\u2934\u2935\u2b05-\u2b55\u3030\u303d\u3297\u3299]\ufe0f"
)
_EMOJI_ELEMENT = (
    r"(?:[\U0001F000-\U0001FAFF](?:\ufe0f|[\U0001F3FB-\U0001F3FF])?"
    rf"|{_EMOJI_PRESENTED}"
    r"|[\u231a-\u27bf](?=\u200d)"
    r"|[\u2600-\u27bf][\U0001F3FB-\U0001F3FF])"
)
_EMOJI = re.compile(
    r"\U0001F3F4[\U000E0020-\U000E007E]+\U000E007F"  # subdivision flags
    r"|[\U0001F1E6-\U0001F1FF]{2}"  # country flags
    r"|[#*0-9]\ufe0f?\u20e3"  # keycaps
    rf"|{_EMOJI_ELEMENT}(?:\u200d{_EMOJI_ELEMENT}\ufe0f?)*"
)
_GTLDS = frozenset(
    {
        *("com", "net", "org", "edu", "gov", "mil", "int", "info", "biz", "name", "pro", "aero", "coop"),
        *("museum", "mobi", "asia", "tel", "travel", "jobs", "cat", "app", "dev", "page", "blog", "cloud"),
        *("online", "site", "shop", "store", "tech", "xyz", "top", "club", "live", "news", "media", "digital"),
        *("email", "support", "help", "network", "systems", "solutions", "services", "software", "company"),
        *("agency", "group", "global", "world", "today", "social", "link", "click", "space", "website"),
    }
)
_URL = re.compile(
    r"(?<![\w@#$/.-])(?:"
    r"(?P<scheme>https?://)[^\s/?#<>\"]+"
    r"|(?P<host>(?:[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+)(?P<tld>[a-z]{2,63})(?![\w-])(?::\d{1,5})?"
    r")(?P<path>[/?#][^\s<>\"]*)?",
    re.IGNORECASE,
)


def _is_url(match: re.Match[str]) -> bool:
    """Links without a scheme count only where twitter-text would link them: a generic TLD,
    or a country TLD after two labels or with a path (foo.co.jp, t.co, example.de/x)."""
    if match.group("scheme"):
        return True
    tld = match.group("tld").lower()
    if tld in _GTLDS:
        return True
    host = match.group("host")
    return len(tld) == 2 and (bool(match.group("path")) or host.count(".") > 1 or host.lower() == "t.")


def _url_spans(text: str) -> Iterator[tuple[int, int]]:
    for match in _URL.finditer(text):
        if not _is_url(match):
            continue
        end = match.end()
        url = match.group()
        # Trailing punctuation ends the sentence, not the URL (twitter-text does the same).
        while url and (url[-1] in ".,:;!?'\"" or (url.endswith(")") and url.count("(") < url.count(")"))):
            url, end = url[:-1], end - 1
        yield match.start(), end


def _plain_weight(text: str) -> int:
    weight, index = 0, 0
    while index < len(text):
        emoji = _EMOJI.match(text, index)
        if emoji:
            weight += 200
            index = emoji.end()
            continue
        code = ord(text[index])
        weight += 100 if any(low <= code <= high for low, high in _LIGHT_RANGES) else 200
        index += 1
    return weight


def weighted_length(text: str) -> int:
    """The length X counts against its 280 limit (twitter-text v3 rules)."""
    text = unicodedata.normalize("NFC", text)
    total, position = 0, 0
    for start, end in _url_spans(text):
        total += _plain_weight(text[position:start]) + URL_LENGTH * 100
        position = end
    total += _plain_weight(text[position:])
    return total // 100


def contains_url(text: str) -> bool:
    return any(True for _ in _url_spans(unicodedata.normalize("NFC", text)))
