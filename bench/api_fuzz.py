"""API fuzzing: Schemathesis, every check, against a running server on PostgreSQL; no 5xx allowed.

    python bench/api_fuzz.py [--examples 20] [--max-time 180] [--seed N] [--keep]

DATABASE_URL must name a PostgreSQL server: the run gets a database of its own there
(<name>_fuzz: created, migrated, seeded with a lead, an API token, a webhook channel and a few
incidents, dropped afterwards unless --keep). gunicorn serves the project on a free loopback port;
Schemathesis reads /api/schema/ and runs all its phases and checks with the lead's token, at
most --examples cases per operation and --max-time seconds in all. Prints the operations and
requests, failures by check, and every 5xx the server answered (from its access log, with the
exception it logged); exits 1 on any 5xx.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
KEY = "m0UwIJ6Xw6JhcnP6yQ0hU8cN6vC9bN1w5oVtJkQy3bE="
ACCESS_FORMAT = "%(s)s %(m)s %(U)s"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fuzz_database(url: str) -> tuple[str, str]:
    """The URL of a fresh database next to the one `url` names, and its name."""
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'socialitsm'}_fuzz"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}")), name


def database_drop(url: str, name: str) -> None:
    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SEED = """
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token
from socialitsm.connectors import InboundAuthor, InboundPost
from socialitsm.models import Channel, Post, WatchRule
from socialitsm.roles import LEAD_GROUP
from socialitsm.services.incidents import incident_open_from_post
from socialitsm.services.ingest import posts_ingest

lead = get_user_model().objects.create_user("fuzz.lead", "fuzz.lead@example.com", "fuzz-password-0123")
lead.groups.add(Group.objects.get(name=LEAD_GROUP))
# An integrator too, so the ITSM connection endpoints are fuzzed past their permission check.
lead.user_permissions.add(*Permission.objects.filter(codename__endswith="_itsmconnection"))
channel = Channel.objects.create(
    name="Fuzz hooks", slug="fuzz-hooks", network="webhook", credentials={"secret": "fuzz-secret"}
)
rule = WatchRule.objects.create(channel=channel, name="complaints", query="helpdesk")
now = timezone.now()
posts = [
    InboundPost(
        external_id=f"fuzz-{i}",
        author=InboundAuthor(external_id=f"fuzz-u{i}", handle=f"@fuzz{i}"),
        text=f"VPN down again, third time this week ({i})",
        posted_at=now - timedelta(minutes=5),
    )
    for i in range(3)
]
posts_ingest(channel=channel, posts=posts, rule=rule, process=False)
for post in Post.objects.filter(channel=channel).order_by("external_id"):
    with transaction.atomic():
        incident_open_from_post(post=post, rule=rule, service=None, urgency=2)
