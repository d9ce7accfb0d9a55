from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Channel, ChannelAlert, Heartbeat
from socialitsm.services.alerts import channel_alerts_check, stream_fallback_changes
from socialitsm.services.channels import channel_error_record
from socialitsm.signals import channel_alert
from tests.factories import ChannelFactory, PostFactory, WatchRuleFactory

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture
def announced():
    seen: list[tuple[str, str, bool]] = []

    def receiver(sender, channel, kind, message, raised, **kwargs):
        seen.append((channel.slug, kind, raised))

    channel_alert.connect(receiver, weak=False, dispatch_uid="test-alerts")
    yield seen
    channel_alert.disconnect(dispatch_uid="test-alerts")


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """The sweep, with its after-commit announcements run."""

    def run(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return channel_alerts_check(**kwargs)

    return run


def _busy_channel(settings, last_post: datetime) -> Channel:
    settings.SOCIALITSM_QUIET_BUSY_POSTS = 3
    settings.SOCIALITSM_QUIET_WINDOW_HOURS = 24
    settings.SOCIALITSM_QUIET_GAPS = 2
    settings.SOCIALITSM_QUIET_MIN_MINUTES = 30
    rule = WatchRuleFactory(channel=ChannelFactory(slug="busy"))
    for _ in range(6):
        PostFactory(rule=rule, ingested_at=NOW - timedelta(hours=1))
    Channel.objects.filter(pk=rule.channel_id).update(last_event_at=last_post)
    return rule.channel


@time_machine.travel(NOW, tick=False)
def test_quiet_channel_raises_once_and_clears_once(settings, announced, sweep):
    # 6 posts a day: a usual gap of 4 h; quiet after 2 gaps (8 h).
    channel = _busy_channel(settings, NOW - timedelta(hours=9))
    assert sweep().raised == [(channel.pk, "quiet")]
    assert sweep().raised == []
    alert = ChannelAlert.objects.get()
    assert (alert.kind, alert.active, alert.message) == (
        "quiet",
        True,
        "no post for 540 minutes, far longer than its usual gap between posts",
    )
    Channel.objects.filter(pk=channel.pk).update(last_event_at=NOW - timedelta(minutes=5))
    assert sweep().cleared == [(channel.pk, "quiet")]
    assert sweep().cleared == []
    assert announced == [("busy", "quiet", True), ("busy", "quiet", False)]
    assert ChannelAlert.objects.get().cleared_at == NOW


@time_machine.travel(NOW, tick=False)
def test_calm_channel_raises_nothing(settings, announced, sweep):
    _busy_channel(settings, NOW - timedelta(hours=7))
    assert sweep().raised == []
    assert announced == []
    assert Heartbeat.objects.get(name="worker").beat_at == NOW


@time_machine.travel(NOW, tick=False)
def test_refused_credentials_raise_token_revoked(announced, sweep):
    channel = ChannelFactory(slug="refused")
    channel_error_record(channel=channel, error=PermanentError("refused", status=401))
    channel.refresh_from_db()
    assert (channel.health, channel.last_error_status) == ("failing", 401)
    sweep()
    assert announced == [("refused", "token_revoked", True)]
    Channel.objects.filter(pk=channel.pk).update(health=Channel.Health.OK)
    sweep()
    assert announced[-1] == ("refused", "token_revoked", False)


@time_machine.travel(NOW, tick=False)
def test_other_refusals_are_not_a_revoked_token(announced, sweep):
    channel = ChannelFactory()
    channel_error_record(channel=channel, error=PermanentError("not found", status=404))
    sweep()
    assert announced == []


@pytest.mark.parametrize(
    ("expires_at", "message"),
    [
        ("2026-12-05T00:00:00+00:00", "the token expires on 2026-12-05 00:00 UTC"),
        ("2026-11-30T10:00:00", "the token expired on 2026-11-30 10:00 UTC"),
    ],
)
@time_machine.travel(NOW, tick=False)
def test_token_close_to_expiry_raises(expires_at, message, sweep):
    ChannelFactory(credentials={"access_token": "t", "expires_at": expires_at})
    sweep()
    assert list(ChannelAlert.objects.values_list("kind", "message")) == [("token_expiring", message)]


@time_machine.travel(NOW, tick=False)
def test_token_far_from_expiry_raises_nothing(sweep):
    ChannelFactory(credentials={"access_token": "t", "expires_at": "2027-06-01T00:00:00+00:00"})
    sweep()
    assert not ChannelAlert.objects.exists()


@pytest.mark.parametrize(("remaining", "reset_in", "alerts"), [(9, 10, ["quota_low"]), (10, 10, []), (1, -1, [])])
@time_machine.travel(NOW, tick=False)
def test_quota_nearly_spent_raises_until_it_resets(remaining, reset_in, alerts, sweep):
    ChannelFactory(quota_limit=100, quota_remaining=remaining, quota_reset_at=NOW + timedelta(minutes=reset_in))
    sweep()
    assert list(ChannelAlert.objects.filter(active=True).values_list("kind", flat=True)) == alerts


@time_machine.travel(NOW, tick=False)
def test_stream_falling_back_again_and_again_raises(settings, announced, sweep):
    settings.SOCIALITSM_STREAM_FALLBACK_ALERTS = 3
    channel = ChannelFactory(slug="flaky", listen_mode=Channel.ListenMode.STREAM)
    for _ in range(2):
        Channel.objects.filter(pk=channel.pk).update(**stream_fallback_changes(NOW))
    sweep()
    assert announced == []
    Channel.objects.filter(pk=channel.pk).update(**stream_fallback_changes(NOW))
    sweep()
    assert announced == [("flaky", "stream_fallback", True)]
    # An hour later the window has passed: the next fall back starts counting anew.
    later = NOW + timedelta(minutes=61)
    Channel.objects.filter(pk=channel.pk).update(**stream_fallback_changes(later))
    channel.refresh_from_db()
    assert (channel.stream_fallbacks, channel.stream_fallbacks_since) == (1, later)
    sweep(now=later)
    assert announced[-1] == ("flaky", "stream_fallback", False)


@time_machine.travel(NOW, tick=False)
def test_rate_limit_is_counted_as_a_wait():
    from socialitsm import metrics

    before = metrics.RATE_LIMIT_WAITS.labels(network="replay")._value.get()
    channel = ChannelFactory()
    channel_error_record(
        channel=channel, error=TransientError("slow down", status=429, retry_at=NOW + timedelta(seconds=30))
    )
    assert metrics.RATE_LIMIT_WAITS.labels(network="replay")._value.get() == before + 1


def test_alerts_task_runs_the_sweep():
    from socialitsm.tasks import channel_alerts_check_task

    channel_alerts_check_task.delay()
    assert Heartbeat.objects.filter(name="worker").count() == 1


def test_stream_going_down_counts_a_fall_back_and_the_refusal_status():
    from socialitsm.services.streaming import _channel_stream_down

    channel = ChannelFactory(listen_mode=Channel.ListenMode.STREAM)
    for _ in range(2):
        _channel_stream_down(channel, "closed", permanent=False, retry_at=None, now=NOW)
    _channel_stream_down(channel, "refused", permanent=True, retry_at=None, now=NOW, status=401)
    channel.refresh_from_db()
    assert (channel.stream_fallbacks, channel.stream_fallbacks_since) == (3, NOW)
    assert (channel.health, channel.last_error_status, channel.last_error) == ("failing", 401, "stream: refused")
