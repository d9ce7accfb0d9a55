"""The running stack for the latency and load benchmarks: a database of their own, gunicorn and
real Celery workers on Redis, each a process of this machine on the loopback address.

DATABASE_URL must name a PostgreSQL server (the run gets `<name>_bench` there, dropped after
unless kept) and CELERY_BROKER_URL a Redis database (its queues are emptied at the start).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
KEY = "m0UwIJ6Xw6JhcnP6yQ0hU8cN6vC9bN1w5oVtJkQy3bE="
QUEUES = "default,io,ingest,classify,replies,itsm"
WEBHOOK_SECRET = "bench-secret"  # noqa: S105 - a bench-only channel in a throwaway database

SEED = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from socialitsm.models import Channel, WatchRule
from socialitsm.roles import LEAD_GROUP

lead = get_user_model().objects.create_user("bench.lead", "bench.lead@example.com", "bench-password-0123")
lead.groups.add(Group.objects.get(name=LEAD_GROUP))
for n in range({channels}):
    channel = Channel.objects.create(
        name=f"Bench hooks {{n}}", slug=f"bench-hooks-{{n}}", network="webhook", credentials={{"secret": "{secret}"}}
    )
    WatchRule.objects.create(channel=channel, name="complaints", query="")
print("TOKEN", Token.objects.create(user=lead).key)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _admin_url(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


class Stack:
    def __init__(
        self,
        *,
        workers: int = 1,
        web_workers: int = 2,
        web_threads: int = 0,
        web_class: str = "",
        channels: int = 1,
        encoder: bool = False,
    ) -> None:
        url = os.environ.get("DATABASE_URL", "")
        broker = os.environ.get("CELERY_BROKER_URL", "")
        if not url.startswith(("postgres://", "postgresql://")) or not broker.startswith("redis://"):
            raise SystemExit("set DATABASE_URL to PostgreSQL and CELERY_BROKER_URL to Redis (redis://127.0.0.1:6379/N)")
        parts = urlsplit(url)
        self.db_name = f"{parts.path.lstrip('/') or 'socialitsm'}_bench"
        self.database_url = urlunsplit(parts._replace(path=f"/{self.db_name}"))
        self.broker = broker
        self.workers, self.web_workers, self.channels = workers, web_workers, channels
        # 0 and "" leave gunicorn.conf.py's threads and worker class.
        self.web_threads, self.web_class = web_threads, web_class
        self.work = Path(tempfile.mkdtemp(prefix="socialitsm-bench-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []
        self.named: dict[str, subprocess.Popen] = {}
        self.token = ""
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "SOCIALITSM_ENV_FILE": "",
            "SECRET_KEY": "bench-only-secret-key-0123456789-0123456789-0123456789",
            "SOCIALITSM_ENCRYPTION_KEYS": os.environ.get("SOCIALITSM_ENCRYPTION_KEYS", KEY),
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": broker,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "SOCIALITSM_VAR_DIR": str(self.work / "var"),
            "SOCIALITSM_CLASSIFIER_ENCODER": "1" if encoder else "0",
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",
            # The benchmarks measure throughput, not the limits that protect it.
            **{
                f"SOCIALITSM_{name}_RATE": "off"
                for name in ("INGEST", "INGEST_REFUSED", "API_USER", "API_ADDRESS", "API_AUTH_FAILURE")
            },
        }

    def start(self) -> Stack:
        with psycopg.connect(_admin_url(self.database_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        redis.Redis.from_url(self.broker).flushdb()
        self.manage("migrate", "--noinput")
        seed = SEED.format(channels=self.channels, secret=WEBHOOK_SECRET)
        out = self.manage("shell", "-c", seed)
        self.token = next(line.split()[1] for line in out.splitlines() if line.startswith("TOKEN"))
        self.spawn(
            "web",
            "-m",
            "gunicorn",
            "project.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.web_workers),
            *(("--threads", str(self.web_threads)) if self.web_threads else ()),
            *(("--worker-class", self.web_class) if self.web_class else ()),
            "--no-control-socket",
        )
        for n in range(self.workers):
            self.spawn(
                f"worker{n}",
                "-m",
                "celery",
                "-A",
                "project",
                "worker",
                "-Q",
                QUEUES,
                "--pool",
                "solo",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"bench{n}@%h",
                "-l",
                "info",
            )
        self._wait_ready()
        return self

    def manage(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True, capture_output=True, text=True
        )
        return done.stdout

    def spawn(self, name: str, *args: str) -> None:
        log = (self.work / f"{name}.log").open("w")
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        self.named[name] = process

    def cpu_seconds(self, prefix: str) -> float:
        """CPU seconds (user + system) used so far by the processes whose name starts with
        `prefix` ("web", "worker") and their children (gunicorn's workers)."""
        return sum(tree_cpu_seconds(p.pid) for name, p in self.named.items() if name.startswith(prefix))

    def rss_mb(self, prefix: str) -> float:
        """Resident memory (MB) of the processes named `prefix`* and their children."""
        return sum(tree_rss_mb(p.pid) for name, p in self.named.items() if name.startswith(prefix))

    def _wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                web = requests.get(f"{self.base}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                web = False
            logs = [(self.work / f"worker{n}.log").read_text() for n in range(self.workers)]
            if web and all(" ready." in log for log in logs):
                return
            if any(p.poll() is not None for p in self.processes):
                break
            time.sleep(0.5)
        self.stop()
        raise SystemExit(f"the stack did not start; logs in {self.work}")

    def stop(self, keep: bool = False) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
        if not keep:
            with psycopg.connect(_admin_url(self.database_url), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    def db(self) -> psycopg.Connection:
        return psycopg.connect(self.database_url, autocommit=True)


@contextmanager
def running(keep: bool = False, **options):
    stack = Stack(**options)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop(keep=keep)
        print(f"logs: {stack.work}")


def _proc_tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc (Linux)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def tree_cpu_seconds(pid: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for member in _proc_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def tree_rss_mb(pid: int) -> float:
    total = 0
    for member in _proc_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total / 1024


def post_body(external_id: str, author: int, text: str, posted_at: str) -> bytes:
    import json

    return json.dumps(
        {
            "id": external_id,
            "text": text,
            "created_at": posted_at,
            "author": {"id": f"u-{author}", "handle": f"@user{author}"},
        }
    ).encode()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]
