"""Celery application for the SocialITSM project."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery, beat

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")


class PersistentScheduler(beat.PersistentScheduler):
    """Celery's file-backed beat schedule, whose folder is created when missing (a fresh checkout)."""

    def setup_schedule(self) -> None:
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)  # type: ignore[attr-defined]
        super().setup_schedule()


app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
