"""SLA clock maths: business hours, pauses and due times. Pure functions, no ORM; times are aware
datetimes (UTC in, UTC out) and calendars convert to their own zone at the edge."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holidays_lib

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A business-hours walk that finds no open time in this many days gives up: the calendar is closed.
SEARCH_DAYS = 3 * 366

Interval = tuple[datetime, datetime]


class CalendarError(ValueError):
    """A calendar definition that cannot be used (unknown zone or country, malformed hours)."""


@dataclass(frozen=True)
class Calendar:
    """When the clock may run. `hours` maps a weekday (0 = Monday) to its open (start, end) local
    times; an end of None means midnight at the end of the day. `always` ignores everything else."""

    always: bool = True
    tz: str = "UTC"
    hours: Mapping[int, tuple[tuple[time, time | None], ...]] = field(default_factory=dict)
    holiday_country: str = ""
    holiday_subdivision: str = ""
    closed_dates: frozenset[date] = frozenset()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def is_closed_day(self, day: date) -> bool:
        if day in self.closed_dates:
            return True
        return bool(self.holiday_country) and day in _holidays(self.holiday_country, self.holiday_subdivision)

    def day_intervals(self, day: date) -> list[Interval]:
        """The day's open intervals in UTC. Local times are resolved in the calendar's zone, so a
        09:00-17:00 day is 8 real hours either side of a DST change and 00:00-24:00 is 23 or 25."""
        if self.is_closed_day(day):
            return []
        zone = self.zone
        out = []
        for start, end in self.hours.get(day.weekday(), ()):
            opens = datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
            closes_local = (
                datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
                if end is None
                else datetime.combine(day, end, tzinfo=zone)
            )
            closes = closes_local.astimezone(UTC)
            if closes > opens:
                out.append((opens, closes))
        return out


ALWAYS = Calendar()


def calendar_build(
    *,
    tz: str,
    hours: Mapping[str, Sequence[Sequence[str]]],
    holiday_country: str = "",
    holiday_subdivision: str = "",
    closed_dates: Sequence[str] = (),
) -> Calendar:
    """A business-hours calendar from its stored form: {"mon": [["09:00", "17:00"]], ...}, ISO dates.

    Raises CalendarError naming what is wrong."""
    try:
        ZoneInfo(tz)
    except (ValueError, KeyError) as exc:
        raise CalendarError(f"unknown time zone {tz!r}") from exc
    unknown = set(hours) - set(WEEKDAYS)
    if unknown:
        raise CalendarError(f"unknown weekday {sorted(unknown)[0]!r}; use {', '.join(WEEKDAYS)}")
    parsed: dict[int, tuple[tuple[time, time | None], ...]] = {}
    for name, spans in hours.items():
        day_spans = sorted((_span(name, span) for span in spans), key=lambda span: span[0])
        for (_, end), (start, _) in itertools.pairwise(day_spans):
            if end is None or end > start:
                raise CalendarError(f"{name}: hours overlap")
        if day_spans:
            parsed[WEEKDAYS.index(name)] = tuple(day_spans)
    if holiday_country:
        try:
            _holidays(holiday_country, holiday_subdivision)
        except NotImplementedError as exc:
            where = f"{holiday_country!r}" + (f" subdivision {holiday_subdivision!r}" if holiday_subdivision else "")
            raise CalendarError(f"no public holidays known for {where}") from exc
    try:
        closed = frozenset(date.fromisoformat(d) for d in closed_dates)
    except (TypeError, ValueError) as exc:
        raise CalendarError(f"closed dates must be YYYY-MM-DD: {exc}") from exc
    return Calendar(
        always=False,
        tz=tz,
        hours=parsed,
        holiday_country=holiday_country,
        holiday_subdivision=holiday_subdivision,
        closed_dates=closed,
    )


def _span(day: str, span: Sequence[str]) -> tuple[time, time | None]:
    if not isinstance(span, list | tuple) or len(span) != 2:
        raise CalendarError(f"{day}: each span is [start, end], e.g. ['09:00', '17:00']")
    try:
        start = time.fromisoformat(span[0])
        end = None if span[1] == "24:00" else time.fromisoformat(span[1])
    except (TypeError, ValueError) as exc:
        raise CalendarError(f"{day}: times are HH:MM (end may be 24:00): {exc}") from exc
    if end is not None and end <= start:
        raise CalendarError(f"{day}: {span[0]}-{span[1]} ends before it starts")
    return start, end


@lru_cache(maxsize=64)
def _holidays(country: str, subdivision: str) -> Any:
    # The holidays object fills in years lazily on lookup (expand=True).
    return holidays_lib.country_holidays(country, subdiv=subdivision or None)


def open_intervals(calendar: Calendar, start: datetime, end: datetime | None = None) -> Iterator[Interval]:
    """The calendar's open time from `start` on (to `end` if given), in order, clipped."""
    if calendar.always:
        yield (start, end) if end is not None else (start, datetime.max.replace(tzinfo=UTC))
        return
    zone = calendar.zone
    # Start a day early: a span of the previous local day may still be open at `start`.
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = (end.astimezone(zone).date() if end is not None else day + timedelta(days=SEARCH_DAYS)) + timedelta(days=1)
    while day <= last:
        for opens, closes in calendar.day_intervals(day):
            if closes <= start:
                continue
            if end is not None and opens >= end:
                return
            yield max(opens, start), min(closes, end) if end is not None else closes
        day += timedelta(days=1)


