"""The garbage collector tuning of the long-running processes (project/runtime.py, gunicorn.conf.py)."""

from __future__ import annotations

import gc
import runpy
import weakref
from pathlib import Path

import pytest

from project import runtime

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def collector():
    """The test process's collector, put back as it was."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_gc_tune_freezes_what_the_process_holds_and_raises_the_young_threshold(collector, monkeypatch):
    monkeypatch.delenv("GC_TUNING", raising=False)
    held = {"kept": [object() for _ in range(10)]}  # a container the collector tracks

    assert runtime.gc_tune() is True

    assert gc.get_freeze_count() > 0
    assert gc.is_tracked(held)
    assert all(o is not held for o in gc.get_objects())  # frozen: out of every generation
    assert gc.get_threshold() == runtime.GC_THRESHOLD
    assert runtime.GC_THRESHOLD[0] > 700


def test_the_collector_still_frees_cycles_made_afterwards_by_itself(collector, monkeypatch):
    monkeypatch.delenv("GC_TUNING", raising=False)
    runtime.gc_tune()

    class Node:
        pass

    node = Node()
    node.self = node  # type: ignore[attr-defined]
    gone = weakref.ref(node)
    del node
    # No explicit collect: enough new containers trigger the young collection by themselves.
    kept = [[] for _ in range(3 * runtime.GC_THRESHOLD[0])]

    assert gone() is None
    assert len(kept) == 3 * runtime.GC_THRESHOLD[0]


@pytest.mark.parametrize("value", ["0", "off", "false"])
def test_gc_tuning_off_leaves_the_collector_as_python_sets_it(collector, monkeypatch, value):
    monkeypatch.setenv("GC_TUNING", value)
    before = gc.get_threshold(), gc.get_freeze_count()

    assert runtime.gc_tune() is False

    assert (gc.get_threshold(), gc.get_freeze_count()) == before


def test_each_gunicorn_worker_loads_the_url_patterns_then_tunes_the_collector(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(runtime, "gc_tune", lambda: calls.append("tuned") or True)
    import django.urls

    resolver = django.urls.get_resolver()
    monkeypatch.setattr(django.urls, "get_resolver", lambda: calls.append("urls") or resolver)
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))

    hooks["post_worker_init"](None)

    assert calls == ["urls", "tuned"]
