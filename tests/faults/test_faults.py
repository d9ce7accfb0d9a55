"""Faults against real processes: a Celery worker (and beat) on a PostgreSQL and a Redis of this
test's own, killed with SIGKILL in the middle of ingest, routing, reply sending and ITSM pushes,
and a stream running while Redis and then PostgreSQL restart. Afterwards every post is stored
once and routed, every reply sent once, every ITSM record made once, and nothing is left stuck.

The servers are throwaway ones on free ports (the shared ones are never touched); the worker,
beat and stream processes run with tests/faults/settings.py: leases and ticks of seconds.
SOCIALITSM_FAULTS_KEEP=1 keeps the servers' data and the processes' logs afterwards."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

from .servers import PostgresServer, RedisServer

pytestmark = pytest.mark.faults
ROOT = Path(__file__).resolve().parents[2]

# What the worker's connection is doing when it is killed (pg_stat_activity shows the latest
# statement of a transaction that is still open).
INGEST_TRANSACTION = r'^(INSERT INTO "socialitsm_(author|post)"|UPDATE "socialitsm_(channel|watchrule)")'
ROUTING_TRANSACTION = (
    r'^SELECT .*FROM "socialitsm_author".* FOR UPDATE|^INSERT INTO "socialitsm_incident|^UPDATE "socialitsm_post"'
)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s")


class Stack:
    """The throwaway PostgreSQL and Redis, and the processes of a deployment on them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pg = PostgresServer(root)
        self.redis = RedisServer(root)
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.faults.settings",
            "SOCIALITSM_ENV_FILE": "",
            "SECRET_KEY": settings.SECRET_KEY,
            "SOCIALITSM_ENCRYPTION_KEYS": ",".join(settings.SOCIALITSM_ENCRYPTION_KEYS),
            "DATABASE_URL": self.pg.url,
            "CELERY_BROKER_URL": self.redis.url,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "SOCIALITSM_VAR_DIR": str(root / "var"),
            # The receivers of these tests listen on 127.0.0.1.
            "SOCIALITSM_ALLOW_PRIVATE_URLS": "1",
            "CONN_MAX_AGE": "0",
        }
        self.worker: subprocess.Popen | None = None
        self.beat: subprocess.Popen | None = None
        self.workers_started = 0

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.root / f"{name}.log").open("a")
        return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> None:
        self.pg.init()
        self.redis.start()
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env, check=True, timeout=120)
        self.worker_start()
        schedule = str(self.root / "celerybeat-schedule")
        self.beat = self._spawn("beat", "-m", "celery", "-A", "project", "beat", "-l", "info", "-s", schedule)

    def worker_start(self) -> None:
        self.workers_started += 1
        # As the Procfile runs it: one process, two threads.
        self.worker = self._spawn(
            "worker",
            *("-m", "celery", "-A", "project", "worker", "-Q", settings.SOCIALITSM_WORKER_QUEUES, "--pool", "threads"),
            *("--concurrency", "2", "--without-gossip", "--without-mingle", "-l", "info"),
            *("-n", f"faults{self.workers_started}@%h"),
        )

    def worker_kill(self) -> None:
        assert self.worker is not None
        os.kill(self.worker.pid, signal.SIGKILL)
        self.worker.wait(timeout=10)

    def worker_kill_when(self, statement: str, timeout: float = 90.0) -> str:
        """SIGKILL the worker the moment one of its transactions is open with a statement that
        matches `statement` (a regular expression); returns that statement."""
        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT query FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = 'socialitsm'"
                    " AND xact_start IS NOT NULL AND state IN ('active', 'idle in transaction') AND query ~* %s",
                    (statement,),
                ).fetchone()
                if row:
                    self.worker_kill()
                    return row[0]
                time.sleep(0.002)
        raise AssertionError(f"no worker transaction matched {statement!r} within {timeout} s")

    def driver(self, command: str, **arguments: Any) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "tests.faults.driver", command, json.dumps(arguments)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    def stop(self) -> None:
        for process in (self.worker, self.beat):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.redis.kill()
        with contextlib.suppress(RuntimeError):  # already down
            self.pg.stop()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # Not under pytest's temporary folder: the postgres user must reach the cluster's folder.
    stack = Stack(Path(tempfile.mkdtemp(prefix="socialitsm-faults-")))
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        for name in ("worker", "beat", "stream"):
            log = stack.root / f"{name}.log"
            if log.exists():
                print(f"--- {name} log (last lines) ---\n" + "\n".join(log.read_text().splitlines()[-40:]))
        if os.environ.get("SOCIALITSM_FAULTS_KEEP") == "1":
            print(f"kept the servers' data and the logs in {stack.root}")
        else:
            shutil.rmtree(stack.root, ignore_errors=True)