def _subtract(intervals: Iterator[Interval], pauses: Sequence[Interval]) -> Iterator[Interval]:
    """`intervals` minus the sorted, non-overlapping `pauses`."""
    for start, end in intervals:
        cursor = start
        i = bisect.bisect_left([p_end for _, p_end in pauses], cursor)
        while i < len(pauses) and pauses[i][0] < end:
            p_start, p_end = pauses[i]
            if p_start > cursor:
                yield cursor, p_start
            cursor = max(cursor, p_end)
            i += 1
        if cursor < end:
            yield cursor, end


def business_time_between(
    start: datetime, end: datetime, calendar: Calendar, pauses: Sequence[Interval] = ()
) -> timedelta:
    """Open, unpaused time between `start` and `end`."""
    if end <= start:
        return timedelta(0)
    total = timedelta(0)
    for a, b in _subtract(open_intervals(calendar, start, end), pauses):
        total += b - a
    return total


def business_minutes_between(start: datetime, end: datetime, calendar: Calendar) -> float:
    return business_time_between(start, end, calendar) / timedelta(minutes=1)


def add_business_time(
    start: datetime, amount: timedelta, calendar: Calendar, pauses: Sequence[Interval] = ()
) -> datetime | None:
    """The moment `amount` of open, unpaused time has passed since `start`. None when the
    calendar never opens again (or a pause never ends) before that."""
    left = amount
    last_end = start
    for a, b in _subtract(open_intervals(calendar, start), pauses):
        if b - a >= left:
            return a + left
        left -= b - a
        last_end = b
    if left <= timedelta(0):
        return last_end
    return None


def add_business_minutes(start: datetime, minutes: float, calendar: Calendar) -> datetime | None:
    return add_business_time(start, timedelta(minutes=minutes), calendar)


# --- Clock replay -------------------------------------------------------------------------------

FIRST_RESPONSE = "first_response"
NEXT_RESPONSE = "next_response"
RESOLUTION = "resolution"

RUNNING = "running"
PAUSED = "paused"
MET = "met"
BREACHED = "breached"
# Stopped without the thing it measures (closed before any reply, canceled), before it was due.
CANCELED = "canceled"

STOP_STATES = frozenset({"resolved", "closed", "canceled"})


@dataclass(frozen=True)
class History:
    """What happened to an incident, as the clocks need it. `states` is the state from each moment
    on, first entry at `start`; `poster_posts` are when the poster wrote (clamped to receipt);
    `replies_sent` when replies to the poster were confirmed sent."""

    start: datetime
    states: Sequence[tuple[datetime, str]]
    poster_posts: Sequence[datetime] = ()
    replies_sent: Sequence[datetime] = ()


@dataclass(frozen=True)
class Targets:
    """Minutes per target (None: not measured), the states that pause resolution, the calendar."""

    first_response: int | None
    next_response: int | None
    resolution: int | None
    pause_states: frozenset[str] = frozenset()
    calendar: Calendar = ALWAYS
    warn_ratio: float = 0.8


@dataclass(frozen=True)
class Clock:
    target: str
    cycle: int
    started_at: datetime
    target_time: timedelta
    due_at: datetime | None
    warn_at: datetime | None
    stopped_at: datetime | None
    elapsed: timedelta
    paused: timedelta
    state: str

    @property
    def key(self) -> tuple[str, int]:
        return self.target, self.cycle


def clocks_replay(history: History, targets: Targets, now: datetime) -> list[Clock]:
    """Every clock the incident has had, replayed from its history with the current targets: a
    priority change therefore re-targets from the original start, and a calendar edit moves
    every due time."""
    # Only what had happened by `now` counts, so a replay at an earlier moment sees that moment.
    history = History(
        start=history.start,
        states=[(at, state) for at, state in history.states if at <= now],
        poster_posts=[at for at in history.poster_posts if at <= now],
        replies_sent=[at for at in history.replies_sent if at <= now],
    )
    clocks: list[Clock] = []
    stops = _state_spans(history, now, STOP_STATES)
    final_state = history.states[-1][1] if history.states else ""
    # A stop still in force (resolved, closed, canceled) ends the clocks; an earlier one was reopened.
    final_stop = stops[-1][0] if stops and final_state in STOP_STATES else None
    replies = sorted(history.replies_sent)
    if targets.first_response is not None:
        reply = next((r for r in replies if r >= history.start), None)
        clocks.append(_response_clock(FIRST_RESPONSE, 0, history.start, reply, final_stop, targets, now))
    if targets.next_response is not None and replies:
        cycle, answered_until = 0, replies[0]
        for posted in sorted(history.poster_posts):
            if posted <= answered_until:
                continue
            cycle += 1
            reply = next((r for r in replies if r >= posted), None)
            stop = max(final_stop, posted) if final_stop is not None else None
            clocks.append(_response_clock(NEXT_RESPONSE, cycle, posted, reply, stop, targets, now))
            if reply is None:
                break
            answered_until = reply
    if targets.resolution is not None:
        clocks.append(_resolution_clock(history, targets, stops, final_state, now))
    return clocks


