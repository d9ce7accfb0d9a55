"""Template filters of the agents' web UI."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

from django import template
from django.template import defaultfilters
from django.utils.html import format_html

register = template.Library()

# Embeddings, overrides and isolates reorder what follows them: "\u202egnp.exe" shows as
# "exe.png". Shown as what they are.
_BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Marks (LRM, RLM, ALM) only nudge neutral characters; zero-width space, word joiner and BOM
# hide inside words ("ad\u200bmin"). Dropped.
_DROPPED = "\u200e\u200f\u061c\u200b\u2060\ufeff"
# Zero-width (non-)joiners: part of emoji sequences and of Arabic, Persian and Indic spelling.
_JOINERS = "\u200c\u200d"
_HIDDEN = re.compile(f"[{_BIDI_CONTROLS}{_DROPPED}{_JOINERS}]")
# Scripts whose letters look like ASCII: a joiner between two of them only disguises a word.
_LOOKALIKE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")


@register.filter
def http_url(value: str) -> str:
    """The URL if it is http(s), else "": URLs come from networks, and a javascript: or data:
    URL must never become a link."""
    value = (value or "").strip()
    return value if value.lower().startswith(("http://", "https://")) else ""


_VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".m3u8", ".gifv")


@register.filter
def post_images(post: Any) -> list[dict[str, str]]:
    """A post's attached images to show as thumbnails: https URLs only (an http image would be
    mixed content, and the page's policy allows https images only), videos left out (they stay
    links among the details). The browser loads them from the network; this server never does."""
    from urllib.parse import urlsplit

    from socialitsm.connectors.base import DetailKind

    images = []
    items = post.detail_items(DetailKind.MEDIA, DetailKind.ALT_TEXT) if hasattr(post, "detail_items") else []
    for item in items:
        url = item["url"].strip()
        try:
            parts = urlsplit(url)
        except ValueError:
            continue
        if parts.scheme.lower() != "https" or not parts.hostname or parts.username or parts.password:
            continue
        if parts.path.lower().endswith(_VIDEO_SUFFIXES):
            continue
        images.append({"url": url, "alt": item["text"] if item["kind"] == DetailKind.ALT_TEXT else ""})
    return images


def _joins(char: str) -> bool:
    if not char or char.isascii() or char.isspace() or _HIDDEN.match(char):
        return False
    return not unicodedata.name(char, "").startswith(_LOOKALIKE_SCRIPTS)


@register.filter
def visible(value: Any) -> str:
    """Untrusted text with its invisible characters neutralised for display: bidi embeddings,
    overrides and isolates shown as [U+202E]; bidi marks, zero-width spaces, word joiners and
    byte order marks dropped; zero-width joiners and non-joiners kept only between two
    characters that use them (emoji, Arabic, Indic...), never inside Latin, Greek or Cyrillic."""
    if value is None:
        return ""
    text = str(value)

    def neutralise(match: re.Match[str]) -> str:
        char = match.group()
        if char in _BIDI_CONTROLS:
            return f"[U+{ord(char):04X}]"
        if char in _JOINERS:
            start, end = match.start(), match.end()
            before = text[start - 1] if start else ""
            after = text[end] if end < len(text) else ""
            if _joins(before) and _joins(after):
                return char
        return ""

    return _HIDDEN.sub(neutralise, text)


@register.filter
def post_details(post: Any) -> list[dict[str, str]]:
    """A post's details to show beside its text, labelled: quoted posts, image descriptions,
    attachments, links; the options of a poll together on one line. Text stays untrusted: the
    template escapes it and passes it through `visible`."""
    from socialitsm.connectors.base import DetailKind

    labels = dict(DetailKind.choices)
    shown: list[dict[str, str]] = []
    for item in post.detail_items() if hasattr(post, "detail_items") else []:
        if item["kind"] == DetailKind.POLL:
            if shown and shown[-1]["kind"] == DetailKind.POLL:
                shown[-1]["text"] += " / " + item["text"]
                continue
            item = {**item, "label": "Poll"}
        else:
            item = {**item, "label": labels[item["kind"]]}
        shown.append(item)
    return shown


@register.filter
def chosen_time_zone(request: Any) -> str:
    """The time zone the user chose (or their browser gave the profile); "" when none yet."""
    from socialitsm.middleware import SESSION_KEY

    session = getattr(request, "session", None)
    return str(session.get(SESSION_KEY) or "") if session is not None else ""


@register.filter
def person(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


@register.filter
def is_lead(user) -> bool:
    from socialitsm.roles import is_lead as lead

    return lead(user)


@register.filter
def is_agent(user) -> bool:
    from socialitsm.roles import is_agent as agent

    return agent(user)


@register.filter
def minutes(value: int | None) -> str:
    """Seconds as a short duration: 95 min -> "1 h 35 min"."""
    if value is None:
        return "—"
    total = int(value) // 60
    hours, mins = divmod(total, 60)
    return f"{hours} h {mins} min" if hours else f"{mins} min"


@register.filter
def get_item(mapping: dict, key: str):
    return mapping.get(key, key)


@register.filter
def iso_utc(value: str | None) -> str:
    """An ISO 8601 instant from a report as "YYYY-MM-DD HH:MM UTC"."""
    if not value:
        return "—"
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@register.filter
def ago(moment: datetime | None) -> str:
    """How long ago, in the largest whole unit: "now", "5 min", "3 h", "2 d" (for dense tables)."""
    if moment is None:
        return ""
    seconds = max(0, int((datetime.now(UTC) - moment).total_seconds()))
    if seconds < 60:
        return "now"
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds // 60} min"


@register.simple_tag
def unread_notifications(user: Any) -> int:
    """How many of the person's notifications are unread, for the bell in the header."""
    from socialitsm.selectors import notification_unread_count

    return notification_unread_count(user)


# Times as the pages print them, in the active time zone (the value arrives converted, as with
# Django's `date`), without `date`'s per-call lookups of the language's formats: a queue page
# prints about 200 of them. Anything but an aware datetime goes to `date` itself.
@register.filter(expects_localtime=True)
def iso(value: Any) -> str:
    """As `date:'c'`: ISO 8601 with the offset, for <time datetime>."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat()
    return defaultfilters.date(value, "c")


@register.filter(expects_localtime=True)
def stamp(value: Any) -> str:
    """As `date:"Y-m-d H:i T"`: the minute and the zone's abbreviation, e.g. 2026-11-26 09:00 CET."""
    # In the hour the clocks go back, `date` prints no zone name: such a time is left to it.
    if isinstance(value, datetime) and value.tzinfo is not None and not _ambiguous(value):
        zone = value.tzinfo.tzname(value)
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:{value.minute:02d} {zone}"
    return defaultfilters.date(value, "Y-m-d H:i T")


def _ambiguous(value: datetime) -> bool:
    return value.replace(fold=1 - value.fold).utcoffset() != value.utcoffset()


@register.simple_tag
def priority_badge(incident: Any) -> str:
    """An incident's priority as the queue and its page show it: "P2" with its name."""
    return format_html(
        '<span class="badge prio prio-{}" title="{}">P{}</span>',
        incident.priority,
        incident.get_priority_display(),
        incident.priority,
    )
