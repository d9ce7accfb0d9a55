"""A year of data: seed it through COPY, then time the pages and API calls agents and integrators use.

    createdb socialitsm_scale
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/socialitsm_scale python bench/scale.py [-n 1000000]

Seeds (once; --reseed to start over) N posts over the last 365 days, N/10 incidents with their
events, replies and SLA clocks, N/5 authors, 50 agents and 20 services, plus one incident with 200
posts. Then times each request R times in-process (Django's test client, DEBUG off) and prints
p50/p95/p99 server time, the queries each request ran, and for its slowest query the indexes
PostgreSQL's EXPLAIN (ANALYZE) used. Last, with every incident open (in a transaction rolled back
afterwards), it times runs of the SLA sweep and of the ITSM sync tick's discovery and selection.
PostgreSQL only: the figures are about its plans.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-0123456789-0123456789")
os.environ.setdefault("SOCIALITSM_ENCRYPTION_KEYS", "m0UwIJ6Xw6JhcnP6yQ0hU8cN6vC9bN1w5oVtJkQy3bE=")
os.environ["DEBUG"] = "false"
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

import logging

import django

django.setup()
logging.getLogger("axes").setLevel(logging.WARNING)

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, models, transaction  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from project.runtime import gc_tune  # noqa: E402
from socialitsm import roles  # noqa: E402
from socialitsm.models import (  # noqa: E402
    Author,
    Channel,
    Incident,
    IncidentCounter,
    IncidentEvent,
    ItsmConnection,
    ItsmLink,
    Network,
    Post,
    Reply,
    Service,
    SlaClock,
    SlaPolicy,
    WatchRule,
)
from socialitsm.services import itsm_sync  # noqa: E402
from socialitsm.services.sla import sla_sweep  # noqa: E402

MARK = "scale-bench"
NETWORKS = [Network.MASTODON, Network.BLUESKY, Network.X, Network.REDDIT]
TEXTS = [
    "VPN down again, third time this week",
    "Outlook keeps crashing with 0x800CCC0E",
    "wifi on the 3rd floor is broken AGAIN",
    "can't log in to the portal, SSO loop since this morning",
    "printer on floor 2 not working, whole team waiting",
    "Teams drops every call after 5 minutes",
    "Great match last night",
    "thanks, works now",
]
OPEN_DAYS = 14  # incidents opened within this many days are still open


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# -- seeding ---------------------------------------------------------------------------------------


def copy_rows(model: type[models.Model], rows: Iterable[dict[str, Any]]) -> int:
    """COPY rows into the model's table; fields a row leaves out take the field's default."""
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    count = 0
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN') as cp,
    ):
        for row in rows:
            values = []
            for f in fields:
                value = row[f.attname] if f.attname in row else f.get_default()
                if isinstance(f, models.JSONField):
                    value = json.dumps(value)
                values.append(value)
            cp.write_row(values)
            count += 1
    return count


def _ids(model: type[models.Model]) -> list[int]:
    return list(model.objects.order_by("pk").values_list("pk", flat=True))


def seed(n_posts: int, rng: random.Random) -> None:
    now = _now()
    n_incidents, n_authors = max(n_posts // 10, 10), max(n_posts // 5, 10)
    started = time.perf_counter()

    agents_group, _ = Group.objects.get_or_create(name=roles.AGENT_GROUP)
    leads_group, _ = Group.objects.get_or_create(name=roles.LEAD_GROUP)
    lead, _ = User.objects.get_or_create(username=f"{MARK}-lead")
    lead.groups.add(leads_group)
    User.objects.bulk_create([User(username=f"{MARK}-agent-{i}", password="!") for i in range(50)])  # noqa: S106
    agents = list(User.objects.filter(username__startswith=f"{MARK}-agent-"))
    agents_group.user_set.add(*agents)
    teams = [Group.objects.get_or_create(name=f"{MARK} team {i}")[0] for i in range(5)]
    for i in range(max(0, 20 - Service.objects.count())):
        Service.objects.create(slug=f"{MARK}-svc-{i}", name=f"Service {i}")
    services = _ids(Service)
    channels = [
        Channel.objects.create(name=f"{MARK} {net}", slug=f"{MARK}-{net}", network=net, handle="helpdesk")
        for net in NETWORKS
    ]
    rules = [WatchRule.objects.create(channel=c, name="complaints", query="helpdesk") for c in channels]
    policies = {p.priority: p for p in SlaPolicy.objects.filter(active=True).order_by("-position")}

    print(f"seeding {n_authors:,} authors ...", flush=True)
    copy_rows(
        Author,
        (
            {"network": NETWORKS[i % 4], "external_id": f"{MARK}-a{i}", "handle": f"user{i}", "name": f"User {i}"}
            for i in range(n_authors)
        ),
    )
    author_ids = _ids(Author)

    print(f"seeding {n_incidents:,} incidents ...", flush=True)
    start_number = 5_000_000

    def incidents() -> Iterable[dict[str, Any]]:
        for i in range(n_incidents):
            opened = now - timedelta(seconds=rng.randrange(365 * 86400))
            impact, urgency = rng.choice((1, 2, 2, 3, 3, 3)), rng.choice((1, 2, 2, 3))
            is_open = opened > now - timedelta(days=OPEN_DAYS)
            state = rng.choice(Incident.OPEN_STATES) if is_open else rng.choice(("resolved", "closed", "closed"))
            resolved = None if is_open else opened + timedelta(hours=rng.uniform(1, 72))
            yield {
                "number": f"INC{start_number + i:07d}",
                "short_description": rng.choice(TEXTS),
                "state": state,
                "impact": impact,
                "urgency": urgency,
                "priority": [[1, 2, 3], [2, 3, 4], [3, 4, 5]][impact - 1][urgency - 1],
                "service_id": rng.choice(services),
                "category": "",
                "assignment_group_id": rng.choice(teams).pk,
                "assignee_id": rng.choice(agents).pk if rng.random() < 0.8 else None,
                "author_id": rng.choice(author_ids),
                "channel_id": channels[i % 4].pk,
                "opened_at": opened,
                "first_response_at": opened + timedelta(minutes=rng.uniform(5, 240)),
                "resolved_at": resolved,
                "closed_at": resolved,
                "sla_started_at": opened,
                "ingest_lag_seconds": rng.randrange(1, 30),
                "updated_at": resolved or opened,
                "sla_policy_id": policies.get(3).pk if policies.get(3) else None,
            }

    copy_rows(Incident, incidents())
    IncidentCounter.objects.update_or_create(name="INC", defaults={"value": start_number + n_incidents})
    incident_rows = list(Incident.objects.order_by("pk").values_list("pk", "opened_at", "state", "author_id"))

    print(f"seeding {n_posts:,} posts ...", flush=True)
    big = incident_rows[-1]

    def posts() -> Iterable[dict[str, Any]]:
        for i in range(n_posts):
            net = i % 4
            if i < 200:
                incident_id, opened = big[0], big[1]
                posted = opened + timedelta(minutes=i)
            else:
                posted = now - timedelta(seconds=rng.randrange(365 * 86400))
                incident_id = None
            linked = incident_id is not None or rng.random() < 0.09
            if linked and incident_id is None:
                incident_id = incident_rows[rng.randrange(len(incident_rows))][0]
            yield {
                "network": NETWORKS[net],
                "external_id": f"{MARK}-p{i}",
                "channel_id": channels[net].pk,
                "rule_id": rules[net].pk,
                "author_id": rng.choice(author_ids),
                "text": rng.choice(TEXTS),
                "raw": {"id": i},
                "posted_at": posted,
                "ingested_at": posted + timedelta(seconds=rng.randrange(1, 60)),
                "sentiment": rng.uniform(-1, 1),
                "is_complaint": linked,
                "complaint_score": rng.random(),
                "triage_state": "incident" if linked else rng.choice(("ignored", "ignored", "queued")),
                "incident_id": incident_id,
            }

    copy_rows(Post, posts())

    print("seeding events, replies and SLA clocks ...", flush=True)
    first_posts = dict(
        Post.objects.filter(incident__isnull=False)
        .order_by("incident_id", "pk")
        .distinct("incident_id")
        .values_list("incident_id", "pk")
    )

    def events() -> Iterable[dict[str, Any]]:
        for pk, opened, state, _ in incident_rows:
            yield {"incident_id": pk, "kind": "opened", "created_at": opened}
            yield {"incident_id": pk, "kind": "post_linked", "created_at": opened, "message": "VPN down"}
            yield {
                "incident_id": pk,
                "kind": "changed",
                "field": "state",
                "old_value": "new",
                "new_value": state,
                "created_at": opened + timedelta(minutes=30),
            }
        # Routing records a link event for each post it adds: the busy incident's history has
        # one for each of its 200 posts.
        for i in range(1, 200):
            yield {"incident_id": big[0], "kind": "post_linked", "created_at": big[1] + timedelta(minutes=i)}

    copy_rows(IncidentEvent, events())

    def replies() -> Iterable[dict[str, Any]]:
        for pk, opened, _, _ in incident_rows:
            post_id = first_posts.get(pk)
            if post_id is None:
                continue
            for k in range(1 if rng.random() < 0.5 else 2):
                sent = opened + timedelta(minutes=10 + 30 * k)
                yield {
                    "incident_id": pk,
                    "post_id": post_id,
                    "channel_id": channels[pk % 4].pk,
                    "visibility": "public",
                    "text": "We are on it",
                    "status": "sent",
                    "created_at": sent,
                    "sent_at": sent,
                    "idempotency_key": uuid.uuid4(),
                }

    copy_rows(Reply, replies())

    # As routing starts them: each clock under its incident's policy.
    clock_policy = policies.get(3).pk if policies.get(3) else None

    def clocks() -> Iterable[dict[str, Any]]:
        for pk, opened, state, _ in incident_rows:
            is_open = state in Incident.OPEN_STATES
            for target, minutes in (("first_response", 60), ("resolution", 24 * 60)):
                due = opened + timedelta(minutes=minutes)
                warn = opened + timedelta(minutes=minutes * 0.8)
                running = is_open and (target == "resolution")
                late = due <= now
                yield {
                    "incident_id": pk,
                    "target": target,
                    "cycle": 0,
                    "policy_id": clock_policy,
                    "started_at": opened,
                    "target_minutes": minutes,
                    "due_at": due,
                    "warn_at": warn,
                    "stopped_at": None if running else min(now, opened + timedelta(minutes=minutes * 0.7)),
                    "state": ("breached" if late else "running") if running else "met",
                    "computed_at": now,
                    "warned_at": warn if running and warn <= now else None,
                    "breached_at": due if running and late else None,
                }

    copy_rows(SlaClock, clocks())
    print("filling the stored figures ...", flush=True)
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE socialitsm_incident i SET post_count = p.n FROM
               (SELECT incident_id, count(*) n FROM socialitsm_post WHERE incident_id IS NOT NULL GROUP BY 1) p
               WHERE p.incident_id = i.id"""
        )
        cursor.execute(
            """UPDATE socialitsm_incident i SET breach_due_at = c.d FROM
               (SELECT incident_id, min(due_at) d FROM socialitsm_slaclock
                WHERE stopped_at IS NULL AND due_at IS NOT NULL GROUP BY 1) c WHERE c.incident_id = i.id"""
        )
        cursor.execute("VACUUM ANALYZE")
    print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)


