"""When to try again after a transient failure: exponential backoff, shared by the reply outbox
and the ITSM sync. Pure time maths, no ORM."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

BASE_SECONDS = 30.0
# 30 s * 2**20 is about a year: past any cap, and small enough to stay an exact float.
MAX_DOUBLINGS = 20


def backoff_delay(attempts: int, *, cap: float, base: float = BASE_SECONDS, jitter: bool = False) -> float:
    """Seconds to wait after the `attempts`-th failure in a row: base, twice base, four times
    base, ... never more than `cap`. With `jitter`, a uniform pick in the upper half of that, so
    the replies that failed together during an outage do not all come back at the same second."""
    ceiling = min(float(cap), base * 2 ** min(MAX_DOUBLINGS, max(0, attempts - 1)))
    if not jitter:
        return ceiling
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - spreading load, not security


def next_attempt_at(
    attempts: int, *, now: datetime, cap: float, retry_at: datetime | None = None, jitter: bool = False
) -> datetime:
    """The time of the next attempt: when the remote said to come back, if it said (and not
    before `now`), else `now` plus the backoff for `attempts` failures."""
    if retry_at is not None:
        return max(retry_at, now)
    return now + timedelta(seconds=backoff_delay(attempts, cap=cap, jitter=jitter))
