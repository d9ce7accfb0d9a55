from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from socialitsm.models import Channel, Post

from ..factories import AuthorFactory, ChannelFactory, PostFactory, WatchRuleFactory

pytestmark = pytest.mark.django_db


def _busy_channel(posts: int, last_event_ago: timedelta) -> Channel:
    channel = ChannelFactory(slug="busy", credentials={"access_token": "never-shown"}, config={"connector": "fake"})
    rule = WatchRuleFactory(channel=channel)
    author = AuthorFactory()
    Post.objects.bulk_create(PostFactory.build_batch(posts, rule=rule, author=author))
    Channel.objects.filter(pk=channel.pk).update(last_event_at=timezone.now() - last_event_ago)
    return channel


def test_channel_health_is_listed_without_credentials(agent_api):
    channel = _busy_channel(3, timedelta(minutes=5))
    Channel.objects.filter(pk=channel.pk).update(
        quota_remaining=280, quota_limit=300, requests_made=12, last_error="HTTP 502", health="degraded"
    )
    response = agent_api.get("/api/v1/channels/")
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert "never-shown" not in response.content.decode()
    assert "credentials" not in row and "config" not in row
    assert {k: row[k] for k in ("slug", "health", "quiet", "recent_posts", "quota_remaining", "quota_limit")} == {
        "slug": "busy",
        "health": "degraded",
        "quiet": False,
        "recent_posts": 3,
        "quota_remaining": 280,
        "quota_limit": 300,
    }
    assert (row["requests_made"], row["last_error"], row["cost_used"]) == (12, "HTTP 502", "0.0000")
    assert row["rejected_posts"] == 0
    assert row["reply_limit"] == {"max_length": 500, "unit": "characters", "public": True, "direct": True}


@pytest.mark.parametrize(
    ("posts", "silence", "quiet"),
    [
        (50, timedelta(hours=35), True),  # usual gap 3h22m; 10 gaps = 33h40m
        (50, timedelta(hours=33), False),
        (49, timedelta(days=5), False),  # not busy: silence is normal
        (500, timedelta(minutes=202), True),  # usual gap 20m10s; 10 gaps = 201m40s
        (500, timedelta(minutes=201), False),
    ],
)
def test_busy_channel_that_goes_quiet_is_flagged(agent_api, posts, silence, quiet):
    _busy_channel(posts, silence)
    row = agent_api.get("/api/v1/channels/busy/").json()
    assert (row["recent_posts"], row["quiet"]) == (posts, quiet)


@pytest.mark.parametrize(("silence", "quiet"), [(timedelta(minutes=31), True), (timedelta(minutes=29), False)])
def test_quiet_flag_waits_at_least_the_floor(agent_api, settings, silence, quiet):
    settings.SOCIALITSM_QUIET_GAPS = 1  # 500 posts a week: 1 gap is 20 minutes, under the floor
    _busy_channel(500, silence)
    assert agent_api.get("/api/v1/channels/busy/").json()["quiet"] is quiet


def test_old_posts_do_not_make_a_channel_busy(agent_api):
    channel = _busy_channel(60, timedelta(days=9))
    Post.objects.filter(channel=channel).update(ingested_at=timezone.now() - timedelta(days=8))
    with time_machine.travel(timezone.now(), tick=False):
        row = agent_api.get("/api/v1/channels/busy/").json()
    assert (row["recent_posts"], row["quiet"]) == (0, False)


def test_channels_need_an_agent(api, outsider):
    ChannelFactory()
    assert api.get("/api/v1/channels/").status_code in (401, 403)
    api.force_authenticate(outsider)
    assert api.get("/api/v1/channels/").status_code == 403


def test_posts_set_aside_lately_are_counted_on_the_channel(agent_api):
    from socialitsm.models import IngestRejection

    channel = ChannelFactory(slug="refusing")
    IngestRejection.objects.create(channel=channel, network="replay", external_id="p-1", error="DataError")
    old = IngestRejection.objects.create(channel=channel, network="replay", external_id="p-0", error="DataError")
    IngestRejection.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    ChannelFactory(slug="fine")

    rows = agent_api.get("/api/v1/channels/").json()["results"]

    assert {row["slug"]: row["rejected_posts"] for row in rows} == {"fine": 0, "refusing": 1}
