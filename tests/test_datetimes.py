from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from socialitsm import datetimes
from socialitsm.datetimes import InstantError, clamp_read, parse_instant

WINDOW = {"earliest": datetimes.FILTERS_EARLIEST, "latest": datetimes.FILTERS_LATEST}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T08:15:00Z", datetime(2026, 11, 26, 8, 15, tzinfo=UTC)),
        ("2026-11-26T08:15:00.123456+15:59", datetime(2026, 11, 25, 16, 16, 0, 123456, tzinfo=UTC)),
        ("2026-11-26T08:15:00-15:59", datetime(2026, 11, 27, 0, 14, tzinfo=UTC)),
        (" 2026-11-26T08:15:00+01:00 ", datetime(2026, 11, 26, 7, 15, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
        ("9999-12-30T00:00:00Z", datetime(9999, 12, 30, tzinfo=UTC)),
    ],
)
def test_accepted_instants(text, expected):
    parsed = parse_instant(text, **WINDOW)

    assert parsed == expected
    assert parsed.utcoffset() is not None


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("2026-11-26T08:15:00+16:00", "offset", "The UTC offset must be less than 16 hours."),
        ("2026-11-26T08:15:00-16:00", "offset", "The UTC offset must be less than 16 hours."),
        ("0001-01-01T00:30:00+01:00", "early", "The timestamp is before 1970-01-01."),
        ("9999-12-31T23:30:00-01:00", "late", "The timestamp is after 9999-12-30."),
        ("2026-11-26T08:15:00", "naive", "The timestamp has no UTC offset; add Z or +hh:mm."),
        ("2026-11-26T08:15:00Z\x00", "invalid", datetimes.MESSAGES["invalid"]),
        ("2" * 65, "invalid", datetimes.MESSAGES["invalid"]),
    ],
)
def test_refused_instants(text, code, message):
    with pytest.raises(InstantError) as caught:
        parse_instant(text, **WINDOW)

    assert (caught.value.code, str(caught.value)) == (code, message)


def test_posts_past_the_window_are_said_to_be_in_the_future():
    with pytest.raises(InstantError, match="more than a day in the future"):
        parse_instant("9999-12-31T23:30:00-01:00", **WINDOW, future_message=True)


def test_without_an_offset_a_filter_reads_the_given_time_zone():
    parsed = parse_instant(
        "2026-07-01T12:00:00", **WINDOW, require_offset=False, default_timezone=ZoneInfo("Europe/Paris")
    )

    assert parsed.astimezone(UTC) == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)


def test_year_1_without_an_offset_east_of_utc_is_too_early_not_a_crash():
    with pytest.raises(InstantError) as caught:
        parse_instant("0001-01-01T00:30:00", **WINDOW, require_offset=False, default_timezone=ZoneInfo("Asia/Tokyo"))

    assert caught.value.code == "early"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(1, 1, 1, 5, tzinfo=UTC), datetimes.READ_EARLIEST),
        (datetime(9999, 12, 31, 23, tzinfo=UTC), datetimes.READ_LATEST),
        (datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2))), datetime(2025, 12, 31, 22, tzinfo=UTC)),
    ],
)
def test_clamp_read(value, expected):
    assert clamp_read(value) == expected
