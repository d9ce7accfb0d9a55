"""The SLA clock maths, table-driven with fixed times. Berlin is UTC+1 in winter, UTC+2 in summer;
2026-03-29 and 2026-10-25 are its DST changes; Ascension (2026-05-14) and Christmas are holidays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from socialitsm import sla
from socialitsm.sla import History, Targets


def z(text: str) -> datetime:
    """A UTC instant written as 'YYYY-MM-DD HH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


OFFICE = sla.calendar_build(
    tz="Europe/Berlin",
    hours={day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    holiday_country="DE",
    closed_dates=["2026-12-24"],
)
NIGHT_SHIFT = sla.calendar_build(tz="Europe/Berlin", hours={"mon": [["22:00", "24:00"]], "tue": [["00:00", "06:00"]]})
SPLIT_DAY = sla.calendar_build(tz="UTC", hours={"thu": [["08:00", "12:00"], ["13:00", "17:00"]]})


@pytest.mark.parametrize(
    ("case", "calendar", "start", "minutes", "due"),
    [
        ("24x7 is wall-clock", sla.ALWAYS, "2026-11-28 23:50", 30, "2026-11-29 00:20"),
        ("inside business hours", OFFICE, "2026-11-26 09:00", 60, "2026-11-26 10:00"),
        ("before opening starts at 09:00", OFFICE, "2026-11-26 05:00", 30, "2026-11-26 08:30"),
        ("across a night", OFFICE, "2026-11-26 15:30", 60, "2026-11-27 08:30"),
        ("across a weekend", OFFICE, "2026-11-27 15:00", 120, "2026-11-30 09:00"),
        ("starting on a Saturday", OFFICE, "2026-11-28 11:00", 15, "2026-11-30 08:15"),
        ("over a public holiday (Ascension)", OFFICE, "2026-05-13 14:00", 240, "2026-05-15 10:00"),
        ("over an extra closed day and Christmas", OFFICE, "2026-12-23 15:00", 120, "2026-12-28 09:00"),
        ("spring forward weekend", OFFICE, "2026-03-27 15:00", 120, "2026-03-30 08:00"),
        ("fall back weekend", OFFICE, "2026-10-23 14:00", 120, "2026-10-26 09:00"),
        ("a span ending at midnight continues after it", NIGHT_SHIFT, "2026-11-30 22:30", 120, "2026-12-01 00:30"),
        ("lunch break", SPLIT_DAY, "2026-11-26 11:00", 120, "2026-11-26 14:00"),
        ("zero minutes from a closed time: due when it opens", OFFICE, "2026-11-28 11:00", 0, "2026-11-30 08:00"),
    ],
)
def test_add_business_minutes(case, calendar, start, minutes, due):
    assert sla.add_business_minutes(z(start), minutes, calendar) == z(due), case


@pytest.mark.parametrize(
    ("case", "calendar", "start", "end", "minutes"),
    [
        ("24x7", sla.ALWAYS, "2026-11-26 09:00", "2026-11-27 09:30", 1470),
        ("Thursday 16:00 to Monday 10:00 local", OFFICE, "2026-11-26 15:00", "2026-11-30 09:00", 600),
        ("a weekend only", OFFICE, "2026-11-28 00:00", "2026-11-30 00:00", 0),
        ("the holiday counts nothing", OFFICE, "2026-05-14 00:00", "2026-05-15 00:00", 0),
        ("end before start", OFFICE, "2026-11-27 09:00", "2026-11-26 09:00", 0),
        (
            "a night shift across DST fall back is 9 real hours",
            NIGHT_SHIFT,
            "2026-10-19 00:00",
            "2026-10-21 00:00",
            480,
        ),
    ],
)
def test_business_minutes_between(case, calendar, start, end, minutes):
    assert sla.business_minutes_between(z(start), z(end), calendar) == minutes, case


def test_a_calendar_that_never_opens_has_no_due_time():
    closed = sla.calendar_build(tz="UTC", hours={})
    assert sla.add_business_minutes(z("2026-11-26 09:00"), 1, closed) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"hours": {"funday": [["09:00", "17:00"]]}}, "unknown weekday 'funday'"),
        ({"hours": {"mon": [["17:00", "09:00"]]}}, "mon: 17:00-09:00 ends before it starts"),
        ({"hours": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}}, "mon: hours overlap"),
        ({"hours": {"mon": [["9am", "5pm"]]}}, "mon: times are HH:MM"),
        ({"hours": {"mon": ["09:00"]}}, "mon: each span is [start, end]"),
        ({"holiday_country": "XX"}, "no public holidays known for 'XX'"),
        ({"closed_dates": ["24.12.2026"]}, "closed dates must be YYYY-MM-DD"),
    ],
)
def test_calendar_build_refuses_bad_definitions(fields, message):
    definition = {"tz": "UTC", "hours": {}, **fields}
    with pytest.raises(sla.CalendarError) as err:
        sla.calendar_build(**definition)
    assert str(err.value).startswith(message)


