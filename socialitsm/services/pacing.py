"""Send pacing: broadcast replies leave each channel no faster than its network allows.

Networks rate-limit posting and treat a burst of near-identical replies as spam, so the replies
of a broadcast are given send times (`Reply.retry_after`) one interval apart per channel, and
the beat sweep (`replies_send_due`) sends each when its time comes. The schedule lives in the
database, where every worker sees it; slots are handed out with the channel's row locked."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import F, Max, Min, Q

from socialitsm.conf import DEFAULTS, conf
from socialitsm.models import Channel, Reply

PACE_CONFIG_KEY = "broadcast_per_minute"


def channel_pace_per_minute(channel: Channel) -> float:
    """Broadcast replies per minute on `channel`: its config "broadcast_per_minute", else the
    SOCIALITSM_BROADCAST_PER_MINUTE figure of its network, else that setting's "default"."""
    config = channel.config if isinstance(channel.config, dict) else {}
    table = {**DEFAULTS["BROADCAST_PER_MINUTE"], **conf.BROADCAST_PER_MINUTE}
    for value in (config.get(PACE_CONFIG_KEY), table.get(channel.network), table.get("default"), 6):
        try:
            rate = float(str(value))
        except ValueError:
            continue
        if rate > 0:
            return rate
    return 6.0


def channel_pace_interval(channel: Channel) -> timedelta:
    """The least time between two broadcast replies on `channel`."""
    return timedelta(seconds=60.0 / channel_pace_per_minute(channel))


def channel_next_slot(channel: Channel, *, not_before: datetime, exclude_reply: int | None = None) -> datetime:
    """The earliest time at or after `not_before` one more broadcast reply may leave `channel`:
    an interval after the latest one scheduled or sent. The caller holds the channel's row lock
    (`select_for_update`) until the reply it schedules is saved, so two workers never take the
    same slot."""
    interval = channel_pace_interval(channel)
    paced = Reply.objects.filter(channel=channel, broadcast__isnull=False)
    if exclude_reply is not None:
        paced = paced.exclude(pk=exclude_reply)
    latest = paced.aggregate(
        scheduled=Max("retry_after", filter=Q(status=Reply.Status.QUEUED)),
        sent=Max("sent_at"),
        claimed=Max("claimed_at", filter=Q(status=Reply.Status.SENDING)),
    )
    times = [t for t in latest.values() if t is not None]
    if not times:
        return not_before
    return max(not_before, max(times) + interval)


def channel_queue_hold(channel: Channel, *, until: datetime) -> int:
    """The network told us to wait until `until` (a rate limit): move the broadcast replies
    queued on `channel` so that the first goes no earlier, keeping their order and spacing,
    instead of each running into the same limit. Returns how many moved. The caller holds the
    channel's row lock."""
    queued = Reply.objects.filter(
        channel=channel, broadcast__isnull=False, status=Reply.Status.QUEUED, retry_after__isnull=False
    )
    earliest = queued.aggregate(first=Min("retry_after"))["first"]
    if earliest is None or earliest >= until:
        return 0
    return queued.update(retry_after=F("retry_after") + (until - earliest), claimed_at=None)
