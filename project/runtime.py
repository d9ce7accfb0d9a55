"""Python's garbage collector tuned for the long-running processes: Celery workers and gunicorn workers.

A worker holds some 120,000 objects it keeps for life (Django, DRF, the classifier's tables),
and the collector walks them all in each full collection: in a routing worker that was 8-9% of
its CPU (one full pass over them every few batches, plus a young collection every 700
allocations), and in a web worker a pause of 100-200 ms in about one request in thirty. Once a
process has loaded what it keeps, `gc_tune()` moves those objects to the collector's permanent
generation (`gc.freeze()`, as the Python documentation advises for servers) and collects young
objects every GC_THRESHOLD[0] allocations instead of 700. Cyclic garbage is still collected,
only later; objects freed by their reference count (most) are freed at once as before.

GC_TUNING=0 in the environment leaves the collector as Python sets it.
"""

from __future__ import annotations

import gc
import os

GC_THRESHOLD = (10_000, 10, 10)


def gc_tune() -> bool:
    """Freeze what the process holds now and raise the young generation's threshold; call once
    the process has loaded its code and models. Returns False when GC_TUNING=0 turned it off."""
    if os.environ.get("GC_TUNING", "1").strip().lower() in {"0", "false", "no", "off"}:
        return False
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    return True
