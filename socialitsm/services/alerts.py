"""Alerts on the listening itself: a channel gone quiet, a stream that keeps falling back to
polling, a token about to expire or refused, a quota nearly spent.

`channel_alerts_check` runs every minute from beat. Each problem is one `ChannelAlert` row per
channel and kind; the `channel_alert` signal is sent once when a problem starts and once when it
clears, after the change commits. A conditional update is the claim, so two sweeps running at
once never announce one change twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from socialitsm.conf import conf
from socialitsm.models import Channel, ChannelAlert, Heartbeat
from socialitsm.signals import channel_alert

logger = logging.getLogger(__name__)

Kind = ChannelAlert.Kind

# The heartbeat the alerts sweep writes: proof that beat schedules and a worker runs.
WORKER_HEARTBEAT = "worker"


def stream_fallback_changes(now: datetime) -> dict[str, Any]:
    """Channel field updates counting one more fall back to polling: counted within a window
    of STREAM_FALLBACK_WINDOW_MINUTES that starts again at the first fall back after it ends."""
    window_start = now - timedelta(minutes=conf.STREAM_FALLBACK_WINDOW_MINUTES)
    in_window = When(stream_fallbacks_since__gte=window_start, then=F("stream_fallbacks") + 1)
    return {
        "stream_fallbacks": Case(in_window, default=Value(1)),
        "stream_fallbacks_since": Case(
            When(stream_fallbacks_since__gte=window_start, then=F("stream_fallbacks_since")), default=Value(now)
        ),
    }


def _expiry(credentials: dict[str, Any]) -> datetime | None:
    value = credentials.get("expires_at")
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def channel_problems(channel: Channel, *, recent_posts: int, now: datetime) -> dict[str, str]:
    """What is wrong with `channel`'s listening now: alert kind -> what to tell a lead."""
    problems: dict[str, str] = {}
    if channel.is_quiet(recent_posts=recent_posts, now=now):
        assert channel.last_event_at is not None  # is_quiet says so
        minutes = int((now - channel.last_event_at).total_seconds() // 60)
        problems[Kind.QUIET] = f"no post for {minutes} minutes, far longer than its usual gap between posts"
    window_start = now - timedelta(minutes=conf.STREAM_FALLBACK_WINDOW_MINUTES)
    if (
        channel.listen_mode == Channel.ListenMode.STREAM
        and channel.stream_fallbacks >= conf.STREAM_FALLBACK_ALERTS
        and channel.stream_fallbacks_since is not None
        and channel.stream_fallbacks_since >= window_start
    ):
        problems[Kind.STREAM_FALLBACK] = (
            f"the stream fell back to polling {channel.stream_fallbacks} times "
            f"in {conf.STREAM_FALLBACK_WINDOW_MINUTES} minutes"
        )
    if channel.health == Channel.Health.FAILING and channel.last_error_status == 401:
        problems[Kind.TOKEN_REVOKED] = "the network refused the channel's credentials: enter new ones"
    try:
        expires_at = _expiry(channel.credentials)
    except ImproperlyConfigured:
        problems[Kind.TOKEN_REVOKED] = "the stored credentials cannot be decrypted with SOCIALITSM_ENCRYPTION_KEYS"
        expires_at = None
    if expires_at is not None and expires_at <= now + timedelta(days=conf.TOKEN_EXPIRY_WARN_DAYS):
        when = f"{expires_at:%Y-%m-%d %H:%M} UTC"
        problems[Kind.TOKEN_EXPIRING] = (
            f"the token expired on {when}" if expires_at <= now else f"the token expires on {when}"
        )
    limit, remaining = channel.quota_limit, channel.quota_remaining
    resets_later = channel.quota_reset_at is None or channel.quota_reset_at > now
    if limit and remaining is not None and resets_later and remaining < limit * conf.QUOTA_LOW_RATIO:
        reset = f", until {channel.quota_reset_at:%H:%M} UTC" if channel.quota_reset_at else ""
        problems[Kind.QUOTA_LOW] = f"{remaining} of {limit} calls left{reset}"
    return problems


@dataclass
class AlertChanges:
    raised: list[tuple[int, str]]
    cleared: list[tuple[int, str]]


def channel_alerts_check(*, now: datetime | None = None) -> AlertChanges:
    """Raise the alerts of problems that started and clear those that ended since the last
    sweep, announcing each change once; also writes the worker's heartbeat."""
    from socialitsm.selectors import channel_list

    now = now or timezone.now()
    heartbeat_record(WORKER_HEARTBEAT, now=now)
    changes = AlertChanges(raised=[], cleared=[])
    active = {(a.channel_id, a.kind): a for a in ChannelAlert.objects.filter(active=True)}
    seen: set[tuple[int, str]] = set()
    for channel in channel_list().filter(enabled=True).order_by("pk"):
        # `recent_posts` is annotated by channel_list.
        recent_posts = cast(Any, channel).recent_posts
        for kind, message in channel_problems(channel, recent_posts=recent_posts, now=now).items():
            seen.add((channel.pk, kind))
            if (channel.pk, kind) in active:
                ChannelAlert.objects.filter(pk=active[(channel.pk, kind)].pk).update(message=message)
            elif _raise(channel, kind, message, now):
                changes.raised.append((channel.pk, kind))
    for key, alert in active.items():
        if key not in seen and _clear(alert, now):
            changes.cleared.append(key)
    return changes


def _raise(channel: Channel, kind: str, message: str, now: datetime) -> bool:
    won = ChannelAlert.objects.filter(channel=channel, kind=kind, active=False).update(
        active=True, message=message, raised_at=now, cleared_at=None
    )
    if not won:
        try:
            with transaction.atomic():
                ChannelAlert.objects.create(channel=channel, kind=kind, message=message, raised_at=now)
        except IntegrityError:
            return False  # another sweep raised it first
    logger.warning("channel %s: %s alert raised: %s", channel.slug, kind, message)
    _announce(channel, kind, message, raised=True)
    return True


def _clear(alert: ChannelAlert, now: datetime) -> bool:
    if not ChannelAlert.objects.filter(pk=alert.pk, active=True).update(active=False, cleared_at=now):
        return False
    channel = alert.channel
    logger.info("channel %s: %s alert cleared", channel.slug, alert.kind)
    _announce(channel, alert.kind, f"cleared: {alert.message}", raised=False)
    return True


def _announce(channel: Channel, kind: str, message: str, *, raised: bool) -> None:
    transaction.on_commit(
        lambda: channel_alert.send_robust(
            sender=ChannelAlert, channel=channel, kind=kind, message=message, raised=raised
        )
    )


def heartbeat_record(name: str, *, now: datetime | None = None) -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"beat_at": now or timezone.now()})


def heartbeat_age(name: str, *, now: datetime | None = None) -> timedelta | None:
    """How long ago `name` last beat; None if it never did."""
    beat_at = Heartbeat.objects.filter(name=name).values_list("beat_at", flat=True).first()
    return None if beat_at is None else (now or timezone.now()) - beat_at
