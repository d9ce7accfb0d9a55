"""What a host project's Celery app needs to run SocialITSM's periodic work.

The tasks themselves are `@shared_task`s in socialitsm.tasks, found by the host's
`app.autodiscover_tasks()`. Beat needs a schedule and, optionally, routes that keep calls to
the networks and suites on their own queue:

    from socialitsm.celery import beat_schedule, task_routes

    CELERY_BEAT_SCHEDULE = {**beat_schedule(), **your_own_entries}
    CELERY_TASK_ROUTES = {**task_routes(), **your_own_routes}   # optional; workers consume QUEUES

Nothing here imports Django models, so settings modules may import it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

# One queue per kind of work, so each can be given workers of its own when one machine is not
# enough (README, "More workers"): ingest (reading networks), classify (classification and
# routing), replies (posting to networks, e-mail and chat messages), itsm (calls to ITSM suites);
# "default" takes the beat's sweeps and ticks. "io" is the former queue of outbound calls:
# workers still consume it so that tasks queued before an upgrade run.
QUEUES = ("default", "io", "ingest", "classify", "replies", "itsm")

ROUTES = {
    "socialitsm.tasks.channel_poll_task": "ingest",
    "socialitsm.tasks.channel_posts_recheck_task": "ingest",
    "socialitsm.tasks.posts_process_task": "classify",
    "socialitsm.tasks.posts_drain_task": "classify",
    "socialitsm.tasks.reply_send_task": "replies",
    "socialitsm.tasks.status_post_send_task": "replies",
    "socialitsm.tasks.notification_email_task": "replies",
    "socialitsm.tasks.chat_message_send_task": "replies",
    "socialitsm.tasks.itsm_link_sync_task": "itsm",
    "socialitsm.tasks.itsm_link_pull_task": "itsm",
    "socialitsm.tasks.itsm_connection_poll_task": "itsm",
}


def beat_schedule(
    *,
    poll_seconds: int = 5,
    itsm_seconds: int = 5,
    reply_seconds: int = 10,
    recover_seconds: int = 60,
    sla_seconds: int = 60,
    recheck_seconds: int = 300,
    retention_seconds: int = 3600,
    alerts_seconds: int = 60,
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
        # Folds the rows of incidents' state changes the queue's counts add up, one per state.
        "socialitsm-incident-state-tally": every("incident_state_tally_compact_task", recover_seconds),
        # Channels' retention periods: older posts lose their words (or go), in small batches.
        "socialitsm-retention": every("posts_retention_task", retention_seconds),
        # Raises and clears the alerts on channels' listening, and writes the worker's heartbeat.
        "socialitsm-channel-alerts": every("channel_alerts_check_task", alerts_seconds),
        # Asks the networks whether the posts of live incidents still exist (deleted upstream?).
        "socialitsm-recheck-posts": every("channels_recheck_due_task", recheck_seconds),
    }


def task_routes(single_queue: str | None = None) -> dict[str, dict[str, str]]:
    """Routes for Celery's task_routes setting: each kind of work on its own queue, or all of
    them on `single_queue` for a host that runs one queue."""
    return {task: {"queue": single_queue or queue} for task, queue in ROUTES.items()}
