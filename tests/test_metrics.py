from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis
import time_machine
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from socialitsm import metrics
from socialitsm.models import Channel, ChannelAlert, IncidentEvent, ItsmConnection, ItsmLink, Reply
from tests.factories import ChannelFactory, IncidentFactory, ReplyFactory

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def _samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_metrics_refused_without_token_or_allowed_address(client, settings):
    settings.SOCIALITSM_METRICS_TOKEN = ""
    settings.SOCIALITSM_METRICS_ALLOW = []
    assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize(
    ("header", "status"), [("Bearer s3cret-scrape-token", 200), ("Bearer wrong", 404), ("s3cret-scrape-token", 404)]
)
def test_metrics_token(client, settings, header, status):
    settings.SOCIALITSM_METRICS_TOKEN = "s3cret-scrape-token"
    assert client.get("/metrics", HTTP_AUTHORIZATION=header).status_code == status


@pytest.mark.parametrize(("allow", "status"), [(["127.0.0.0/8"], 200), (["10.0.0.0/8", "bad"], 404)])
def test_metrics_allow_list(client, settings, allow, status):
    settings.SOCIALITSM_METRICS_ALLOW = allow
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == status


@time_machine.travel(NOW, tick=False)
def test_metrics_read_the_database_at_scrape_time(client, settings):
    settings.SOCIALITSM_METRICS_TOKEN = "t" * 32
    mastodon = ChannelFactory(slug="masto", network="mastodon", quota_remaining=7)
    Channel.objects.filter(pk=mastodon.pk).update(last_event_at=NOW - timedelta(seconds=90))
    ReplyFactory.create_batch(2, channel=mastodon, post__rule__channel=mastodon, status=Reply.Status.SENT)
    ReplyFactory(channel=mastodon, post__rule__channel=mastodon, status=Reply.Status.FAILED)
    ReplyFactory(channel=mastodon, post__rule__channel=mastodon, status=Reply.Status.QUEUED)
    major = IncidentFactory(is_major=True)
    for kind in (IncidentEvent.Kind.SLA_WARNING, IncidentEvent.Kind.SLA_WARNING, IncidentEvent.Kind.SLA_BREACHED):
        IncidentEvent.objects.create(incident=major, kind=kind)
    suite = ItsmConnection.objects.create(name="Suite", slug="suite", kind="fake", base_url="https://suite.example.com")
    ItsmLink.objects.create(
        connection=suite, incident=major, external_ref="a", next_attempt_at=NOW - timedelta(minutes=2)
    )
    ItsmLink.objects.create(connection=suite, incident=IncidentFactory(), external_ref="b", status="failed")
    ChannelAlert.objects.create(channel=mastodon, kind="quiet")

    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer " + "t" * 32)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = _samples(response.content)
    incidents = Reply.objects.values("incident").distinct().count() + 2
    assert samples[("socialitsm_incidents_opened_total", (("major", "false"),))] == incidents - 1
    assert samples[("socialitsm_incidents_opened_total", (("major", "true"),))] == 1
    assert samples[("socialitsm_replies_total", (("network", "mastodon"), ("status", "sent")))] == 2
    assert samples[("socialitsm_replies_total", (("network", "mastodon"), ("status", "failed")))] == 1
    assert samples[("socialitsm_sla_events_total", (("kind", "warning"),))] == 2
    assert samples[("socialitsm_sla_events_total", (("kind", "breached"),))] == 1
    assert samples[("socialitsm_itsm_sync_lag_seconds", (("connection", "suite"),))] == 120
    assert samples[("socialitsm_itsm_links_failed", (("connection", "suite"),))] == 1
    assert samples[("socialitsm_channel_last_post_age_seconds", (("channel", "masto"), ("network", "mastodon")))] == 90
    assert samples[("socialitsm_channel_quota_remaining", (("channel", "masto"),))] == 7
    assert samples[("socialitsm_channel_alerts", (("channel", "masto"), ("kind", "quiet")))] == 1


def test_queue_depth_is_read_from_redis(settings):
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        pytest.skip("needs the Redis broker (CELERY_BROKER_URL=redis://...)")
    client = redis.Redis.from_url(url)
    client.delete("io", "default")
    client.lpush("io", "a", "b", "c")
    try:
        body, _ = metrics.metrics_render()
    finally:
        client.delete("io")
    samples = _samples(body)
    assert samples[("socialitsm_celery_queue_depth", (("queue", "io"),))] == 3
    assert samples[("socialitsm_celery_queue_depth", (("queue", "default"),))] == 0
    assert samples[("socialitsm_broker_up", ())] == 1


