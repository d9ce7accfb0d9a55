"""Queue benchmark: server time of the agents' queue page, with and without search, on the demo data.

    python bench/queue_page.py [--rounds 20] [--extra-incidents 0]

Uses DATABASE_URL like the application (SQLite under var/ when unset); migrates, then sets up
the demo (teams, SLA policies, a past week of incidents) as `socialitsm_demo` does. With
--extra-incidents N it also adds N incidents with two posts each (poster, text) to see how the
search grows; they are removed afterwards unless --keep. Each request runs in this process
through Django's test client as the demo agent, so the figure is the server's time: URL routing,
session, queries and rendering, without a network. Prints, per page, the median, p95 and max
over --rounds requests, the median CPU time of this process (Python's share: routing, ORM,
rendering), the number of SQL queries, and whether the median is under the 100 ms
budget; on PostgreSQL also the database's own time for the first page of a few searches
(EXPLAIN ANALYZE), which a machine busy with other work inflates far less than the page time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-0123456789-0123456789")
os.environ.setdefault("SOCIALITSM_ENCRYPTION_KEYS", "m0UwIJ6Xw6JhcnP6yQ0hU8cN6vC9bN1w5oVtJkQy3bE=")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

from socialitsm import selectors  # noqa: E402
from socialitsm.management.commands.socialitsm_demo import DEMO_USERNAME, demo_setup  # noqa: E402
from socialitsm.models import Author, Channel, Incident, Post, priority_for  # noqa: E402

BUDGET_MS = 100.0
BENCH_PREFIX = "BQ"
PAGES = {
    "queue": "/",
    "search vpn": "/?q=vpn",
    "search two words": "/?q=vpn+down",
    "search a poster": "/?q=mika",
    "search, all states": "/?view=all&q=printer",
    "breaching soon": "/?view=breaching",
    "resolved and closed": "/?view=done",
    "live poll, unchanged": None,  # filled in with the current stamp
}


def extra_incidents(count: int) -> None:
    """`count` incidents with two posts each, numbered apart from the demo's."""
    channel = Channel.objects.order_by("pk").first()
    if channel is None:
        raise SystemExit("no channel: the demo setup did not run")
    words = ["vpn", "printer", "wifi", "mail", "laptop", "phone", "teams", "badge", "login", "disk"]
    start = datetime.now(UTC) - timedelta(days=3)
    with transaction.atomic():
        authors = Author.objects.bulk_create(
            Author(
                network=channel.network,
                external_id=f"{BENCH_PREFIX}-a{n}",
                handle=f"@bench{n}",
                name=f"Bench Person {n}",
            )
            for n in range(count)
        )
        incidents = Incident.objects.bulk_create(
            Incident(
                number=f"{BENCH_PREFIX}{n:08d}",
                short_description=f"{words[n % 10]} broken again for bench user {n}",
                impact=1 + n % 3,
                urgency=1 + (n // 3) % 3,
                priority=priority_for(1 + n % 3, 1 + (n // 3) % 3),
                author=author,
                channel=channel,
                opened_at=start + timedelta(seconds=n),
            )
            for n, author in enumerate(authors)
        )
        Post.objects.bulk_create(
            Post(
                network=channel.network,
                external_id=f"{BENCH_PREFIX}-p{n}-{k}",
                channel=channel,
                author=incident.author,
                text=f"my {words[(n + k) % 10]} does not work since {k + 1} days, ticket {n}",
                posted_at=start + timedelta(seconds=n),
                triage_state=Post.Triage.INCIDENT,
                incident=incident,
            )
            for n, incident in enumerate(incidents)
            for k in range(2)
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE socialitsm_incident, socialitsm_post, socialitsm_author")


def extra_remove() -> None:
    """Remove the extra rows with plain deletes: nothing else points at them, and the ORM's
    cascade would first load hundreds of thousands of rows."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM socialitsm_post WHERE external_id LIKE %s", [f"{BENCH_PREFIX}-p%"])
        cursor.execute("DELETE FROM socialitsm_incident WHERE number LIKE %s", [f"{BENCH_PREFIX}%"])
        cursor.execute("DELETE FROM socialitsm_author WHERE external_id LIKE %s", [f"{BENCH_PREFIX}-a%"])


def measure(client: Client, path: str, rounds: int) -> tuple[list[float], list[float], int, int]:
    client.get(path, secure=True)  # warm: templates, the session, the plan cache
    times, cpu = [], []
    status = 0
    queries: list[str] = []
    with connection.execute_wrapper(lambda execute, sql, *rest: queries.append(sql) or execute(sql, *rest)):
        response = client.get(path, secure=True)
    for _ in range(rounds):
        began, began_cpu = time.perf_counter(), time.process_time()
        response = client.get(path, secure=True)
        times.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
        status = response.status_code
    return times, cpu, len(queries), status


SEARCHES = ("vpn", "vpn down", "mika", "printer", "nothingmatchesthis")


def search_plan_ms(text: str) -> tuple[float, int]:
    """PostgreSQL's own execution time of the queue's first page for a search (the rows and
    their time to breach, as the page asks for them), and the number of matches: the database's
    share without connection, scheduling and rendering, which a loaded machine inflates."""
    incidents = selectors.incident_search(Incident.objects.filter(state__in=Incident.OPEN_STATES), text)
    page = selectors.incidents_with_breach_due(incidents).order_by(*selectors.breach_order())[:50]
    sql, params = page.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = plan[0] if isinstance(plan, list) else plan
    return plan["Execution Time"] + plan["Planning Time"], incidents.count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--extra-incidents", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="Keep the extra incidents.")
    args = parser.parse_args()

    settings.ALLOWED_HOSTS = ["*"]
    # Static file URLs without a collected manifest: the page renders as the server would.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    call_command("migrate", verbosity=0)
    demo_setup()
    if args.extra_incidents:
        extra_remove()
        extra_incidents(args.extra_incidents)
    client = Client()
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username=DEMO_USERNAME))
    PAGES["live poll, unchanged"] = f"/queue/live/?since={selectors.queue_stamp()}"

    print(f"database        {connection.vendor} ({connection.settings_dict['NAME']})")
    print(f"incidents       {Incident.objects.count()}  posts {Post.objects.count()}  rounds {args.rounds}")
    print(
        f"{'page':<24}{'median ms':>10}{'p95 ms':>9}{'max ms':>9}{'cpu ms':>9}{'queries':>9}  under {BUDGET_MS:.0f} ms"
    )
    try:
        for name, path in PAGES.items():
            assert path is not None
            times, cpu, queries, status = measure(client, path, args.rounds)
            if status not in (200, 204):
                raise SystemExit(f"{name}: HTTP {status}")
            median = statistics.median(times)
            p95 = sorted(times)[max(0, int(len(times) * 0.95) - 1)]
            print(
                f"{name:<24}{median:>10.1f}{p95:>9.1f}{max(times):>9.1f}{statistics.median(cpu):>9.1f}{queries:>9}  "
                f"{'yes' if median < BUDGET_MS else 'NO'}"
            )
        if connection.vendor == "postgresql":
            print(f"{'search (database only)':<24}{'ms':>10}{'matches':>9}")
            for text in SEARCHES:
                timings = [search_plan_ms(text) for _ in range(5)]
                print(f"{text:<24}{statistics.median(t for t, _ in timings):>10.1f}{timings[0][1]:>9}")
    finally:
        if args.extra_incidents and not args.keep:
            extra_remove()


if __name__ == "__main__":
    main()
