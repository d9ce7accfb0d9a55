"""Load test: API clients and webhook pushers at once against gunicorn, a Celery worker, Redis
and PostgreSQL on this machine.

    python bench/load.py [--minutes 5] [--clients 50] [--pushers 5] [--push-rate 10] [--think 0]
                         [--workers 1] [--web-workers 2] [--web-threads N]

DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis) as for bench/stack.py. Each API client
(a thread with its own session and the lead's token) reads the incident list (plain, filtered,
searched, ordered by time to breach), one incident, the post list (plain and filtered) and the
SLA report, one after another, waiting --think seconds between calls (0: without pause, the
server saturated); each pusher sends signed posts one per request to its own webhook channel
at --push-rate a second. Then it waits for routing to finish and checks: no 5xx answer, every
pushed post stored exactly once and routed, each incident number once. Prints p50/p95/p99 per
endpoint and per kind of call (list, filter, search, detail, report, webhook), and the CPU
seconds of the web and worker processes. Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import WEBHOOK_SECRET, percentile, post_body, running

from socialitsm.signing import sign

TEXTS = [
    "VPN down again, third time this week",
    "Outlook keeps crashing with 0x800CCC0E #fail",
    "printer on floor 2 not working, whole team waiting",
    "Anyone up for lunch at the canteen?",
    "SAP is down and payroll is due at 5pm!!",
]
READS = [
    ("incidents", "/api/v1/incidents/"),
    ("incidents?state", "/api/v1/incidents/?state=new"),
    ("incidents?search", "/api/v1/incidents/?search=vpn"),
    ("incidents?ordering", "/api/v1/incidents/?ordering=breach_due_at"),
    ("incident", "/api/v1/incidents/{incident}/"),
    ("posts", "/api/v1/posts/"),
    ("posts?triage_state", "/api/v1/posts/?triage_state=incident"),
    ("sla report", "/api/v1/reports/sla/"),
]
# The kind of each call, for the summary by kind.
KINDS = {
    "incidents": "list",
    "posts": "list",
    "incidents?state": "filter",
    "incidents?ordering": "filter",
    "posts?triage_state": "filter",
    "incidents?search": "search",
    "incident": "detail",
    "sla report": "report",
    "webhook": "webhook",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5, help="how long to run (default 5)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent API clients (default 50)")
    parser.add_argument("--pushers", type=int, default=5, help="concurrent webhook pushers (default 5)")
    parser.add_argument("--push-rate", type=float, default=10, help="posts a second per pusher (default 10)")
    parser.add_argument("--think", type=float, default=0, help="seconds a client waits between calls (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes (default 1)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--web-threads", type=int, default=0, help="threads per gunicorn worker (gunicorn.conf.py)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()

    with running(
        keep=args.keep,
        workers=args.workers,
        web_workers=args.web_workers,
        web_threads=args.web_threads,
        channels=args.pushers,
    ) as stack:
        timings: dict[str, list[float]] = defaultdict(list)
        statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        errors: list[str] = []
        pushed: list[list[str]] = [[] for _ in range(args.pushers)]
        lock = threading.Lock()
        end = time.monotonic() + args.minutes * 60

        def record(name: str, started: float, status: int) -> None:
            with lock:
                timings[name].append(time.monotonic() - started)
                statuses[name][status] += 1

        def client(n: int) -> None:
            session = requests.Session()
            session.headers["Authorization"] = f"Token {stack.token}"
            rng = random.Random(n)
            incident = ""
            while time.monotonic() < end:
                name, path = rng.choice(READS)
                if "{incident}" in path and not incident:
                    name, path = READS[0]
                started = time.monotonic()
                try:
                    response = session.get(stack.base + path.format(incident=incident), timeout=60)
                except requests.RequestException as exc:
                    errors.append(f"{name}: {exc}")
                    continue
                record(name, started, response.status_code)
                if args.think:
                    time.sleep(args.think)
                if name == "incidents" and response.status_code == 200:
                    results = response.json().get("results") or []
                    if results:
                        incident = str(rng.choice(results)["number"])

        def pusher(n: int) -> None:
            session = requests.Session()
            rng = random.Random(1000 + n)
            url = f"{stack.base}/api/v1/ingest/bench-hooks-{n}/"
            start, sent = time.monotonic(), 0
            while time.monotonic() < end:
                time.sleep(max(0.0, start + sent / args.push_rate - time.monotonic()))
                external_id = f"load-{n}-{sent}"
                body = post_body(external_id, rng.randrange(500), rng.choice(TEXTS), datetime.now(UTC).isoformat())
                headers = {"Content-Type": "application/json", "X-SocialITSM-Signature": sign(WEBHOOK_SECRET, body)}
                started = time.monotonic()
                try:
                    response = session.post(url, data=body, headers=headers, timeout=60)
                except requests.RequestException as exc:
                    errors.append(f"webhook: {exc}")
                    continue
                finally:
                    sent += 1
                record("webhook", started, response.status_code)
                if response.status_code == 202:
                    pushed[n].append(external_id)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        threads += [threading.Thread(target=pusher, args=(n,)) for n in range(args.pushers)]
        cpu_web, cpu_worker = stack.cpu_seconds("web"), stack.cpu_seconds("worker")
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cpu_web, cpu_worker = stack.cpu_seconds("web") - cpu_web, stack.cpu_seconds("worker") - cpu_worker

        accepted = sum(len(ids) for ids in pushed)
        with stack.db() as db:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                pending = db.execute("SELECT count(*) FROM socialitsm_post WHERE triage_state = 'pending'").fetchone()[
                    0
                ]
                if not pending:
                    break
                time.sleep(1)
            stored: dict[str, int] = defaultdict(int)
            for slug, external_id in db.execute(
                "SELECT c.slug, p.external_id FROM socialitsm_post p JOIN socialitsm_channel c ON c.id = p.channel_id"
            ):
                stored[f"{slug}/{external_id}"] += 1
            numbers = db.execute("SELECT count(*), count(DISTINCT number) FROM socialitsm_incident").fetchone()
        expected = {f"bench-hooks-{n}/{e}" for n, ids in enumerate(pushed) for e in ids}
        missing = expected - set(stored)
        twice = [key for key, count in stored.items() if count > 1]
        server_errors = {name: sum(c for s, c in codes.items() if s >= 500) for name, codes in statuses.items()}

        print(
            f"ran             {args.minutes:g} min: {args.clients} API clients, {args.pushers} pushers at "
            f"{args.push_rate:g}/s each, think {args.think:g} s, gunicorn {args.web_workers} workers "
            f"(gunicorn.conf.py class{f', {args.web_threads} threads' if args.web_threads else ''}), "
            f"{args.workers} Celery worker(s)"
        )
        print(f"{'endpoint':<20} {'requests':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  statuses")
        for name in sorted(timings):
            values = timings[name]
            codes = ", ".join(f"{s}:{c}" for s, c in sorted(statuses[name].items()))
            print(
                f"{name:<20} {len(values):>9} {percentile(values, 50) * 1000:>8.0f} "
                f"{percentile(values, 95) * 1000:>8.0f} {percentile(values, 99) * 1000:>8.0f}  {codes}"
            )
        by_kind: dict[str, list[float]] = defaultdict(list)
        for name, values in timings.items():
            by_kind[KINDS.get(name, name)].extend(values)
        print(f"{'kind':<20} {'requests':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
        for kind in sorted(by_kind):
            values = by_kind[kind]
            print(
                f"{kind:<20} {len(values):>9} {percentile(values, 50) * 1000:>8.0f} "
                f"{percentile(values, 95) * 1000:>8.0f} {percentile(values, 99) * 1000:>8.0f}"
            )
        calls = sum(len(values) for values in timings.values())
        print(
            f"cpu             web {cpu_web:.0f} s ({cpu_web / max(1, calls) * 1000:.1f} ms a call, "
            f"{calls / (args.minutes * 60):.0f} calls/s), worker {cpu_worker:.0f} s "
            f"({cpu_worker / max(1, accepted) * 1000:.1f} ms a post)"
        )
        checks = {
            "no 5xx": not any(server_errors.values()),
            "no connection errors": not errors,
            "every accepted post stored": not missing,
            "no post stored twice": not twice,
            "every post routed": not pending,
            "each incident number once": numbers[0] == numbers[1],
        }
        print(
            f"pushed          {accepted / (args.minutes * 60):.1f} posts/s accepted in all "
            f"(asked {args.pushers * args.push_rate:g}/s)"
        )
        print(f"posts           {accepted} accepted, {len(expected & set(stored))} stored, {pending} still pending")
        print(f"incidents       {numbers[0]} ({numbers[1]} distinct numbers)")
        for name, ok in checks.items():
            print(f"check           {'ok  ' if ok else 'FAIL'} {name}")
        for error in errors[:10]:
            print(f"error           {error}")
        return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
