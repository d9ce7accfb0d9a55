"""Ingest benchmark: N posts through ingest, classify and route into the configured database.

    python bench/ingest.py [-n 20000] [--batch 500] [--workers 1] [--encoder] [--keep]
    python bench/ingest.py --memory 1000000 [--batch 500] [--every 50000]

Uses DATABASE_URL like the application (SQLite under var/ when unset). Prints posts/s for
ingest alone, the fast classification pass alone, classify+route and the whole pipeline, and
what the posts became; the pipeline runs the fast pass (SOCIALITSM_CLASSIFIER_ENCODER off) and
the encoder pass is timed on its own over the same texts unless --no-encoder-pass (--encoder
runs the pipeline with it). With --workers N, classify+route runs in N processes at once, as N
Celery workers would (batches of one author may wait for each other's lock). Rows it creates
are removed afterwards unless --keep.

--memory N streams N posts through ingest and routing in batches, in this one process as a
worker would, generating them as it goes, and prints the resident memory (RSS) every --every
posts: it should stay flat.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-0123456789-0123456789")
os.environ.setdefault("SOCIALITSM_ENCRYPTION_KEYS", "m0UwIJ6Xw6JhcnP6yQ0hU8cN6vC9bN1w5oVtJkQy3bE=")
os.environ["SOCIALITSM_CLASSIFIER_ENCODER"] = "1" if "--encoder" in sys.argv else "0"

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

from socialitsm import classify  # noqa: E402
from socialitsm.connectors import InboundAuthor, InboundPost  # noqa: E402
from socialitsm.models import Author, Channel, Incident, IncidentEvent, Post, WatchRule  # noqa: E402
from socialitsm.services.ingest import posts_ingest  # noqa: E402
from socialitsm.services.routing import catalogue_load, posts_process  # noqa: E402

COMPLAINTS = [
    "VPN down again, third time this week",
    "helpdesk :(",
    "Outlook keeps crashing with 0x800CCC0E #fail",
    "wifi on the 3rd floor is broken AGAIN, can't join any call",
    "can't log in to the portal, SSO loop since this morning",
    "printer on floor 2 not working, whole team waiting",
    "Teams drops every call after 5 minutes, unusable",
    "SAP is down and payroll is due at 5pm!!",
    "Le VPN ne marche plus depuis ce matin",
    "Drucker geht schon wieder nicht",
]
NOISE = [
    "Shout out to the helpdesk, fixed my laptop in 5 minutes!",
    "Anyone up for lunch at the canteen?",
    "Great match last night",
    "We're hiring a service desk analyst, apply now",
    "thanks, works now",
]


def make_posts(n: int, run: str, first: int = 0, authors: int = 0) -> list[InboundPost]:
    rng = random.Random(42 + first)
    start = datetime.now(UTC) - timedelta(hours=2)
    posts = []
    for i in range(first, first + n):
        author = rng.randrange(authors or max(1, n // 10))
        follow_up = i > 10 and rng.random() < 0.1
        text = rng.choice(COMPLAINTS if rng.random() < 0.6 else NOISE)
        posts.append(
            InboundPost(
                external_id=f"{run}-{i}",
                author=InboundAuthor(f"{run}-u{author}", f"@user{author}", f"User {author}"),
                text=f"{text} #{i}",
                posted_at=start + timedelta(milliseconds=i * 10),
                conversation_id=f"{run}-c{author}",
                in_reply_to=f"{run}-{rng.randrange(max(0, i - 1000), i)}" if follow_up else "",
                language="en",
            )
        )
    return posts


def rss_mb() -> float:
    """This process's resident memory, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_run(total: int, batch: int, every: int, keep: bool) -> None:
    """Stream `total` posts through ingest and routing, `batch` at a time, printing RSS; at the
    end, how much RSS moved after the first `every` posts (the warm-up: classifier caches,
    the catalogue, the connection)."""
    from django.conf import settings

    run = f"mem{uuid.uuid4().hex[:8]}"
    channel = Channel.objects.create(name=run, slug=run, network="webhook", listen_mode="push")
    rule = WatchRule.objects.create(channel=channel, name="bench", kind="search")
    # Authors come back over the whole run, as they do in a year of posts.
    started, cpu_started = time.perf_counter(), time.process_time()
    print(f"posts {total} in batches of {batch}; DEBUG {settings.DEBUG}; RSS at start {rss_mb():.0f} MB")
    samples: list[tuple[int, float]] = []
    done = 0
    while done < total:
        posts = make_posts(min(batch, total - done), run, first=done, authors=max(1, total // 10))
        ids = posts_ingest(channel=channel, posts=posts, rule=rule, process=False).pending_ids
        posts_process(post_ids=ids)
        done += len(posts)
        if done % every < batch or done == total:
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            samples.append((done, rss_mb()))
            print(
                f"{done:>9} posts  {elapsed:8.1f} s  {done / elapsed:6.0f} posts/s  "
                f"{done / cpu:6.0f} posts/cpu-s  RSS {samples[-1][1]:7.1f} MB",
                flush=True,
            )
    after_warm_up = [rss for _, rss in samples[1:]] or [samples[-1][1]]
    print(
        f"RSS after the first {samples[0][0]} posts: min {min(after_warm_up):.1f} MB, "
        f"max {max(after_warm_up):.1f} MB, end {samples[-1][1]:.1f} MB "
        f"(first sample {samples[0][1]:.1f} MB)"
    )
    if not keep:
        _cleanup(channel, run)


def _cleanup(channel: Channel, run: str) -> None:
    incident_ids = list(Incident.objects.filter(channel=channel).values_list("id", flat=True))
    IncidentEvent.objects.filter(incident_id__in=incident_ids).delete()
    Post.objects.filter(channel=channel).delete()
    Incident.objects.filter(parent_id__in=incident_ids).update(parent=None)
    Incident.objects.filter(id__in=incident_ids).delete()
    Author.objects.filter(external_id__startswith=f"{run}-").delete()
    channel.delete()


def _route(batch: list[int]) -> None:
    posts_process(post_ids=batch)
    connections.close_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="posts to push (default 20000)")
    parser.add_argument("--batch", type=int, default=500, help="posts per ingest call (default 500)")
    parser.add_argument("--workers", type=int, default=1, help="processes routing in parallel (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the rows afterwards")
    parser.add_argument("--encoder", action="store_true", help="run the pipeline with the encoder pass on")
    parser.add_argument("--no-encoder-pass", action="store_true", help="skip timing the encoder pass alone")
    parser.add_argument("--memory", type=int, default=0, help="stream this many posts and print RSS")
    parser.add_argument("--every", type=int, default=50_000, help="with --memory: print every this many posts")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    if args.memory:
        memory_run(args.memory, args.batch, args.every, args.keep)
        return
    run = f"bench{uuid.uuid4().hex[:8]}"
    channel = Channel.objects.create(name=run, slug=run, network="webhook", listen_mode="push")
    rule = WatchRule.objects.create(channel=channel, name="bench", kind="search")
    posts = make_posts(args.n, run)
    incidents_before = Incident.objects.count()

    started, cpu_started = time.perf_counter(), time.process_time()
    ids: list[int] = []
    for i in range(0, len(posts), args.batch):
        ids += posts_ingest(channel=channel, posts=posts[i : i + args.batch], rule=rule, process=False).pending_ids
    ingested, cpu_ingested = time.perf_counter(), time.process_time()
    batches = [ids[i : i + args.batch] for i in range(0, len(ids), args.batch)]
    if args.workers > 1:
        connections.close_all()  # each forked process opens its own connection
        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("fork")) as pool:
            list(pool.map(_route, batches))
    else:
        for batch in batches:
            _route(batch)
    done, cpu_done = time.perf_counter(), time.process_time()

    texts = [(p.text, p.language) for p in posts]
    catalogue = catalogue_load()[1]
    classify.verdict_many(texts[:10], catalogue=catalogue, encoder=False)  # loaded, as a worker has it
    fast_started = time.perf_counter()
    classify.verdict_many(texts, catalogue=catalogue, encoder=False)
    fast = time.perf_counter() - fast_started
    encoder_pass = None
    if not args.no_encoder_pass:
        sample = texts[:2000]
        classify.verdict_many(sample[:10], catalogue=catalogue, encoder=True)
        encoder_started = time.perf_counter()
        classify.verdict_many(sample, catalogue=catalogue, encoder=True)
        encoder_pass = (len(sample), time.perf_counter() - encoder_started)

    states = {state: Post.objects.filter(channel=channel, triage_state=state).count() for state in Post.Triage.values}
    created = Incident.objects.count() - incidents_before
    total = done - started
    print(f"database        {connection.vendor} ({connection.settings_dict['NAME']})")
    print(f"posts           {args.n} in batches of {args.batch}, {args.workers} routing process(es)")
    # CPU seconds of this process (not PostgreSQL's): on a busy machine the wall time says more
    # about the neighbours than about the code.
    print(f"{'':15} {'wall':>8}    {'posts/s':>9}          {'cpu of this process':>8}")
    print(
        f"ingest          {ingested - started:8.2f} s  {args.n / (ingested - started):9.0f} posts/s"
        f"  {cpu_ingested - cpu_started:8.2f} s cpu  {args.n / (cpu_ingested - cpu_started):9.0f} posts/cpu-s"
    )
    print(f"fast classify   {fast:8.2f} s  {args.n / fast:9.0f} posts/s  (classifier alone, no database)")
    route_cpu = cpu_done - cpu_ingested
    print(
        f"classify+route  {done - ingested:8.2f} s  {args.n / (done - ingested):9.0f} posts/s"
        + (f"  {route_cpu:8.2f} s cpu  {args.n / route_cpu:9.0f} posts/cpu-s" if args.workers == 1 else "")
    )
    print(f"pipeline        {total:8.2f} s  {args.n / total:9.0f} posts/s")
    print(f"incidents       {created} opened; posts: " + ", ".join(f"{k} {v}" for k, v in states.items()))
    print(f"encoder         {'on' if args.encoder else 'off'} in the pipeline")
    if encoder_pass:
        count, seconds = encoder_pass
        print(f"encoder pass    {seconds:8.2f} s  {count / seconds:9.0f} posts/s  (classifier alone, {count} posts)")

    if not args.keep:
        _cleanup(channel, run)


if __name__ == "__main__":
    main()