print("TOKEN", Token.objects.create(user=lead).key)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=20, help="at most this many cases per operation")
    parser.add_argument("--max-time", type=int, default=180, help="seconds for the whole Schemathesis run")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the fuzz database and the reports")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        parser.error("set DATABASE_URL to a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/socialitsm")
    fuzz_url, name = fuzz_database(url)
    work = Path(tempfile.mkdtemp(prefix="socialitsm-fuzz-"))
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "SOCIALITSM_ENV_FILE": "",
        "SECRET_KEY": "fuzz-only-secret-key-0123456789-0123456789-0123456789",
        "SOCIALITSM_ENCRYPTION_KEYS": os.environ.get("SOCIALITSM_ENCRYPTION_KEYS", KEY),
        "DATABASE_URL": fuzz_url,
        # Tasks the API enqueues land in a broker folder of this run; nothing consumes them.
        "CELERY_BROKER_URL": "filesystem://",
        "SOCIALITSM_VAR_DIR": str(work / "var"),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        # Rate limits would answer most of the run with 429: the point is what the inputs do.
        **{
            f"SOCIALITSM_{name}_RATE": "1000000/minute"
            for name in ("INGEST", "INGEST_REFUSED", "API_USER", "API_ADDRESS", "API_AUTH_FAILURE")
        },
    }
    server: subprocess.Popen | None = None
    try:
        run = lambda *a: subprocess.run(  # noqa: E731, S603
            [sys.executable, "manage.py", *a], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        )
        run("migrate", "-v0")
        seeded = re.search(r"^TOKEN (\w+)$", run("shell", "-c", SEED).stdout, re.M)
        if seeded is None:
            raise SystemExit("seeding the fuzz database printed no token")
        token = seeded.group(1)
        access_log, error_log = work / "access.log", work / "error.log"
        server = subprocess.Popen(  # noqa: S603
            [
                *(sys.executable, "-m", "gunicorn", "project.wsgi", "--bind", f"127.0.0.1:{port}"),
                *("--workers", "2", "--timeout", "60", "--no-control-socket"),
                *("--access-logfile", str(access_log), "--access-logformat", ACCESS_FORMAT),
            ],
            cwd=ROOT,
            env=env,
            # Django logs each 500 with its traceback on stderr.
            stdout=error_log.open("w"),
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code < 500:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        reports = work / "reports"
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{base}/api/schema/",
            *("--checks", "all", "--header", f"Authorization: Token {token}"),
            *("--max-examples", str(args.examples), "--max-time", str(args.max_time)),
            *("--request-timeout", "30", "--report", "json,junit", "--report-dir", str(reports)),
            *(("--seed", str(args.seed)) if args.seed is not None else ()),
        ]
        started = time.monotonic()
        fuzz = subprocess.run(  # noqa: S603
            command, cwd=work, env={**os.environ, "NO_COLOR": "1"}
        )
        elapsed = time.monotonic() - started
        time.sleep(1)  # the access log is written after each answer
        return summarize(access_log, error_log, reports, fuzz.returncode, elapsed)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        if args.keep:
            print(f"kept: database {name}, reports and logs in {work}")
        else:
            database_drop(url, name)
            shutil.rmtree(work, ignore_errors=True)


def summarize(access_log: Path, error_log: Path, reports: Path, exit_code: int, elapsed: float) -> int:
    answers = [m.groups() for m in re.finditer(r"^(\d{3}) (\S+) (.*)$", access_log.read_text(), re.M)]
    answers = [a for a in answers if a[2] != "/healthz"]
    statuses = Counter(status[0] + "xx" for status, _, _ in answers)
    errors = Counter(f"{status} {method} {path}" for status, method, path in answers if status.startswith("5"))
    report = next((json.loads(p.read_text()) for p in sorted(reports.glob("json-*.json"))), {})
    operations = report.get("operations", {}).get("tested", 0)
    cases = report.get("test_cases", {}).get("generated", 0)
    failures = [f"{f['code']} {f['title']}: {f['count']}" for f in report.get("failures", [])]
    print()
    print(f"api fuzz: {operations} operations, {cases} test cases, {len(answers)} requests in {elapsed:.0f} s")
    print(f"api fuzz: answers {dict(sorted(statuses.items()))}")
    print("api fuzz: failures by check: " + ("; ".join(failures) or "none"))
    print(f"api fuzz: 5xx answers: {sum(errors.values())}")
    for request, count in errors.most_common():
        print(f"  {count:4d}  {request}")
    for path, exception in sorted(set(server_errors(error_log.read_text()))):
        print(f"  {path}: {exception[:200]}")
    print(f"api fuzz: schemathesis exited {exit_code}")
    return 1 if errors else 0


def server_errors(log: str) -> list[tuple[str, str]]:
    """(path, the exception's last line) for each 500 Django logged."""
    found = []
    for block in re.split(r"^.*ERROR django\.request: Internal Server Error: ", log, flags=re.M)[1:]:
        path = block.split("\n", 1)[0]
        raised = re.findall(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit)\b.*)$", block, re.M)
        found.append((path, raised[-1] if raised else "(no traceback)"))
    return found


if __name__ == "__main__":
    sys.exit(main())
