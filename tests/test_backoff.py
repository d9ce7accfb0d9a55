from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from socialitsm import backoff
from socialitsm.backoff import backoff_delay, next_attempt_at

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [(0, 30), (1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 900), (7, 900), (30_000, 900)],
)
def test_delay_doubles_up_to_the_cap(attempts, delay):
    assert backoff_delay(attempts, cap=900) == delay


@pytest.mark.parametrize(("pick", "expected"), [(min, 120), (max, 240)])
def test_jitter_picks_in_the_upper_half(monkeypatch, pick, expected):
    monkeypatch.setattr(backoff.random, "uniform", lambda low, high: pick(low, high))
    assert backoff_delay(4, cap=900, jitter=True) == expected


def test_jittered_delays_stay_within_their_step():
    delays = {backoff_delay(3, cap=900, jitter=True) for _ in range(200)}
    assert all(60 <= d <= 120 for d in delays)
    assert len(delays) > 1


@pytest.mark.parametrize(
    ("retry_at", "expected"),
    [
        (None, NOW + timedelta(seconds=60)),
        (NOW + timedelta(hours=3), NOW + timedelta(hours=3)),
        (NOW - timedelta(minutes=1), NOW),
    ],
)
def test_next_attempt_honours_the_time_the_remote_named(retry_at, expected):
    assert next_attempt_at(2, now=NOW, cap=900, retry_at=retry_at) == expected
