"""Prometheus metrics.

Two kinds. What happens inside a process (posts stored, classification and routing time,
rate-limit waits) is recorded where it happens with the helpers below; under gunicorn and Celery
every process writes its own files in PROMETHEUS_MULTIPROC_DIR and a scrape adds them up. What
the database already knows (incidents opened, replies sent and failed, SLA warnings and breaches,
ITSM sync, channels' last posts) and the broker's queue depths are read at scrape time: truthful
whichever process did the work, and right after a restart.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from .conf import conf

logger = logging.getLogger(__name__)

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

POSTS_INGESTED = Counter("socialitsm_posts_ingested", "Posts stored, per channel.", ["channel", "network"])
CLASSIFICATION_SECONDS = Histogram(
    "socialitsm_classification_seconds", "Time to classify one batch of posts.", buckets=_SECONDS
)
ROUTING_SECONDS = Histogram(
    "socialitsm_routing_seconds", "Time to classify and route one batch of posts.", buckets=_SECONDS
)
RATE_LIMIT_WAITS = Counter("socialitsm_rate_limit_waits", "Calls held back by a network's rate limit.", ["network"])
RATE_LIMIT_WAIT_SECONDS = Counter(
    "socialitsm_rate_limit_wait_seconds", "Seconds the networks' rate limits told us to wait.", ["network"]
)
ITSM_SYNC_FAILURES = Counter(
    "socialitsm_itsm_sync_failures",
    "ITSM sync attempts that failed: transient (retried) or permanent (the link gave up).",
    ["connection", "kind"],
)


# -- recording (a line at each point where the work happens) ---------------------------------------


def posts_ingested(channel, count: int) -> None:
    if count:
        POSTS_INGESTED.labels(channel=channel.slug, network=channel.network).inc(count)


def rate_limit_wait(network: str, seconds: float) -> None:
    RATE_LIMIT_WAITS.labels(network=network).inc()
    RATE_LIMIT_WAIT_SECONDS.labels(network=network).inc(max(0.0, seconds))


def itsm_sync_failed(connection: str, *, permanent: bool) -> None:
    ITSM_SYNC_FAILURES.labels(connection=connection, kind="permanent" if permanent else "transient").inc()


@contextmanager
def timed(histogram: Histogram) -> Iterator[None]:
    """Observe the block's duration in `histogram`, also when it raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.observe(time.perf_counter() - started)


# -- read at scrape time ---------------------------------------------------------------------------