def _state_spans(history: History, now: datetime, wanted: frozenset[str]) -> list[Interval]:
    """Intervals during which the incident was in one of `wanted`; an open one ends at `now`."""
    spans: list[Interval] = []
    entries = list(history.states)
    for i, (at, state) in enumerate(entries):
        if state not in wanted:
            continue
        until = entries[i + 1][0] if i + 1 < len(entries) else now
        begin = max(at, history.start)
        # The state in force now counts even when it began this very moment.
        if until > begin or i == len(entries) - 1:
            if spans and spans[-1][1] >= begin:
                spans[-1] = (spans[-1][0], max(spans[-1][1], until))
            else:
                spans.append((begin, until))
    return spans


def _response_clock(
    target: str,
    cycle: int,
    start: datetime,
    reply: datetime | None,
    final_stop: datetime | None,
    targets: Targets,
    now: datetime,
) -> Clock:
    minutes = targets.first_response if target == FIRST_RESPONSE else targets.next_response
    assert minutes is not None
    amount = timedelta(minutes=minutes)
    due = add_business_time(start, amount, targets.calendar)
    warn = add_business_time(start, amount * targets.warn_ratio, targets.calendar)
    if reply is not None:
        stopped, state = reply, (MET if due is not None and reply <= due else BREACHED)
    elif final_stop is not None:
        # Closed without an answer: a response that was already late stays a breach.
        stopped = final_stop
        state = BREACHED if due is not None and due < final_stop else CANCELED
    else:
        stopped, state = None, (BREACHED if due is not None and due <= now else RUNNING)
    end = stopped or now
    return Clock(
        target=target,
        cycle=cycle,
        started_at=start,
        target_time=amount,
        due_at=due,
        warn_at=warn,
        stopped_at=stopped,
        elapsed=business_time_between(start, end, targets.calendar),
        paused=timedelta(0),
        state=state,
    )


def _resolution_clock(
    history: History, targets: Targets, stops: list[Interval], final_state: str, now: datetime
) -> Clock:
    assert targets.resolution is not None
    amount = timedelta(minutes=targets.resolution)
    pause_spans = _state_spans(history, now, targets.pause_states)
    # Resolved and later reopened counts as paused; a stop still in force ends the clock.
    stopped = stops[-1][0] if stops and final_state in STOP_STATES else None
    past_stops = stops[:-1] if stopped is not None else stops
    pauses = _merge([*pause_spans, *past_stops])
    end = stopped or now
    # A pause still in force has no end yet: the due time is unknown until the clock runs again.
    open_pause = pauses[-1] if stopped is None and pauses and final_state in targets.pause_states else None
    running_pauses = pauses[:-1] if open_pause is not None else pauses
    elapsed = business_time_between(history.start, end, targets.calendar, pauses)
    paused = sum((min(b, end) - a for a, b in pauses if a < end), timedelta(0))
    if open_pause is not None:
        # Frozen: due only if the target was already reached before the pause began.
        due = add_business_time(history.start, amount, targets.calendar, running_pauses)
        due = due if due is not None and due <= open_pause[0] else None
        warn = add_business_time(history.start, amount * targets.warn_ratio, targets.calendar, running_pauses)
        warn = warn if warn is not None and warn <= open_pause[0] else None
    else:
        due = add_business_time(history.start, amount, targets.calendar, pauses)
        warn = add_business_time(history.start, amount * targets.warn_ratio, targets.calendar, pauses)
    if stopped is not None:
        if final_state == "canceled":
            state = BREACHED if due is not None and due < stopped else CANCELED
        else:
            state = MET if due is None or stopped <= due else BREACHED
    elif due is not None and due <= now:
        state = BREACHED
    else:
        state = PAUSED if open_pause is not None else RUNNING
    return Clock(
        target=RESOLUTION,
        cycle=0,
        started_at=history.start,
        target_time=amount,
        due_at=due,
        warn_at=warn,
        stopped_at=stopped,
        elapsed=elapsed,
        paused=paused,
        state=state,
    )


def _merge(spans: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def clock_start(posted_at: datetime, received_at: datetime) -> tuple[datetime, timedelta]:
    """When the clock starts for a post: its own time, unless that is after we received it (the
    network's clock or the poster's is wrong): then when we received it. Returns the start and the
    skew that was clamped (zero when none)."""
    if posted_at > received_at:
        return received_at, posted_at - received_at
    return posted_at, timedelta(0)
