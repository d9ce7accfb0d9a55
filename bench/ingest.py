"""Ingest benchmark: N posts through ingest, classify and route into the configured database.

    python bench/ingest.py [-n 20000] [--batch 500] [--workers 2] [--encoder] [--keep]
    python bench/ingest.py --memory 1000000 [--batch 500] [--every 50000]

Uses DATABASE_URL like the application (SQLite under var/ when unset). First the stages one after
the other in this process: ingest, the fast classification pass alone (no database), and
classify+route, with routing's own classification pass told apart from the rest of routing.
Then the whole pipeline on N fresh posts in --workers processes at once, each ingesting and
routing its share of the batches as that many Celery workers would. Each line prints the wall
time, posts/s, and posts per CPU-second counting this process (or the pipeline's processes) and
its PostgreSQL backend (read from /proc when the server runs on this machine). The pipeline
runs the fast pass (SOCIALITSM_CLASSIFIER_ENCODER off); the encoder pass is timed on its own
over the same texts unless --no-encoder-pass (--encoder runs the pipeline with it). When the
server's autovacuum is off, the tables the pipeline writes are vacuumed and analysed before each
part (untimed), as autovacuum would have done by then. Rows it creates are removed afterwards
unless --keep.

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

from project.runtime import GC_THRESHOLD, gc_tune  # noqa: E402
from socialitsm import classify  # noqa: E402
from socialitsm.connectors import InboundAuthor, InboundPost  # noqa: E402
from socialitsm.models import Author, Channel, Incident, IncidentEvent, Post, SlaClock, WatchRule  # noqa: E402
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


class Cpu:
    """CPU seconds of this process and of its PostgreSQL backend (read from /proc when the
    server runs on this machine): on a busy machine the wall time says more about the
    neighbours than about the code, and half the work of a write happens in the database."""

    def __init__(self) -> None:
        self.backend_pid = None
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.backend_pid = cursor.fetchone()[0]
        self.start = self.now()

    def now(self) -> tuple[float, float | None]:
        return time.process_time(), _proc_cpu(self.backend_pid) if self.backend_pid else None

    def spent(self) -> tuple[float, float | None]:
        """(this process, its backend or None) since the last call (or since made)."""
        (own, backend), (own0, backend0) = self.now(), self.start
        self.start = (own, backend)
        return own - own0, (backend - backend0 if backend is not None and backend0 is not None else None)


def _proc_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stage:
    """Wall and CPU time of one stage, added up over its calls."""

    def __init__(self, name: str) -> None:
        self.name, self.wall, self.own, self.backend = name, 0.0, 0.0, 0.0
        self.backend_known = True

    def add(self, wall: float, own: float, backend: float | None) -> None:
        self.wall += wall
        self.own += own
        if backend is None:
            self.backend_known = False
        else:
            self.backend += backend

    def line(self, posts: int, note: str = "") -> str:
        cpu = self.own + (self.backend if self.backend_known else 0.0)
        db = f"{self.backend:6.2f} s db" if self.backend_known else "   n/a db"
        return (
            f"{self.name:15} {self.wall:7.2f} s {posts / self.wall:8.0f} posts/s   "
            f"{self.own:6.2f} s cpu + {db} = {posts / cpu if cpu else float('nan'):7.0f} posts/cpu-s  {note}"
        ).rstrip()


def database_tidy() -> str:
    """VACUUM and ANALYZE the tables the pipeline writes, outside the timed parts, when the
    server's autovacuum is off: otherwise the dead rows of earlier runs and statistics from an
    empty table send the planner to sequential scans that a database in service never sees.
    Returns what was done, for the report."""
    if connection.vendor != "postgresql":
        return "not PostgreSQL"
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        if cursor.fetchone()[0] == "on":
            return "autovacuum on"
        for model in (Author, Post, Incident, IncidentEvent, SlaClock):
            cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(model._meta.db_table)}")
    return "autovacuum off: VACUUM (ANALYZE) before each part"


def _timed_classify(stage: Stage):
    """Wrap routing's classification pass so that its share of routing is told apart."""
    from socialitsm.services import routing

    inner = routing.posts_classify

    def timed(posts, catalogue):
        wall, own = time.perf_counter(), time.process_time()
        try:
            return inner(posts, catalogue)
        finally:
            stage.add(time.perf_counter() - wall, time.process_time() - own, 0.0)

    routing.posts_classify = timed


