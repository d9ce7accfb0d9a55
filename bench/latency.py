"""Latency benchmark: signed webhook posts one per request at a steady rate, through gunicorn and
ONE real Celery worker on Redis into PostgreSQL; time from push to routed post (visible incident).

    python bench/latency.py [--rate 100] [--seconds 60] [--workers 1] [--web-workers 2]
                            [--web-threads N] [--web-class sync] [--encoder] [--keep]

DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis) as for bench/stack.py. Threads send
the posts on one schedule (a late one is sent at once, never skipped), one thread
reads the database every 20 ms for posts routing has decided. Prints p50/p95/p99 from
push to decided (and to a visible incident) and per stage (the request, push to stored, the
answer to decided), the backlog of pending posts every 5 s, what is still pending at the end,
whether any post was lost or stored twice, and the CPU seconds the web and worker processes
spent per post. Exits 1 when a post was lost or doubled.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import WEBHOOK_SECRET, percentile, post_body, running

from socialitsm.signing import sign

COMPLAINTS = [
    "VPN down again, third time this week",
    "Outlook keeps crashing with 0x800CCC0E #fail",
    "wifi on the 3rd floor is broken AGAIN, can't join any call",
    "can't log in to the portal, SSO loop since this morning",
    "printer on floor 2 not working, whole team waiting",
    "Teams drops every call after 5 minutes, unusable",
    "SAP is down and payroll is due at 5pm!!",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100, help="posts per second (default 100)")
    parser.add_argument("--seconds", type=float, default=60, help="how long to push (default 60)")
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes (default 1)")
    parser.add_argument("--encoder", action="store_true", help="classify with the sentence encoder too")
    parser.add_argument("--senders", type=int, default=48, help="threads sending on the schedule (default 48)")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--web-threads", type=int, default=0, help="threads per gunicorn worker (gunicorn.conf.py)")
    parser.add_argument("--web-class", default="", help="gunicorn worker class (gunicorn.conf.py: gthread)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()

    with running(
        keep=args.keep,
        workers=args.workers,
        encoder=args.encoder,
        web_workers=args.web_workers,
        web_threads=args.web_threads,
        web_class=args.web_class,
    ) as stack:
        pushed: dict[str, float] = {}
        # Wall-clock send time (to compare with the server's ingested_at), and the answer's time.
        sent_at: dict[str, float] = {}
        answered: dict[str, float] = {}
        stored_at: dict[str, float] = {}
        status_of: dict[str, int] = {}
        statuses: dict[int, int] = {}
        decided: dict[str, tuple[float, bool]] = {}
        backlog: list[tuple[float, int]] = []
        stop = threading.Event()

        total = int(args.rate * args.seconds)
        schedule = itertools.count()
        schedule_lock = threading.Lock()
        start = time.monotonic()

        def push() -> None:
            # Senders share one schedule, so a slow answer delays no other post's sending.
            session = requests.Session()
            url = f"{stack.base}/api/v1/ingest/bench-hooks-0/"
            while True:
                with schedule_lock:
                    n = next(schedule)
                if n >= total:
                    return
                time.sleep(max(0.0, start + n / args.rate - time.monotonic()))
                external_id = f"lat-{n}"
                rng = random.Random(n)
                body = post_body(
                    external_id, rng.randrange(2000), rng.choice(COMPLAINTS), datetime.now(UTC).isoformat()
                )
                headers = {"Content-Type": "application/json", "X-SocialITSM-Signature": sign(WEBHOOK_SECRET, body)}
                sent_at[external_id] = time.time()
                pushed[external_id] = time.monotonic()
                try:
                    status = session.post(url, data=body, headers=headers, timeout=30).status_code
                except requests.RequestException:
                    status = 0
                answered[external_id] = time.monotonic()
                status_of[external_id] = status
                with schedule_lock:
                    statuses[status] = statuses.get(status, 0) + 1

        def watch() -> None:
            with stack.db() as db:
                last_sample = 0.0
                mark = 0
                while not stop.is_set():
                    now = time.monotonic()
                    # Taken before reading what was decided: every post below the oldest one
                    # pending then (or below the newest, when none was) is read in this round.
                    oldest, newest = db.execute(
                        "SELECT min(id) FILTER (WHERE triage_state = 'pending'), max(id) FROM socialitsm_post"
                    ).fetchone()
                    rows = db.execute(
                        "SELECT external_id, incident_id IS NOT NULL, extract(epoch FROM ingested_at) "
                        "FROM socialitsm_post WHERE triage_state <> 'pending' AND id > %s",
                        (mark,),
                    ).fetchall()
                    for external_id, linked, ingested in rows:
                        decided.setdefault(external_id, (now, linked))
                        stored_at.setdefault(external_id, float(ingested))
                    # Less a margin: a post given its id earlier may commit after the snapshot.
                    mark = max(0, ((oldest - 1) if oldest else (newest or 0)) - 200)
                    if now - last_sample >= 5:
                        pending = db.execute(
                            "SELECT count(*) FROM socialitsm_post WHERE triage_state = 'pending'"
                        ).fetchone()[0]
                        backlog.append((now, pending))
                        last_sample = now
                    time.sleep(0.02)

        watcher = threading.Thread(target=watch, daemon=True)
        cpu_web, cpu_worker = stack.cpu_seconds("web"), stack.cpu_seconds("worker")
        watcher.start()
        started = start
        senders = [threading.Thread(target=push) for _ in range(args.senders)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        pushed_in = time.monotonic() - started
        deadline = time.monotonic() + 60
        while len(decided) < len(pushed) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        watcher.join()

        cpu_web, cpu_worker = stack.cpu_seconds("web") - cpu_web, stack.cpu_seconds("worker") - cpu_worker
        with stack.db() as db:
            rows = [e for (e,) in db.execute("SELECT external_id FROM socialitsm_post WHERE external_id LIKE 'lat-%%'")]
            numbers = db.execute("SELECT count(*), count(DISTINCT number) FROM socialitsm_incident").fetchone()

        accepted = {e for e, status in status_of.items() if status == 202}
        lost, doubled = len(accepted - set(rows)), len(rows) - len(set(rows))
        latencies = [decided[e][0] - t for e, t in pushed.items() if e in decided]
        to_incident = [decided[e][0] - t for e, t in pushed.items() if e in decided and decided[e][1]]
        requests_ = [answered[e] - t for e, t in pushed.items() if e in answered]
        to_stored = [stored_at[e] - sent_at[e] for e in sent_at if e in stored_at]
        after_answer = [decided[e][0] - answered[e] for e in decided if e in answered]
        rate = len(pushed) / pushed_in
        print(f"pushed          {len(pushed)} posts in {pushed_in:.1f} s ({rate:.0f}/s), one per request")
        print(f"answers         {dict(sorted(statuses.items()))}")
        web = f"{args.web_class or 'gthread'}, {args.web_workers} workers"
        print(
            f"stack           gunicorn {web}; {args.workers} Celery worker process(es), encoder "
            f"{'on' if args.encoder else 'off'}"
        )
        for name, values in (
            ("to decided", latencies),
            ("to incident", to_incident),
            ("  request", requests_),
            ("  push->stored", to_stored),
            ("  answer->dec.", after_answer),
        ):
            print(
                f"{name:<15} n={len(values)}  p50 {percentile(values, 50):.3f} s  p95 {percentile(values, 95):.3f} s  "
                f"p99 {percentile(values, 99):.3f} s  max {max(values, default=float('nan')):.3f} s"
            )
        print("backlog         " + ", ".join(f"{at - started:.0f}s:{count}" for at, count in backlog))
        print(f"not decided     {len(pushed) - len(decided)} after waiting 60 s more")
        posts = max(1, len(pushed))
        print(
            f"cpu             web {cpu_web:.1f} s ({cpu_web / posts * 1000:.1f} ms a post), "
            f"worker {cpu_worker:.1f} s ({cpu_worker / posts * 1000:.1f} ms a post); "
            f"worker RSS {stack.rss_mb('worker'):.0f} MB"
        )
        print(f"stored          {len(rows)} rows for {len(accepted)} accepted posts, {numbers[0]} incidents")
        ok = not lost and not doubled and numbers[0] == numbers[1]
        print(f"check           {'ok  ' if ok else 'FAIL'} none lost ({lost}), none twice ({doubled}), numbers once")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
