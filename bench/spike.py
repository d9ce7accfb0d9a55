"""Spike benchmark: a burst of complaints about one service, routed with and without spike detection.

    python bench/spike.py [-n 1000] [--batch 10] [--rounds 2] [--keep]

Uses DATABASE_URL like the application (SQLite under var/ when unset). N complaints about e-mail
from N people, posted within one minute, are ingested and routed batch by batch as they would
arrive (a poll or webhook call per batch), once with SOCIALITSM_SPIKE_DETECTION off and once on,
alternating for --rounds rounds. Prints, for each mode, the routing cost per post (classify +
route, median of the rounds) and the post-to-incident latency (from the post's arrival to its
incident being committed: p50, p95, max), the added cost of detection in percent, and what the
burst became (incidents, major incidents, children). On a shared machine the two modes' runs
differ by more than detection costs, so it also times detection's own steps (the spike
decision under the service lock, and its link events) inside each run with detection on, and
prints their share of that run's routing time. Rows it creates are removed afterwards unless
--keep.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-0123456789-0123456789")
os.environ.setdefault("SOCIALITSM_ENCRYPTION_KEYS", "m0UwIJ6Xw6JhcnP6yQ0hU8cN6vC9bN1w5oVtJkQy3bE=")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import F, Q  # noqa: E402
from django.test import override_settings  # noqa: E402

from socialitsm.connectors import InboundAuthor, InboundPost  # noqa: E402
from socialitsm.models import (  # noqa: E402
    Author,
    Channel,
    Incident,
    IncidentEvent,
    Post,
    SlaClock,
    WatchRule,
)
from socialitsm.services import major  # noqa: E402
from socialitsm.services.ingest import posts_ingest  # noqa: E402
from socialitsm.services.routing import posts_process  # noqa: E402

# Seconds spent in the spike decision's steps (RoutingSpikes), summed over a run.
SPIKE_TIME = [0.0]


def _timed(method):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            SPIKE_TIME[0] += time.perf_counter() - started

    return wrapper


for _name in ("__init__", "existing_children", "majors_build", "parents_assign", "events"):
    setattr(major.RoutingSpikes, _name, _timed(getattr(major.RoutingSpikes, _name)))

TEXTS = [
    "Email is down, Outlook can't connect",
    "is email down for anyone else? nothing in my inbox",
    "Outlook shows Disconnected, can't send any mail",
    "mail is completely dead, OWA gives HTTP 500",
    "inbox frozen. can't send, can't receive",
]


def burst(n: int, run: str) -> list[InboundPost]:
    start = datetime.now(UTC) - timedelta(minutes=1)
    return [
        InboundPost(
            external_id=f"{run}-{i}",
            author=InboundAuthor(f"{run}-u{i}", f"@person{i}", f"Person {i}"),
            text=f"{TEXTS[i % len(TEXTS)]} #{i}",
            posted_at=start + timedelta(milliseconds=i * 60_000 // n),
            language="en",
        )
        for i in range(n)
    ]


def run_once(n: int, batch: int, detection: bool) -> dict[str, float]:
    run = f"spike{uuid.uuid4().hex[:8]}"
    channel = Channel.objects.create(name=run, slug=run, network="webhook", listen_mode="push")
    rule = WatchRule.objects.create(channel=channel, name="bench", kind="search")
    posts = burst(n, run)
    routing = 0.0
    SPIKE_TIME[0] = 0.0
    latencies: list[float] = []
    with override_settings(SOCIALITSM_SPIKE_DETECTION=detection):
        for i in range(0, n, batch):
            arrived = time.perf_counter()
            ids = posts_ingest(channel=channel, posts=posts[i : i + batch], rule=rule, process=False).pending_ids
            started = time.perf_counter()
            posts_process(post_ids=ids)
            done = time.perf_counter()
            routing += done - started
            latencies += [done - arrived] * len(ids)
    incidents = Incident.objects.filter(posts__channel=channel).distinct()
    majors = Incident.objects.filter(is_major=True, children__in=incidents).distinct()
    outcome = {
        "route_ms": routing * 1000 / n,
        "spike_share": SPIKE_TIME[0] / (routing - SPIKE_TIME[0]) * 100,
        "p50": statistics.median(latencies) * 1000,
        "p95": statistics.quantiles(latencies, n=20)[-1] * 1000,
        "max": max(latencies) * 1000,
        "incidents": incidents.count(),
        "majors": majors.count(),
        "children": incidents.filter(parent__isnull=False).count(),
    }
    return outcome | {"_run": run, "_channel": channel.pk, "_majors": list(majors.values_list("pk", flat=True))}


def set_apart(result: dict) -> None:
    """Make a run's burst yesterday's, its major incident closed: the next run starts afresh."""
    burst = Incident.objects.filter(posts__channel_id=result["_channel"]).values("pk")
    Incident.objects.filter(Q(pk__in=burst) | Q(pk__in=result["_majors"])).update(
        opened_at=F("opened_at") - timedelta(days=1)
    )
    Incident.objects.filter(pk__in=result["_majors"]).update(state=Incident.State.CLOSED)


def cleanup(result: dict) -> None:
    incident_ids = (
        list(Incident.objects.filter(posts__channel_id=result["_channel"]).values_list("id", flat=True))
        + result["_majors"]
    )
    IncidentEvent.objects.filter(incident_id__in=incident_ids).delete()
    SlaClock.objects.filter(incident_id__in=incident_ids).delete()
    Post.objects.filter(channel_id=result["_channel"]).delete()
    Incident.objects.filter(parent_id__in=result["_majors"]).update(parent=None)
    Incident.objects.filter(id__in=incident_ids).delete()
    Author.objects.filter(external_id__startswith=f"{result['_run']}-").delete()
    Channel.objects.filter(pk=result["_channel"]).delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="complaints in the burst (default 1000)")
    parser.add_argument("--batch", type=int, default=10, help="posts per ingest and routing call (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per mode, alternating (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the rows afterwards")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    # Warm up: the classifier's model and the catalogue load once per process.
    warm = run_once(20, args.batch, True)
    set_apart(warm)
    cleanup(warm)
    results: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(args.rounds):
        for detection in (False, True):
            result = run_once(args.n, args.batch, detection)
            results[detection].append(result)
            set_apart(result)

    print(f"database        {connection.vendor} ({connection.settings_dict['NAME']})")
    print(f"burst           {args.n} complaints from {args.n} people in one minute, batches of {args.batch}")
    summary = {}
    for detection in (False, True):
        rows = results[detection]
        summary[detection] = {key: statistics.median(r[key] for r in rows) for key in ("route_ms", "p50", "p95", "max")}
        s = summary[detection]
        last = rows[-1]
        print(
            f"detection {'on ' if detection else 'off'}   routing {s['route_ms']:6.2f} ms/post   "
            f"post-to-incident p50 {s['p50']:7.1f} ms  p95 {s['p95']:7.1f} ms  max {s['max']:7.1f} ms   "
            f"-> {last['incidents']} incidents, {last['majors']} major, {last['children']} children"
        )
    added = (summary[True]["route_ms"] / summary[False]["route_ms"] - 1) * 100
    share = statistics.median(r["spike_share"] for r in results[True])
    print(f"on vs off       {added:+.1f} % routing time per post (runs in turn: includes the machine's noise)")
    print(
        f"added cost      {share:.1f} % detection's own steps, timed within the runs with detection on (target < 10 %)"
    )

    if not args.keep:
        for rows in results.values():
            for result in rows:
                cleanup(result)


if __name__ == "__main__":
    main()
