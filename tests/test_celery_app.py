"""The worker loads the classifier when its processes start, not in their first task, then
tunes the garbage collector for what it holds."""

from __future__ import annotations

import pytest
from celery import signals
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.concurrency.thread import TaskPool as ThreadPool

from project import runtime
from socialitsm import classify


class _Consumer:
    def __init__(self, pool) -> None:
        self.pool = pool


@pytest.fixture
def loads(monkeypatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(classify, "warm_up", lambda: calls.append(1))
    # The collector of the test process itself stays as it is.
    monkeypatch.setattr(runtime, "gc_tune", lambda: calls.append(2) or True)
    return calls


def test_each_pool_process_loads_the_classifier_as_it_starts_then_tunes_the_collector(loads):
    signals.worker_process_init.send(sender=None)
    assert loads == [1, 2]


@pytest.mark.parametrize(("pool", "expected"), [(ThreadPool, [1, 2]), (PreforkPool, [])])
def test_a_threads_pool_loads_it_in_the_worker_process(loads, pool, expected):
    # A prefork pool's processes load it themselves; its parent never runs a task.
    signals.worker_ready.send(sender=_Consumer(pool.__new__(pool)))
    assert loads == expected


def test_warm_up_classifies_without_a_catalogue():
    classify.warm_up()
    assert classify.verdict("VPN down again").score > 0
