"""Instants from untrusted input: ISO 8601 text that both Python and PostgreSQL can hold.

Python's datetime ends at years 1 and 9999 (in UTC as well as in the offset given) and PostgreSQL
refuses UTC offsets of 16 hours or more, so a value that parses is not yet one that can be
stored, queried and read back. Every datetime the API accepts goes through `parse_instant`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from django.utils import timezone
from django.utils.dateparse import parse_datetime

# PostgreSQL: "time zone displacement out of range" from +-16:00 on.
MAX_OFFSET = timedelta(hours=16)
# Longer text is not an ISO 8601 timestamp; it is not worth parsing.
MAX_LENGTH = 64
# Posts: social networks are younger than this, and clocks drift by less than a day.
POSTS_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
POSTS_AHEAD = timedelta(days=1)
# Query filters: wide, but far enough from Python's limits that any offset or time zone
# conversion of the value still fits.
FILTERS_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
FILTERS_LATEST = datetime(9999, 12, 30, tzinfo=UTC)
# Rows stored before these bounds existed are read back clamped to this range.
READ_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
READ_LATEST = datetime(9999, 12, 30, tzinfo=UTC)

MESSAGES = {
    "invalid": "Expected an ISO 8601 timestamp with a UTC offset, e.g. 2026-11-26T08:15:00Z.",
    "naive": "The timestamp has no UTC offset; add Z or +hh:mm.",
    "offset": "The UTC offset must be less than 16 hours.",
    "early": "The timestamp is before {earliest}.",
    "future": "The timestamp is more than a day in the future.",
    "late": "The timestamp is after {latest}.",
}


class InstantError(ValueError):
    """`code` is a key of MESSAGES; the message is ready to show."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(MESSAGES[code].format(**params))
        self.code = code


def parse_instant(
    value: object,
    *,
    earliest: datetime,
    latest: datetime,
    require_offset: bool = True,
    default_timezone: tzinfo | None = None,
    future_message: bool = False,
) -> datetime:
    """An aware datetime from ISO 8601 text, within [earliest, latest]; raises InstantError.

    Without an offset the value is refused, or read in `default_timezone` (the current time
    zone) when `require_offset` is false. `future_message` names a value past `latest` as being
    in the future (posts) rather than after a fixed date (filters)."""
    # isprintable: Python's fromisoformat reads "2026-11-26T08:15:00\x00" as if the NUL were not there.
    if not isinstance(value, str) or len(value) > MAX_LENGTH or not value.strip().isprintable():
        raise InstantError("invalid")
    try:
        parsed = parse_datetime(value.strip())
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        raise InstantError("invalid")
    offset = parsed.utcoffset()
    if offset is None:
        if require_offset:
            raise InstantError("naive")
        try:
            parsed = timezone.make_aware(parsed, default_timezone or timezone.get_current_timezone())
        except (ValueError, OverflowError) as exc:
            raise InstantError("invalid") from exc
    elif abs(offset) >= MAX_OFFSET:
        raise InstantError("offset")
    try:
        instant: datetime | None = parsed.astimezone(UTC)
    except OverflowError:
        # Year 1 early in the morning east of Greenwich, or 9999 late at night west of it.
        instant = None
    if instant is None:
        code = "early" if parsed.year < 2 else "late"
    elif instant < earliest:
        code = "early"
    elif instant > latest:
        code = "late"
    else:
        return parsed
    if code == "late" and future_message:
        code = "future"
    raise InstantError(code, earliest=_day(earliest), latest=_day(latest))


def clamp_read(value: datetime) -> datetime:
    """A stored instant moved into the range every time zone conversion can hold."""
    return min(max(value, READ_EARLIEST), READ_LATEST)


def _day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")