def test_clock_start_clamps_a_post_from_the_future_and_reports_the_skew():
    assert sla.clock_start(z("2026-11-26 09:05"), z("2026-11-26 09:00")) == (
        z("2026-11-26 09:00"),
        timedelta(minutes=5),
    )
    assert sla.clock_start(z("2026-11-26 08:00"), z("2026-11-26 09:00")) == (z("2026-11-26 08:00"), timedelta(0))


def states(*entries: tuple[str, str]) -> list[tuple[datetime, str]]:
    return [(z(at), state) for at, state in entries]


def replay(history: History, targets: Targets, now: str) -> dict[tuple[str, int], sla.Clock]:
    return {clock.key: clock for clock in sla.clocks_replay(history, targets, z(now))}


RESOLVE_8H_OFFICE = Targets(
    first_response=None, next_response=None, resolution=480, pause_states=frozenset({"on_hold"}), calendar=OFFICE
)
PAUSED_OVERNIGHT = History(
    start=z("2026-11-30 08:00"),
    states=states(
        ("2026-11-30 08:00", "in_progress"), ("2026-11-30 14:00", "on_hold"), ("2026-12-01 10:00", "in_progress")
    ),
)


@pytest.mark.parametrize(
    ("case", "now", "state", "due", "elapsed_h", "paused_h"),
    [
        ("before the pause", "2026-11-30 12:00", sla.RUNNING, "2026-11-30 16:00", 4, 0),
        ("paused over the night: no due time", "2026-12-01 08:00", sla.PAUSED, None, 6, 18),
        (
            "resumed: due moved by the business time paused",
            "2026-12-01 11:30",
            sla.RUNNING,
            "2026-12-01 12:00",
            7.5,
            20,
        ),
        ("past the moved due time", "2026-12-01 12:00", sla.BREACHED, "2026-12-01 12:00", 8, 20),
    ],
)
def test_a_pause_across_a_night_stops_the_resolution_clock(case, now, state, due, elapsed_h, paused_h):
    clock = replay(PAUSED_OVERNIGHT, RESOLVE_8H_OFFICE, now)[("resolution", 0)]

    assert (clock.state, clock.due_at, clock.elapsed, clock.paused) == (
        state,
        z(due) if due else None,
        timedelta(hours=elapsed_h),
        timedelta(hours=paused_h),
    ), case


def test_a_clock_that_reached_its_target_before_a_pause_is_breached_while_paused():
    history = History(
        start=z("2026-11-26 08:00"), states=states(("2026-11-26 08:00", "new"), ("2026-11-26 13:00", "on_hold"))
    )
    targets = Targets(first_response=None, next_response=None, resolution=240, pause_states=frozenset({"on_hold"}))

    clock = replay(history, targets, "2026-11-26 20:00")[("resolution", 0)]

    assert (clock.state, clock.due_at, clock.elapsed, clock.paused) == (
        sla.BREACHED,
        z("2026-11-26 12:00"),
        timedelta(hours=5),
        timedelta(hours=7),
    )


REOPENED = History(
    start=z("2026-11-26 08:00"),
    states=states(("2026-11-26 08:00", "new"), ("2026-11-26 10:00", "resolved"), ("2026-11-26 11:00", "in_progress")),
)
RESOLVE_4H = Targets(first_response=None, next_response=None, resolution=240)