def _pipeline_worker(job: tuple[int, list[list[InboundPost]]]) -> tuple[float, float, float | None]:
    """Ingest then route each batch, as a worker handling a webhook or a poll would. Returns
    (wall, cpu of the process, cpu of its backend)."""
    channel_id, batches = job
    connections.close_all()  # a forked process opens its own connection
    channel = Channel.objects.get(pk=channel_id)
    rule = channel.rules.get()
    cpu = Cpu()
    started = time.perf_counter()
    for posts in batches:
        posts_process(post_ids=posts_ingest(channel=channel, posts=posts, rule=rule, process=False).pending_ids)
    own, backend = cpu.spent()
    wall = time.perf_counter() - started
    connections.close_all()
    return wall, own, backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="posts to push (default 20000)")
    parser.add_argument("--batch", type=int, default=500, help="posts per ingest call (default 500)")
    parser.add_argument("--workers", type=int, default=2, help="processes running the pipeline at once (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the rows afterwards")
    parser.add_argument("--encoder", action="store_true", help="run the pipeline with the encoder pass on")
    parser.add_argument("--no-encoder-pass", action="store_true", help="skip timing the encoder pass alone")
    parser.add_argument("--memory", type=int, default=0, help="stream this many posts and print RSS")
    parser.add_argument("--every", type=int, default=50_000, help="with --memory: print every this many posts")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    catalogue = catalogue_load()[1]
    classify.verdict_many([("warm up", "en")], catalogue=catalogue)  # loaded, as a worker has it
    # The garbage collector as a Celery worker sets it after loading (project/runtime.py);
    # GC_TUNING=0 leaves Python's defaults. Forked pipeline processes inherit it.
    gc = f"tuned: frozen after loading, threshold {GC_THRESHOLD}" if gc_tune() else "Python defaults"
    print(f"gc              {gc}")
    if args.memory:
        memory_run(args.memory, args.batch, args.every, args.keep)
        return
    runs = []

    # 1. The stages one after the other in this process: ingest, fast classification alone, and
    #    routing (its own classification pass told apart).
    run = f"bench{uuid.uuid4().hex[:8]}"
    channel = Channel.objects.create(name=run, slug=run, network="webhook", listen_mode="push")
    WatchRule.objects.create(channel=channel, name="bench", kind="search")
    runs.append((channel, run))
    rule = channel.rules.get()
    posts = make_posts(args.n, run)
    ingest, fast, route_all, route_classify = (
        Stage("ingest"),
        Stage("fast classify"),
        Stage("classify+route"),
        Stage("  of it classify"),
    )
    _timed_classify(route_classify)
    tidied = database_tidy()
    cpu = Cpu()
    ids: list[int] = []
    for i in range(0, len(posts), args.batch):
        wall = time.perf_counter()
        ids += posts_ingest(channel=channel, posts=posts[i : i + args.batch], rule=rule, process=False).pending_ids
        ingest.add(time.perf_counter() - wall, *cpu.spent())
    database_tidy()
    cpu.spent()
    for i in range(0, len(ids), args.batch):
        wall = time.perf_counter()
        posts_process(post_ids=ids[i : i + args.batch])
        route_all.add(time.perf_counter() - wall, *cpu.spent())
    texts = [(p.text, p.language) for p in posts]
    wall = time.perf_counter()
    for i in range(0, len(texts), args.batch):
        classify.verdict_many(texts[i : i + args.batch], catalogue=catalogue, encoder=False)
    fast.add(time.perf_counter() - wall, *cpu.spent())
    routing = Stage("route")
    routing.add(route_all.wall - route_classify.wall, route_all.own - route_classify.own, route_all.backend)
    routing.backend_known = route_all.backend_known

    # 2. The whole pipeline on fresh posts in --workers processes at once, each ingesting and
    #    routing its share of the batches, as that many Celery workers would.
    run = f"bench{uuid.uuid4().hex[:8]}"
    pipe_channel = Channel.objects.create(name=run, slug=run, network="webhook", listen_mode="push")
    WatchRule.objects.create(channel=pipe_channel, name="bench", kind="search")
    runs.append((pipe_channel, run))
    fresh = make_posts(args.n, run)
    batches = [fresh[i : i + args.batch] for i in range(0, len(fresh), args.batch)]
    jobs = [(pipe_channel.pk, batches[w :: args.workers]) for w in range(args.workers)]
    database_tidy()
    connections.close_all()  # each forked process opens its own connection
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("fork")) as pool:
        results = list(pool.map(_pipeline_worker, jobs))
    pipeline = Stage(f"pipeline x{args.workers}")
    pipeline.add(
        0.0,
        sum(own for _, own, _ in results),
        None if any(b is None for _, _, b in results) else sum(b for _, _, b in results if b is not None),
    )
    pipeline.wall = time.perf_counter() - started

    encoder_pass = None
    if not args.no_encoder_pass:
        sample = texts[:2000]
        classify.verdict_many(sample[:10], catalogue=catalogue, encoder=True)
        encoder_started = time.perf_counter()
        classify.verdict_many(sample, catalogue=catalogue, encoder=True)
        encoder_pass = (len(sample), time.perf_counter() - encoder_started)

    states = {
        state: Post.objects.filter(channel__in=[c for c, _ in runs], triage_state=state).count()
        for state in Post.Triage.values
    }
    created = Incident.objects.filter(channel__in=[c for c, _ in runs]).count()
    print(f"database        {connection.vendor} ({connection.settings_dict['NAME']})")
    print(f"posts           {args.n} in batches of {args.batch}; encoder {'on' if args.encoder else 'off'}")
    print(f"machine         {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"tables          {tidied}")
    # CPU: this process (or the pipeline's processes) plus its PostgreSQL backend(s).
    print(ingest.line(args.n))
    print(fast.line(args.n, "(classifier alone, no database)"))
    print(route_all.line(args.n))
    print(route_classify.line(args.n))
    print(routing.line(args.n, "(classify+route without its classification pass)"))
    sequential = Stage("stages in turn")
    sequential.add(ingest.wall + route_all.wall, ingest.own + route_all.own, ingest.backend + route_all.backend)
    sequential.backend_known = ingest.backend_known and route_all.backend_known
    print(sequential.line(args.n, "(ingest + classify+route, one process)"))
    print(pipeline.line(args.n, f"({args.workers} processes each ingesting and routing its batches)"))
    print(f"incidents       {created} opened; posts: " + ", ".join(f"{k} {v}" for k, v in states.items()))
    if encoder_pass:
        count, seconds = encoder_pass
        print(f"encoder pass    {seconds:7.2f} s {count / seconds:8.0f} posts/s   (classifier alone, {count} posts)")

    if not args.keep:
        for channel, run in runs:
            _cleanup(channel, run)


if __name__ == "__main__":
    main()
