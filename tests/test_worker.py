"""End to end through a real Celery worker process, PostgreSQL and Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from project.celery import app
from socialitsm.connectors.replay import DEMO_FILE
from socialitsm.connectors.webhook import SIGNATURE_HEADER, sign
from socialitsm.models import Channel, Incident, Post, Reply
from socialitsm.services.replies import reply_queue

from .factories import ChannelFactory, WatchRuleFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
ROOT = Path(__file__).resolve().parent.parent


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(tmp_path):
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "SECRET_KEY": settings.SECRET_KEY,
        "SOCIALITSM_ENCRYPTION_KEYS": ",".join(settings.SOCIALITSM_ENCRYPTION_KEYS),
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "SOCIALITSM_VAR_DIR": str(tmp_path),
        "SOCIALITSM_ALLOW_PRIVATE_URLS": "1",
        "CONN_MAX_AGE": "0",
    }
    log = tmp_path / "worker.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "project",
            "worker",
            "-Q",
            settings.SOCIALITSM_WORKER_QUEUES,
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "info",
            "-n",
            "test@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    conf = app.conf
    eager = conf.task_always_eager
    conf.task_always_eager = False
    try:
        yield process
    finally:
        conf.task_always_eager = eager
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        print(log.read_text())


def wait_for(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"condition not met within {timeout} s")


class _ReplyEndpoint(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"body": json.loads(body), "signature": self.headers[SIGNATURE_HEADER], "raw": body})
        payload = json.dumps({"id": f"remote-{len(self.received)}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def reply_endpoint():
    _ReplyEndpoint.received = []
    server = HTTPServer(("127.0.0.1", 0), _ReplyEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/replies", _ReplyEndpoint.received
    server.shutdown()


def test_webhook_post_becomes_incident_and_reply_is_sent_by_worker(worker, reply_endpoint, client, agent):
    url, received = reply_endpoint
    channel = ChannelFactory(
        network="webhook", slug="hooks", config={"reply_url": url}, credentials={"secret": "wh-secret"}
    )
    WatchRuleFactory(channel=channel)
    body = json.dumps(
        {
            "id": "wh-1",
            "text": "VPN down again, third time this week",
            "created_at": "2026-11-26T08:15:00Z",
            "author": {"id": "u-1", "handle": "@maria"},
        }
    ).encode()
    response = client.post(
        "/api/v1/ingest/hooks/",
        body,
        content_type="application/json",
        **{"HTTP_X_SOCIALITSM_SIGNATURE": sign("wh-secret", body)},
    )
    assert response.status_code == 202, response.content

    incident = wait_for(lambda: Incident.objects.filter(posts__external_id="wh-1").first())
    assert incident.service.slug == "vpn"
    assert Post.objects.get(external_id="wh-1").triage_state == "incident"

    post = incident.posts.get()
    reply = reply_queue(
        incident=incident, post=post, text="Sorry Maria, we're on it.", visibility="direct", agent=agent
    )
    wait_for(lambda: Reply.objects.filter(pk=reply.pk, status="sent").exists())
    reply.refresh_from_db()
    assert reply.external_id == "remote-1"
    assert received[0]["body"]["text"] == "Sorry Maria, we're on it."
    assert received[0]["body"]["visibility"] == "direct"
    assert received[0]["signature"] == sign("wh-secret", received[0]["raw"])
    incident.refresh_from_db()
    assert incident.first_response_at == reply.sent_at


def test_beat_poll_task_replays_demo_stream_through_worker(worker):
    channel = ChannelFactory(
        network="replay", slug="demo", config={"path": str(DEMO_FILE), "batch": 10}, poll_interval=3600
    )
    WatchRuleFactory(channel=channel)
    from socialitsm.tasks import channels_poll_due_task

    channels_poll_due_task.delay()
    wait_for(lambda: Post.objects.filter(channel=channel).exclude(triage_state="pending").count() == 10)
    assert Channel.objects.get(pk=channel.pk).rules.get().cursor == {"line": 10, "round": 0}
    assert Incident.objects.count() >= 1
