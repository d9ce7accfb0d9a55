"""Celery application for the SocialITSM project."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from celery import Celery, beat, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")


class PersistentScheduler(beat.PersistentScheduler):
    """Celery's file-backed beat schedule, whose folder is created when missing (a fresh checkout)."""

    def setup_schedule(self) -> None:
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)  # type: ignore[attr-defined]
        super().setup_schedule()


app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


logger = logging.getLogger(__name__)


def _classifier_warm() -> None:
    from socialitsm import classify

    from .runtime import gc_tune

    started = time.perf_counter()
    classify.warm_up()
    logger.info("classifier loaded in %.1f s", time.perf_counter() - started)
    # What the worker holds for life is loaded now: the collector stops walking it.
    gc_tune()


@signals.worker_process_init.connect
def _warm_process(**kwargs: Any) -> None:
    """Each process of a prefork or solo pool loads the classifier before its first task."""
    _classifier_warm()


@signals.worker_ready.connect
def _warm_threads(sender: Any = None, **kwargs: Any) -> None:
    """A threads pool runs tasks in the worker's own process, which no process-init signal reaches."""
    pool = getattr(sender, "pool", None)
    if pool is not None and type(pool).__module__.endswith(".thread"):
        _classifier_warm()