@pytest.mark.parametrize(
    ("case", "now", "state", "stopped", "due", "elapsed_h"),
    [
        ("resolved in time: met", "2026-11-26 10:30", sla.MET, "2026-11-26 10:00", "2026-11-26 12:00", 2),
        ("reopened: resumes where it stopped", "2026-11-26 12:00", sla.RUNNING, None, "2026-11-26 13:00", 3),
    ],
)
def test_reopening_resumes_the_resolution_clock(case, now, state, stopped, due, elapsed_h):
    clock = replay(REOPENED, RESOLVE_4H, now)[("resolution", 0)]

    assert (clock.state, clock.stopped_at, clock.due_at, clock.elapsed) == (
        state,
        z(stopped) if stopped else None,
        z(due),
        timedelta(hours=elapsed_h),
    ), case


def test_resolved_late_is_a_breach_and_stays_one():
    history = History(
        start=z("2026-11-26 08:00"), states=states(("2026-11-26 08:00", "new"), ("2026-11-26 12:01", "resolved"))
    )
    clock = replay(history, RESOLVE_4H, "2026-11-27 08:00")[("resolution", 0)]
    assert (clock.state, clock.stopped_at, clock.elapsed) == (
        sla.BREACHED,
        z("2026-11-26 12:01"),
        timedelta(minutes=241),
    )


RESPONSES = Targets(first_response=15, next_response=30, resolution=None)


@pytest.mark.parametrize(
    ("case", "replies", "posts", "now", "expected"),
    [
        ("no reply yet", [], [], "2026-11-26 08:10", {("first_response", 0): (sla.RUNNING, "2026-11-26 08:15", None)}),
        (
            "no reply, past due",
            [],
            [],
            "2026-11-26 08:16",
            {("first_response", 0): (sla.BREACHED, "2026-11-26 08:15", None)},
        ),
        (
            "answered in time",
            ["2026-11-26 08:14"],
            [],
            "2026-11-26 09:00",
            {("first_response", 0): (sla.MET, "2026-11-26 08:15", "2026-11-26 08:14")},
        ),
        (
            "poster writes again: next response clocks, one per unanswered turn",
            ["2026-11-26 08:10", "2026-11-26 09:40"],
            ["2026-11-26 08:00", "2026-11-26 08:05", "2026-11-26 09:00", "2026-11-26 09:20", "2026-11-26 10:00"],
            "2026-11-26 10:05",
            {
                ("first_response", 0): (sla.MET, "2026-11-26 08:15", "2026-11-26 08:10"),
                ("next_response", 1): (sla.BREACHED, "2026-11-26 09:30", "2026-11-26 09:40"),
                ("next_response", 2): (sla.RUNNING, "2026-11-26 10:30", None),
            },
        ),
    ],
)
def test_response_clocks(case, replies, posts, now, expected):
    history = History(
        start=z("2026-11-26 08:00"),
        states=states(("2026-11-26 08:00", "new")),
        poster_posts=[z(p) for p in posts],
        replies_sent=[z(r) for r in replies],
    )
    clocks = replay(history, RESPONSES, now)
    got = {
        key: (c.state, c.due_at.strftime("%Y-%m-%d %H:%M"), c.stopped_at and c.stopped_at.strftime("%Y-%m-%d %H:%M"))
        for key, c in clocks.items()
    }
    assert got == expected, case


@pytest.mark.parametrize(
    ("case", "closed_at", "state"),
    [
        ("canceled before the response was due", "2026-11-26 08:10", sla.CANCELED),
        ("canceled after the response was due", "2026-11-26 08:20", sla.BREACHED),
    ],
)
def test_closing_without_a_reply_stops_the_response_clock(case, closed_at, state):
    history = History(start=z("2026-11-26 08:00"), states=states(("2026-11-26 08:00", "new"), (closed_at, "canceled")))
    clock = replay(history, RESPONSES, "2026-11-26 12:00")[("first_response", 0)]
    assert (clock.state, clock.stopped_at) == (state, z(closed_at)), case


def test_warning_time_is_the_warn_ratio_of_the_target_in_business_time():
    history = History(start=z("2026-11-26 15:00"), states=states(("2026-11-26 15:00", "new")))
    targets = Targets(first_response=120, next_response=None, resolution=None, calendar=OFFICE, warn_ratio=0.75)

    clock = replay(history, targets, "2026-11-27 08:00")[("first_response", 0)]

    # 120 minutes from Thursday 16:00 local: 60 on Thursday, 60 on Friday; 75% is 90 minutes.
    assert (clock.warn_at, clock.due_at, clock.state) == (z("2026-11-27 08:30"), z("2026-11-27 09:00"), sla.RUNNING)