def counts() -> str:
    return ", ".join(
        f"{model.__name__.lower()}s {model.objects.count():,}"
        for model in (Post, Incident, Author, IncidentEvent, Reply, SlaClock)
    )


# -- measuring -------------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _plan(sql: str) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0]
    return plan[0] if isinstance(plan, list) else json.loads(plan)[0]


def executed_ms(queries: list[dict[str, Any]]) -> float:
    """What PostgreSQL itself spent executing the request's reads (EXPLAIN ANALYZE of each): on a
    busy machine the queries' wall time mostly measures waiting for a core."""
    return sum(_plan(q["sql"])["Execution Time"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT"))


def explain(sql: str) -> str:
    """The indexes (and sequential scans) the plan of `sql` used, and its execution time."""
    plan = _plan(sql)
    used: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        kind = node["Node Type"]
        if "Index Name" in node:
            used.append(f"{kind} {node['Index Name']}")
        elif kind == "Seq Scan":
            used.append(f"Seq Scan {node['Relation Name']}")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return f"{plan['Execution Time']:.1f} ms: " + ("; ".join(dict.fromkeys(used)) or "no scan")


def measure(client: Client, label: str, url: str, runs: int, target_ms: float | None) -> None:
    for _ in range(2):
        assert client.get(url, secure=True).status_code == 200, (url, client.get(url, secure=True).status_code)
    times, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url, secure=True)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == 200, url
    with CaptureQueriesContext(connection) as queries:
        client.get(url, secure=True)
    slowest = max(queries.captured_queries, key=lambda q: float(q["time"]))
    p95 = percentile(times, 0.95)
    verdict = "" if target_ms is None else (" ok" if p95 < target_ms else f" OVER {target_ms:.0f} ms")
    sql_ms = sum(float(q["time"]) for q in queries.captured_queries) * 1000
    print(
        f"{label:<44} p50 {statistics.median(times):7.1f}  p95 {p95:7.1f}  p99 {percentile(times, 0.99):7.1f} ms"
        f"  {len(queries.captured_queries):2d} queries{verdict}"
    )
    # On a busy machine wall time mostly measures waiting for a core: the process's own CPU time
    # and the queries' time show what the request itself costs.
    print(
        f"{'':<6}python CPU p50 {statistics.median(cpu):.1f} p95 {percentile(cpu, 0.95):.1f} ms;"
        f" queries {sql_ms:.1f} ms in one run, {executed_ms(queries.captured_queries):.1f} ms of it executing"
    )
    sql = slowest["sql"]
    if sql.lstrip().upper().startswith("SELECT"):
        print(f"{'':<6}slowest query {explain(sql)}")


def timed(label: str, fn: Callable[[], Any], runs: int, setup: Callable[[], Any] = lambda: None) -> None:
    times, result = [], None
    for _ in range(runs):
        setup()
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    print(f"{label:<44} p50 {statistics.median(times):7.1f}  max {max(times):7.1f} ms  ({result})")


def pages(runs: int, only: str = "") -> None:
    client = Client()
    client.force_login(User.objects.get(username=f"{MARK}-lead"))
    today = _now().date()
    month, year = today - timedelta(days=29), today - timedelta(days=364)
    big = Incident.objects.order_by("-post_count", "pk").first()
    assert big is not None
    deep_incidents = max(1, min(200, Incident.objects.count() // 50))
    deep_posts = max(1, min(200, Post.objects.count() // 50))
    checks: list[tuple[str, str, float | None]] = [
        ("queue page", "/", 50),
        ("queue page, by time to breach", "/?sort=breach", 50),
        ("queue page 5", "/?page=5", 50),
        ("queue page searched vpn", "/?q=vpn", 50),
        ("queue page, all, searched vpn", "/?view=all&q=vpn", 50),
        ("API incidents", "/api/v1/incidents/", 50),
        ("API incidents ?state=resolved", "/api/v1/incidents/?state=resolved", 50),
        ("API incidents ?state=new&state=on_hold", "/api/v1/incidents/?state=new&state=on_hold", 50),
        ("API incidents ?priority=1&priority=2", "/api/v1/incidents/?priority=1&priority=2", 50),
        ("API incidents ?q=vpn", "/api/v1/incidents/?q=vpn", 50),
        ("API incidents ?search=vpn", "/api/v1/incidents/?search=vpn", 50),
        ("API incidents ?search=vpn&open=true", "/api/v1/incidents/?search=vpn&open=true", 50),
        ("API incidents ?search=floor broken", "/api/v1/incidents/?search=floor%20broken", 50),
        ("API incidents ?ordering=breach_due_at", "/api/v1/incidents/?ordering=breach_due_at", 50),
        ("API incidents open, by breach", "/api/v1/incidents/?open=true&ordering=breach_due_at", 50),
        (f"API incidents page {deep_incidents}", f"/api/v1/incidents/?page={deep_incidents}", 50),
        ("API posts", "/api/v1/posts/", 50),
        ("API posts ?triage_state=queued&...=ignored", "/api/v1/posts/?triage_state=queued&triage_state=ignored", 50),
        (f"API posts page {deep_posts}", f"/api/v1/posts/?page={deep_posts}", 50),
        (f"incident page ({big.post_count} posts, latest 50 shown)", f"/incidents/{big.number}/", 100),
        (f"incident page ({big.post_count} posts, all shown)", f"/incidents/{big.number}/?posts=all", None),
        ("triage page", "/posts/", None),
        ("SLA page, 30 days", f"/sla/?from={month}&to={today}", 500),
        ("SLA API, 30 days", f"/api/v1/reports/sla/?from={month}&to={today}", 500),
        ("SLA CSV, 30 days", f"/sla/export.csv?from={month}&to={today}", 500),
        ("SLA page, 365 days", f"/sla/?from={year}&to={today}", None),
        ("SLA API, 365 days", f"/api/v1/reports/sla/?from={year}&to={today}", None),
    ]
    unlimited = {"api_user": None, "api_address": None, "api_auth_failure": None, "ingest": None}
    # Static files as in development: the bench runs without collectstatic's manifest.
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(SOCIALITSM_THROTTLE_RATES=unlimited, STORAGES=storages):
        for label, url, target in checks:
            if only.lower() in label.lower():
                measure(client, label, url, runs, target)


def sweeps(runs: int) -> None:
    """Every incident open with a running resolution clock and a link in an ITSM suite, in a
    transaction rolled back at the end; a few clocks cross their times and a few incidents
    change between runs, as in a busy minute."""
    now = _now()
    with transaction.atomic():
        Incident.objects.update(state=Incident.State.IN_PROGRESS, resolved_at=None, closed_at=None)
        SlaClock.objects.filter(target=SlaClock.Target.RESOLUTION).update(
            stopped_at=None, state=SlaClock.State.RUNNING, warned_at=models.F("warn_at"), breached_at=None
        )
        SlaClock.objects.filter(target=SlaClock.Target.RESOLUTION, due_at__lte=now).update(
            state=SlaClock.State.BREACHED, breached_at=models.F("due_at")
        )
        fake = ItsmConnection.objects.create(
            name=f"{MARK} suite", slug=f"{MARK}-suite", kind=ItsmConnection.Kind.FAKE, base_url="https://example.com"
        )
        last_event = IncidentEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        ItsmConnection.objects.filter(pk=fake.pk).update(event_cursor=last_event, sync_cursor=last_event)
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO socialitsm_itsmlink (connection_id, incident_id, external_ref, idempotency_key,
                   remote_id, remote_key, remote_url, status, last_error, attempts, pushed, remote_state,
                   remote_status, event_watermark, created_at)
                   SELECT %s, i.id, 'ref:' || i.number, gen_random_uuid(), i.number, i.number, '', 'ok', '', 0,
                   '{}', 'in_progress', '', COALESCE((SELECT max(e.id) FROM socialitsm_incidentevent e
                   WHERE e.incident_id = i.id), 0), now() FROM socialitsm_incident i""",
                [fake.pk],
            )
            cursor.execute("ANALYZE socialitsm_incident, socialitsm_slaclock, socialitsm_itsmlink")
        open_count = Incident.objects.open().count()
        print(f"\nwith {open_count:,} open incidents, {ItsmLink.objects.count():,} ITSM links:")
        ids = list(Incident.objects.order_by("?").values_list("pk", flat=True)[: runs * 10])
        tick = iter(range(runs * 10))

        def busy_minute() -> None:
            # Ten clocks reach their warning time and ten their due time; ten incidents change.
            step = next(tick)
            batch = ids[step * 10 % len(ids) : step * 10 % len(ids) + 10]
            moment = _now()
            SlaClock.objects.filter(incident_id__in=batch, target=SlaClock.Target.RESOLUTION).update(
                warn_at=moment - timedelta(seconds=1),
                warned_at=None,
                due_at=moment + timedelta(minutes=30),
                breached_at=None,
                state=SlaClock.State.RUNNING,
            )
            IncidentEvent.objects.bulk_create(
                [IncidentEvent(incident_id=pk, kind=IncidentEvent.Kind.CHANGED, field="urgency") for pk in batch]
            )

        def sweep() -> dict[str, int]:
            return sla_sweep(now=_now())

        def itsm_tick() -> dict[str, int]:
            with (
                mock.patch("socialitsm.tasks.itsm_link_sync_task.delay"),
                mock.patch("socialitsm.tasks.itsm_connection_poll_task.delay"),
            ):
                return itsm_sync.itsm_tick(now=_now() + timedelta(seconds=120))

        timed("SLA sweep run", sweep, runs, busy_minute)
        timed("ITSM sync tick run", itsm_tick, runs, busy_minute)
        with CaptureQueriesContext(connection) as queries:
            itsm_sync.itsm_links_due(now=_now() + timedelta(seconds=120))
        print(f"{'':<6}ITSM due links query {explain(queries.captured_queries[-1]['sql'])}")
        transaction.set_rollback(True)
    # The rolled-back updates left a dead version of every incident, clock and link behind, and
    # filled the partial indexes of open incidents and running clocks with all of them.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE socialitsm_incident, socialitsm_slaclock, socialitsm_itsmlink")
        for table in ("socialitsm_incident", "socialitsm_slaclock"):
            cursor.execute(f"REINDEX TABLE {table}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1_000_000, help="posts to seed (incidents n/10, authors n/5)")
    parser.add_argument("-r", "--runs", type=int, default=30, help="timed requests per check")
    parser.add_argument("--reseed", action="store_true", help="flush the database and seed again")
    parser.add_argument("--skip-sweeps", action="store_true")
    parser.add_argument("-k", "--only", default="", help="time only the checks whose label holds this text")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench/scale.py needs PostgreSQL: set DATABASE_URL")
    if args.reseed:
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    call_command("migrate", verbosity=0)
    if not Channel.objects.filter(slug__startswith=MARK).exists():
        seed(args.n, random.Random(16))
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        jit = cursor.fetchone()[0]
    # The garbage collector as a gunicorn worker sets it once the application is loaded
    # (gunicorn.conf.py, project/runtime.py); GC_TUNING=0 leaves Python's defaults.
    get_resolver().url_patterns  # noqa: B018
    gc = "tuned" if gc_tune() else "Python defaults"
    print(f"{counts()}; jit {jit}; gc {gc}; load average {os.getloadavg()[0]:.2f}\n")
    pages(args.runs, args.only)
    if not args.skip_sweeps:
        sweeps(max(3, args.runs // 3))
    print(f"\nload average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