def test_broker_down_keeps_the_rest_of_the_scrape(monkeypatch):
    def down(queues):
        raise ConnectionError("refused")

    monkeypatch.setattr("socialitsm.broker.queue_depths", down)
    samples = _samples(metrics.metrics_render()[0])
    assert samples[("socialitsm_broker_up", ())] == 0
    assert ("socialitsm_incidents_opened_total", (("major", "false"),)) not in samples


def test_routing_and_classification_are_timed(monkeypatch):
    from socialitsm.services import routing
    from tests.factories import PostFactory

    # The classifier itself is tested elsewhere; here only that both steps are timed.
    monkeypatch.setattr(routing.classify, "verdict_many", lambda items, catalogue, addressed: [None for _ in items])
    monkeypatch.setattr(
        routing, "_posts_route", lambda posts, services, catalogue: {"n": len(routing.posts_classify(posts, catalogue))}
    )
    before = _samples(metrics.metrics_render()[0])
    assert routing.posts_process(post_ids=[PostFactory().pk]) == {"n": 1}
    after = _samples(metrics.metrics_render()[0])
    for name in ("socialitsm_routing_seconds_count", "socialitsm_classification_seconds_count"):
        assert after[(name, ())] == before.get((name, ()), 0) + 1


def test_stored_posts_are_counted_per_channel(django_capture_on_commit_callbacks):
    from socialitsm.connectors import InboundAuthor, InboundPost
    from socialitsm.services.ingest import posts_ingest

    channel = ChannelFactory(slug="counted")
    posts = [
        InboundPost(external_id=f"c-{i}", author=InboundAuthor("a"), text="hello", posted_at=NOW) for i in range(3)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        posts_ingest(channel=channel, posts=posts, process=False)
        posts_ingest(channel=channel, posts=posts, process=False)
    assert metrics.POSTS_INGESTED.labels(channel="counted", network="replay")._value.get() == 3


RECORD = """
from socialitsm import metrics
metrics.rate_limit_wait("mastodon", 30)
with metrics.timed(metrics.ROUTING_SECONDS):
    pass
"""


def test_processes_add_up_in_multiprocess_mode(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):  # two workers, each its own process
        subprocess.run([sys.executable, "-c", RECORD], env=env, check=True, timeout=60)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    samples = _samples(generate_latest(registry))
    assert samples[("socialitsm_rate_limit_waits_total", (("network", "mastodon"),))] == 2
    assert samples[("socialitsm_rate_limit_wait_seconds_total", (("network", "mastodon"),))] == 60
    assert samples[("socialitsm_routing_seconds_count", ())] == 2


@pytest.mark.parametrize(("error", "kind"), [("transient", "transient"), ("permanent", "permanent")])
def test_itsm_sync_failures_are_counted(fake_suite, error, kind):
    from socialitsm.exceptions import PermanentError, TransientError
    from socialitsm.services.itsm_sync import itsm_link_sync

    connection = ItsmConnection.objects.create(
        name="Suite", slug=f"suite-{kind}", kind="fake", base_url="https://suite.example.com"
    )
    link = ItsmLink.objects.create(connection=connection, incident=IncidentFactory(), external_ref="x")
    fake_suite.errors.append(TransientError("HTTP 503") if error == "transient" else PermanentError("HTTP 400"))
    itsm_link_sync(link=link)
    value = metrics.ITSM_SYNC_FAILURES.labels(connection=f"suite-{kind}", kind=kind)._value.get()
    assert value == 1


def test_queue_depth_with_the_embedded_filesystem_broker(tmp_path, monkeypatch):
    from kombu import Connection

    folder = tmp_path / "queue"
    folder.mkdir()
    for name in ("1_a.io.msg", "2_b.io.msg", "3_c.default.msg"):
        (folder / name).write_text("{}")
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "control_folder": str(tmp_path)}
    monkeypatch.setattr("socialitsm.broker._connection", lambda: Connection("filesystem://", transport_options=options))
    from socialitsm.broker import broker_ping, queue_depths

    assert queue_depths(["io", "default", "other"]) == {"io": 2, "default": 1, "other": 0}
    assert broker_ping() == ""
