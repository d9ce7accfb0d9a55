"""Every queue a task is routed to has workers: in the compose file, the Procfile and the tests."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.conf import settings

from project.celery import app

ROOT = Path(__file__).resolve().parent.parent


def _routed() -> set[str]:
    return {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {settings.CELERY_TASK_DEFAULT_QUEUE}


def test_pipeline_tasks_have_queues_of_their_own():
    routes = settings.CELERY_TASK_ROUTES
    assert routes["socialitsm.tasks.posts_drain_task"]["queue"] == "classify"
    assert routes["socialitsm.tasks.posts_process_task"]["queue"] == "classify"
    assert routes["socialitsm.tasks.channel_poll_task"]["queue"] == "ingest"
    assert routes["socialitsm.tasks.reply_send_task"]["queue"] == "replies"
    assert routes["socialitsm.tasks.itsm_link_sync_task"]["queue"] == "itsm"
    assert app.amqp.router.route({}, "socialitsm.tasks.posts_drain_task")["queue"].name == "classify"


def test_compose_workers_consume_every_routed_queue():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    consumed: set[str] = set()
    for name, service in services.items():
        command = service.get("command") or []
        if name.startswith("worker") and "--queues" in command:
            consumed.update(command[command.index("--queues") + 1].split(","))
    assert _routed() <= consumed


def test_procfile_and_default_worker_queues_cover_every_routed_queue():
    procfile = (ROOT / "Procfile").read_text()
    line = next(line for line in procfile.splitlines() if line.startswith("worker:"))
    assert _routed() <= set(line.split("--queues ", 1)[1].split()[0].split(","))
    assert _routed() <= set(settings.SOCIALITSM_WORKER_QUEUES.split(","))
