"""What a host project's Celery app needs to run SocialITSM's periodic work.

The tasks themselves are `@shared_task`s in socialitsm.tasks, found by the host's
`app.autodiscover_tasks()`. Beat needs a schedule and, optionally, routes that keep calls to
the networks and suites on their own queue:

    from socialitsm.celery import beat_schedule, task_routes

    CELERY_BEAT_SCHEDULE = {**beat_schedule(), **your_own_entries}
    CELERY_TASK_ROUTES = {**task_routes(), **your_own_routes}   # optional: queue "io"

Nothing here imports Django models, so settings modules may import it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

IO_QUEUE = "io"

# Tasks that call a network or an ITSM suite: a slow remote must not hold up routing and SLAs.
IO_TASKS = (
    "socialitsm.tasks.channel_poll_task",
    "socialitsm.tasks.channel_posts_recheck_task",
    "socialitsm.tasks.reply_send_task",
    "socialitsm.tasks.status_post_send_task",
    "socialitsm.tasks.itsm_link_sync_task",
    "socialitsm.tasks.itsm_link_pull_task",
    "socialitsm.tasks.itsm_connection_poll_task",
)


def beat_schedule(
    *,
    poll_seconds: int = 5,
    itsm_seconds: int = 5,
    reply_seconds: int = 10,
    recover_seconds: int = 60,
    sla_seconds: int = 60,
    recheck_seconds: int = 300,
) -> dict[str, dict[str, Any]]:
    """SocialITSM's periodic tasks, as Celery's beat_schedule setting takes them."""

    def every(task: str, seconds: int) -> dict[str, Any]:
        if seconds < 1:
            raise ValueError(f"{task}: the interval must be at least 1 second")
        return {"task": f"socialitsm.tasks.{task}", "schedule": timedelta(seconds=seconds)}

    return {
        "socialitsm-poll-due-channels": every("channels_poll_due_task", poll_seconds),
        "socialitsm-itsm-sync": every("itsm_tick_task", itsm_seconds),
        "socialitsm-replies-due": every("replies_send_due_task", reply_seconds),
        "socialitsm-status-posts-due": every("status_posts_send_due_task", reply_seconds),
        "socialitsm-recover-stale-work": every("work_recover_task", recover_seconds),
        "socialitsm-sla-sweep": every("sla_sweep_task", sla_seconds),
        # Asks the networks whether the posts of live incidents still exist (deleted upstream?).
        "socialitsm-recheck-posts": every("channels_recheck_due_task", recheck_seconds),
    }


def task_routes(queue: str = IO_QUEUE) -> dict[str, dict[str, str]]:
    """Routes for Celery's task_routes setting: the outbound tasks on `queue`."""
    return {task: {"queue": queue} for task in IO_TASKS}