class Receiver(ThreadingHTTPServer):
    """A remote that takes signed JSON POSTs: it records every request and keeps one message
    per Idempotency-Key (as receivers are asked to), answering the same id for a repeated key.
    `on_request(n)` runs when the n-th request has been recorded, before the answer."""

    def __init__(self, delay: float) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.delay = delay
        self.lock = threading.Lock()
        self.requests: list[str] = []
        self.messages: dict[str, dict] = {}
        self.on_request: Callable[[int], None] = lambda n: None
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/"

    @staticmethod
    def remote_id(key: str) -> str:
        return "remote-" + hashlib.sha256(key.encode()).hexdigest()[:12]

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        key = self.headers["Idempotency-Key"]
        with self.server.lock:
            self.server.requests.append(key)
            self.server.messages.setdefault(key, body)
            count = len(self.server.requests)
        self.server.on_request(count)
        time.sleep(self.server.delay)
        payload = json.dumps({"id": Receiver.remote_id(key)}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the sender was killed meanwhile

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Callable[[float], Receiver]]:
    started: list[Receiver] = []

    def start(delay: float) -> Receiver:
        started.append(Receiver(delay))
        return started[-1]

    yield start
    for server in started:
        server.close()


def _kill_on_request(stack: Stack, receiver: Receiver, at: int) -> threading.Event:
    """Kill the worker while it waits for the answer to the `at`-th request: the remote has
    done the work, the worker never learns it."""
    killed = threading.Event()

    def hook(count: int) -> None:
        if count == at and not killed.is_set():
            stack.worker_kill()
            killed.set()

    receiver.on_request = hook
    return killed


def _all_routed(stack: Stack, channel: int, total: int) -> Callable[[], bool]:
    """Whether all `total` posts of `channel` are stored and none waits for routing."""

    def check() -> bool:
        stored, pending = stack.pg.query(
            "SELECT count(*), count(*) FILTER (WHERE triage_state = 'pending') FROM socialitsm_post"
            " WHERE channel_id = %s",
            channel,
        )[0]
        return stored == total and pending == 0

    return check


def _post_rows(stack: Stack, channel: int) -> tuple[int, int]:
    """The post rows of `channel`, and how many distinct network ids they hold."""
    rows, distinct = stack.pg.query(
        "SELECT count(*), count(DISTINCT external_id) FROM socialitsm_post WHERE channel_id = %s", channel
    )[0]
    return rows, distinct


def test_ingest_and_routing_lose_nothing_when_the_worker_is_killed(stack, figures):
    total = 500
    channel = stack.driver("ingest_setup", posts=total, batch=50)["channel"]

    during_ingest = stack.worker_kill_when(INGEST_TRANSACTION)
    stack.worker_start()
    during_routing = stack.worker_kill_when(ROUTING_TRANSACTION)
    stack.worker_start()

    wait_for(_all_routed(stack, channel, total), "every replayed post stored and routed", timeout=90)
    rows, distinct = _post_rows(stack, channel)
    states = dict(
        stack.pg.query("SELECT triage_state, count(*) FROM socialitsm_post WHERE channel_id = %s GROUP BY 1", channel)
    )
    cursor = stack.pg.value("SELECT cursor FROM socialitsm_watchrule WHERE channel_id = %s", channel)
    unlinked = stack.pg.value(
        "SELECT count(*) FROM socialitsm_post WHERE channel_id = %s AND triage_state = 'incident'"
        " AND incident_id IS NULL",
        channel,
    )
    assert (rows, distinct) == (total, total)
    assert "pending" not in states
    assert sum(states.values()) == total
    assert states.get("incident", 0) > 0
    assert unlinked == 0
    assert cursor == {"line": total, "round": 0}
    figures(f"faults: killed in ingest at {during_ingest[:60]!r}, in routing at {during_routing[:60]!r}")
    figures(f"faults: posts stored {distinct}/{total} once, routed {total}/{total} {states}, stuck 0")