class DatabaseCollector(Collector):
    """Figures the database and broker hold, read at each scrape with cheap grouped queries."""

    def collect(self) -> Iterator[Metric]:
        from socialitsm.models import Channel, ChannelAlert, Incident, IncidentEvent, ItsmLink, Reply

        now = timezone.now()
        opened = CounterMetricFamily("socialitsm_incidents_opened", "Incidents opened.", labels=["major"])
        for row in Incident.objects.order_by().values("is_major").annotate(n=Count("pk")):
            opened.add_metric(["true" if row["is_major"] else "false"], row["n"])
        yield opened

        replies = CounterMetricFamily(
            "socialitsm_replies", "Replies sent and failed, per network.", labels=["network", "status"]
        )
        sent_or_failed = Reply.objects.filter(status__in=[Reply.Status.SENT, Reply.Status.FAILED]).order_by()
        for row in sent_or_failed.values("channel__network", "status").annotate(n=Count("pk")):
            replies.add_metric([row["channel__network"], row["status"]], row["n"])
        yield replies

        sla = CounterMetricFamily("socialitsm_sla_events", "SLA warnings and breaches.", labels=["kind"])
        kinds = {IncidentEvent.Kind.SLA_WARNING: "warning", IncidentEvent.Kind.SLA_BREACHED: "breached"}
        counts = dict.fromkeys(kinds.values(), 0)
        for row in IncidentEvent.objects.filter(kind__in=list(kinds)).order_by().values("kind").annotate(n=Count("pk")):
            counts[kinds[row["kind"]]] = row["n"]
        for kind, n in counts.items():
            sla.add_metric([kind], n)
        yield sla

        lag = GaugeMetricFamily(
            "socialitsm_itsm_sync_lag_seconds",
            "Age of the oldest incident change still waiting to reach each ITSM suite.",
            labels=["connection"],
        )
        failed = GaugeMetricFamily(
            "socialitsm_itsm_links_failed", "Incidents whose sync to a suite failed for good.", labels=["connection"]
        )
        retrying = GaugeMetricFamily(
            "socialitsm_itsm_links_retrying", "Incidents whose sync to a suite is being retried.", labels=["connection"]
        )
        links = (
            ItsmLink.objects.order_by()
            .values("connection__slug")
            .annotate(
                due=Min("next_attempt_at", filter=~Q(status=ItsmLink.Status.FAILED) & Q(next_attempt_at__lte=now)),
                failed=Count("pk", filter=Q(status=ItsmLink.Status.FAILED)),
                retrying=Count("pk", filter=~Q(status=ItsmLink.Status.FAILED) & Q(attempts__gt=0)),
            )
        )
        for row in links:
            slug = row["connection__slug"]
            lag.add_metric([slug], (now - row["due"]).total_seconds() if row["due"] else 0.0)
            failed.add_metric([slug], row["failed"])
            retrying.add_metric([slug], row["retrying"])
        yield from (lag, failed, retrying)

        age = GaugeMetricFamily(
            "socialitsm_channel_last_post_age_seconds",
            "Seconds since each enabled channel last stored a post (a quiet channel is often a broken one).",
            labels=["channel", "network"],
        )
        remaining = GaugeMetricFamily(
            "socialitsm_channel_quota_remaining", "Rate-limit allowance the network last reported.", labels=["channel"]
        )
        alerts = GaugeMetricFamily(
            "socialitsm_channel_alerts", "Listening problems currently raised.", labels=["channel", "kind"]
        )
        channels = Channel.objects.filter(enabled=True).values_list(
            "slug", "network", "last_event_at", "quota_remaining"
        )
        for slug, network, last_event_at, quota in channels:
            if last_event_at is not None:
                age.add_metric([slug, network], max(0.0, (now - last_event_at).total_seconds()))
            if quota is not None:
                remaining.add_metric([slug], quota)
        active = ChannelAlert.objects.filter(active=True, channel__enabled=True).values_list("channel__slug", "kind")
        for slug, kind in active:
            alerts.add_metric([slug, kind], 1)
        yield from (age, remaining, alerts)

        yield from _queue_depths()


def _queue_depths() -> Iterator[Metric]:
    from .broker import queue_depths

    depth = GaugeMetricFamily("socialitsm_celery_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"])
    up = GaugeMetricFamily("socialitsm_broker_up", "Whether the broker answered this scrape.")
    try:
        for queue, n in queue_depths(conf.METRICS_QUEUES).items():
            depth.add_metric([queue], n)
        up.add_metric([], 1)
    except Exception as exc:  # a broker that is down must not fail the rest of the scrape
        logger.warning("metrics: cannot read the queue depths: %s", type(exc).__name__)
        up.add_metric([], 0)
    yield depth
    yield up


def metrics_render() -> tuple[bytes, str]:
    """The exposition text and its content type: the process metrics (of all processes, in
    multiprocess mode) plus the figures read now."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(DatabaseCollector())
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY) + generate_latest(_database_registry()), CONTENT_TYPE_LATEST


def _database_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return registry


def metrics_allowed(*, authorization: str, address: str) -> bool:
    """Whether a scrape may read the metrics: a matching bearer token (METRICS_TOKEN) or a client
    address within METRICS_ALLOW. With neither configured, nobody may."""
    token = conf.METRICS_TOKEN
    scheme, _, given = authorization.partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    allowed = conf.METRICS_ALLOW
    if not allowed or not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in allowed:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            logger.warning("SOCIALITSM_METRICS_ALLOW: %r is not an address or network", entry)
    return False
