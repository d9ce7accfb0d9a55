"""The hourly sentiment counts the reports read stay equal to counting the posts, whatever writes them."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from socialitsm.models import Post, PostSentimentHour, SlaCalendar
from socialitsm.selectors import (
    NEGATIVE_BELOW,
    POSITIVE_ABOVE,
    report_filter,
    sentiment_daily_counted,
    sla_report,
)
from socialitsm.services.incidents import incident_open_from_post, post_link
from socialitsm.services.retention import author_erase, posts_retention_sweep

from .factories import AuthorFactory, ChannelFactory, PostFactory, UserFactory, WatchRuleFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _counted_hours() -> dict[tuple[datetime, str], tuple[int, int, int]]:
    """Per hour and network: posts with a sentiment, negative ones, positive ones, from the posts."""
    counts: Counter = Counter()
    for posted_at, network, sentiment in Post.objects.filter(sentiment__isnull=False).values_list(
        "posted_at", "network", "sentiment"
    ):
        key = (posted_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0), network)
        counts[(*key, "rated")] += 1
        counts[(*key, "negative")] += sentiment < NEGATIVE_BELOW
        counts[(*key, "positive")] += sentiment > POSITIVE_ABOVE
    keys = {(hour, network) for hour, network, _ in counts}
    return {k: (counts[(*k, "rated")], counts[(*k, "negative")], counts[(*k, "positive")]) for k in keys}


def _kept_hours() -> dict[tuple[datetime, str], tuple[int, int, int]]:
    return {
        (hour.astimezone(UTC), network): (rated, negative, positive)
        for hour, network, rated, negative, positive in PostSentimentHour.objects.values_list(
            "hour", "network", "rated", "negative", "positive"
        )
        if (rated, negative, positive) != (0, 0, 0)
    }


def _post(channel, *, hours_old: float, sentiment: float | None, **fields) -> Post:
    at = NOW - timedelta(hours=hours_old)
    return PostFactory(
        rule=WatchRuleFactory(channel=channel), posted_at=at, ingested_at=at, sentiment=sentiment, **fields
    )


@time_machine.travel(NOW, tick=False)
def test_hourly_counts_follow_inserts_relabels_moves_erasure_and_retention():
    mastodon, reddit = ChannelFactory(network="mastodon", retention_days=30), ChannelFactory(network="reddit")
    maria = AuthorFactory(handle="@maria", name="Maria")
    posts = [
        _post(mastodon, hours_old=1.5, sentiment=-0.6, author=maria),
        _post(mastodon, hours_old=1.2, sentiment=0.4),
        _post(mastodon, hours_old=1.1, sentiment=0.0),
        _post(reddit, hours_old=1.4, sentiment=-0.2),
        _post(reddit, hours_old=30, sentiment=None),
        _post(mastodon, hours_old=24 * 40, sentiment=-0.9),  # past the channel's retention
        _post(mastodon, hours_old=24 * 41, sentiment=0.7, author=maria),
    ]
    Post.objects.bulk_create(
        [
            Post(
                rule=posts[0].rule,
                channel=mastodon,
                network="mastodon",
                external_id=f"bulk-{i}",
                author=maria,
                text="Outlook keeps crashing",
                posted_at=NOW - timedelta(minutes=17 * i),
                ingested_at=NOW,
                sentiment=(-0.5, 0.02, 0.3)[i % 3],
            )
            for i in range(12)
        ]
    )
    assert _kept_hours() == _counted_hours()
    assert sum(rated for rated, _, _ in _kept_hours().values()) == 18

    # The classifier speaks late, changes its mind, and an edit moves a post to another hour.
    Post.objects.filter(pk=posts[4].pk).update(sentiment=-0.3)
    Post.objects.filter(pk=posts[1].pk).update(sentiment=-0.4)
    Post.objects.filter(pk=posts[2].pk).update(sentiment=None)
    Post.objects.filter(pk=posts[3].pk).update(posted_at=NOW - timedelta(hours=5))
    assert _kept_hours() == _counted_hours()

    # Moves between incidents and routing writes leave the counts as they are, and still equal.
    first = incident_open_from_post(post=posts[0], rule=posts[0].rule, service=None, urgency=2)
    second = incident_open_from_post(post=posts[1], rule=posts[1].rule, service=None, urgency=2)
    post_link(post=posts[0], incident=second)
    assert first.pk != second.pk
    assert _kept_hours() == _counted_hours()

    author_erase(author=maria, actor=UserFactory())
    assert _kept_hours() == _counted_hours()
    posts_retention_sweep()
    assert Post.objects.filter(pk=posts[5].pk).count() == 0
    assert _kept_hours() == _counted_hours()

    Post.objects.filter(channel=reddit).delete()
    assert _kept_hours() == _counted_hours()


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
def test_the_reports_sentiment_chart_equals_counting_the_posts(zone):
    mastodon, x = ChannelFactory(network="mastodon"), ChannelFactory(network="x")
    for i in range(60):
        _post((mastodon, x)[i % 2], hours_old=i * 7.3, sentiment=((i * 37) % 21 - 10) / 10)
    calendar = SlaCalendar.objects.create(name=f"Desk {zone}", timezone=zone)
    for network in ("", "x"):
        scope = report_filter(
            start=date(2026, 11, 10),
            end=date(2026, 12, 1),
            group=None,
            network=network,
            today=NOW.date(),
            calendar=calendar,
        )
        chart = sla_report(scope=scope, now=NOW)["sentiment"]
        counted = sentiment_daily_counted(scope)
        assert [(row["date"], row["network"], row["negative"], row["positive"]) for row in chart] == [
            (day.isoformat(), network_, negative, positive) for day, network_, negative, positive in counted
        ]
        assert len(chart) >= 15
