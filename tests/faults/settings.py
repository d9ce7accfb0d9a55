"""Settings for the fault tests' own worker, beat and stream processes: the project's settings
(from the environment) with short leases and ticks, so recovery happens within seconds."""

from datetime import timedelta

from project.settings import *  # noqa: F403
from project.settings import CELERY_BEAT_SCHEDULE

SOCIALITSM_STALE_AFTER_SECONDS = 4
SOCIALITSM_SEND_LEASE_SECONDS = 3
SOCIALITSM_ITSM_LEASE_SECONDS = 3
SOCIALITSM_ITSM_SETTLE_SECONDS = 1
CELERY_BEAT_SCHEDULE = {
    name: {**entry, "schedule": timedelta(seconds=2 if name == "socialitsm-recover-stale-work" else 1)}
    for name, entry in CELERY_BEAT_SCHEDULE.items()
    if name != "socialitsm-sla-sweep"
}