def test_each_reply_is_sent_once_when_the_worker_is_killed_mid_send(stack, receiver, figures):
    count = 40
    remote = receiver(0.05)
    killed = _kill_on_request(stack, remote, at=count // 3)
    stack.driver("replies_setup", count=count, url=remote.url)
    wait_for(killed.is_set, "the worker killed mid-send", timeout=60)
    stack.worker_start()

    def settled() -> bool:
        return (
            stack.pg.value(
                "SELECT count(*) FROM socialitsm_reply r JOIN socialitsm_channel c ON c.id = r.channel_id"
                " WHERE c.slug = 'faults-replies' AND r.status = 'sent'"
            )
            == count
        )

    wait_for(settled, "every reply sent", timeout=60)
    replies = stack.pg.query(
        "SELECT r.idempotency_key::text, r.external_id, r.status FROM socialitsm_reply r"
        " JOIN socialitsm_channel c ON c.id = r.channel_id WHERE c.slug = 'faults-replies'"
    )
    keys = [key for key, _, _ in replies]
    assert len(replies) == count
    assert sorted(remote.messages) == sorted(keys)
    assert {key: external for key, external, _ in replies} == {key: Receiver.remote_id(key) for key in keys}
    # Only a send in flight when the worker died (one per worker thread) goes out again, and
    # with its idempotency key: the remote keeps it once.
    resent = len(remote.requests) - count
    assert 0 <= resent <= 2
    assert {status for _, _, status in replies} == {"sent"}
    stuck = stack.pg.value("SELECT count(*) FROM socialitsm_reply WHERE status IN ('queued', 'sending')")
    assert stuck == 0
    figures(
        f"faults: replies sent {len(remote.messages)}/{count} once ({len(remote.requests)} requests,"
        f" {resent} resent with its idempotency key), stuck {stuck}"
    )


def test_each_itsm_record_is_made_once_when_the_worker_is_killed_mid_push(stack, receiver, figures):
    count = 25
    remote = receiver(0.02)
    killed = _kill_on_request(stack, remote, at=count)
    setup = stack.driver("itsm_setup", count=count, url=remote.url)
    incidents = setup["incidents"]
    wait_for(killed.is_set, "the worker killed mid-push", timeout=60)
    stack.worker_start()

    def delivered() -> list[str]:
        events = stack.pg.query("SELECT id FROM socialitsm_incidentevent WHERE incident_id = ANY(%s)", incidents)
        expected = sorted(f"faults-itsm:{event_id}" for (event_id,) in events)
        with remote.lock:
            return expected if sorted(remote.messages) == expected else []

    def settled() -> bool:
        busy = stack.pg.value(
            "SELECT count(*) FROM socialitsm_itsmlink WHERE connection_id = %s"
            " AND (status <> 'ok' OR lease_until IS NOT NULL OR remote_id = '')",
            setup["connection"],
        )
        return busy == 0 and bool(delivered())

    wait_for(settled, "every incident's events delivered", timeout=60)
    stack.driver("itsm_disable", slug="faults-itsm")
    expected = delivered()
    links = stack.pg.query(
        "SELECT incident_id, count(*) FROM socialitsm_itsmlink WHERE connection_id = %s GROUP BY 1",
        setup["connection"],
    )
    per_event = stack.pg.query(
        "SELECT d.event_id, count(*) FROM socialitsm_itsmdelivery d JOIN socialitsm_itsmlink l ON l.id = d.link_id"
        " WHERE l.connection_id = %s AND d.action = 'event' AND d.status = 'ok' GROUP BY 1",
        setup["connection"],
    )
    opened = [m["incident"]["number"] for m in remote.messages.values() if m["event"] == "opened"]
    assert sorted(incident for incident, _ in links) == sorted(incidents)
    assert {n for _, n in links} == {1}
    assert len(opened) == len(set(opened)) == count
    assert len(per_event) == len(expected)
    assert {n for _, n in per_event} == {1}
    resent = len(remote.requests) - len(expected)
    assert 0 <= resent <= 2
    stuck = stack.pg.value(
        "SELECT count(*) FROM socialitsm_itsmlink WHERE connection_id = %s"
        " AND (status <> 'ok' OR lease_until IS NOT NULL)",
        setup["connection"],
    )
    figures(
        f"faults: itsm records {len(opened)}/{count} once, events {len(remote.messages)}/{len(expected)} once"
        f" ({len(remote.requests)} requests, {resent} resent with its idempotency key), stuck {stuck}"
    )


class MastodonServer:
    """A Mastodon server for one hashtag: the streaming API pushes each new status to every open
    connection; the tag timeline serves what a reconnecting client missed (min_id paging)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.statuses: list[dict] = []
        self.changed = threading.Condition()
        self.connections = 0
        self.closing = threading.Event()
        self.server = serve(self._stream, "127.0.0.1", 0, process_request=self._rest)
        self.port = self.server.socket.getsockname()[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, i: int) -> None:
        status = {
            "id": str(113000000000000000 + i),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "visibility": "public",
            "language": "en",
            "content": f"<p>VPN down again, the helpdesk is not answering #{self.tag} ({i})</p>",
            "tags": [{"name": self.tag}],
            "account": {"id": f"{900 + i}", "acct": f"user{i}@remote.example"},
            "url": f"https://remote.example/@user{i}/{i}",
        }
        with self.changed:
            self.statuses.append(status)
            self.changed.notify_all()

    def _rest(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.startswith("/api/v1/streaming"):
            return None
        path, _, query = request.path.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        body = b"[]"
        if path == f"/api/v1/timelines/tag/{self.tag}":
            min_id, limit = int(params.get("min_id", "0")), int(params.get("limit", "20"))
            with self.changed:
                newer = [s for s in self.statuses if int(s["id"]) > min_id][:limit]
            body = json.dumps(list(reversed(newer))).encode()
        headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return Response(200, "OK", headers, body)

    def _stream(self, connection: ServerConnection) -> None:
        with self.changed:
            sent = len(self.statuses)
            self.connections += 1
        while not self.closing.is_set():
            with self.changed:
                self.changed.wait_for(lambda start=sent: len(self.statuses) > start, timeout=0.5)
                fresh = self.statuses[sent:]
            try:
                for status in fresh:
                    frame = {"stream": ["hashtag", self.tag], "event": "update", "payload": json.dumps(status)}
                    connection.send(json.dumps(frame))
            except ConnectionClosed:
                return  # the client went away; it catches up from the timeline when it is back
            sent += len(fresh)

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()


def test_a_stream_loses_nothing_while_redis_and_postgresql_restart(stack, figures):
    total = 300
    server = MastodonServer("faultsdown")
    channel = stack.driver("stream_setup", base_url=f"http://127.0.0.1:{server.port}", tag=server.tag)["channel"]
    stream = stack._spawn("stream", "manage.py", "socialitsm_stream", "faults-stream", "--rescan", "1")
    try:
        wait_for(lambda: server.connections, "the stream connected", timeout=30)
        posts = lambda: stack.pg.value("SELECT count(*) FROM socialitsm_post WHERE channel_id = %s", channel)  # noqa: E731
        for i in range(total):
            server.publish(i)
            if i == total // 5:
                wait_for(posts, "the first streamed posts stored")
                stack.redis.kill()
                time.sleep(1.0)
                stack.redis.start()
            if i == total // 2:
                stack.pg.stop()
                time.sleep(2.0)
                stack.pg.start()
            time.sleep(0.02)

        routed = _all_routed(stack, channel, total)
        restarts = 0

        def supervised() -> bool:
            # Celery's worker can exit on a broker that went away while it acknowledged a task
            # ("Unrecoverable error"); the deployment restarts it (restart: unless-stopped), so
            # does this test, and the posts it held are delivered again or swept up.
            nonlocal restarts
            assert stack.worker is not None
            if stack.worker.poll() is not None:
                restarts += 1
                stack.worker_start()
            return routed()

        wait_for(supervised, "every streamed post stored and routed", timeout=90)
        assert stream.poll() is None, "the stream process died"
        rows, distinct = _post_rows(stack, channel)
        health = stack.pg.value("SELECT health FROM socialitsm_channel WHERE id = %s", channel)
        stuck = stack.pg.value("SELECT count(*) FROM socialitsm_post WHERE triage_state = 'pending'")
        assert (rows, distinct) == (total, total)
        assert stuck == 0
        assert health == "ok"
        figures(
            f"faults: streamed posts stored {distinct}/{total} once across a Redis and a PostgreSQL restart,"
            f" {server.connections} stream connections, worker restarts {restarts}, stuck {stuck}"
        )
    finally:
        stream.send_signal(signal.SIGTERM)
        try:
            stream.wait(timeout=15)
        except subprocess.TimeoutExpired:
            stream.kill()
        server.close()
