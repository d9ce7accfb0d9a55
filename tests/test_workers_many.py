"""Four real Celery worker processes on the same queues, as on several machines: every post is
routed exactly once and every incident number is given once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.db.models import Count

from project.celery import app
from socialitsm.connectors import InboundAuthor, InboundPost
from socialitsm.models import Incident, IncidentEvent, Post
from socialitsm.services.ingest import posts_ingest

from .factories import ChannelFactory, WatchRuleFactory
from .test_worker import ROOT, _database_url, wait_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
WORKERS = 4
TEXTS = [
    "VPN down again, cannot work",
    "Outlook keeps crashing with 0x800CCC0E",
    "printer on floor 2 not working, whole team waiting",
    "wifi on the 3rd floor is broken AGAIN",
]


@pytest.fixture
def workers(tmp_path, settings):
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    # Every call that stores posts asks for a drain: the four workers then drain at once.
    settings.SOCIALITSM_DRAIN_CACHE = ""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "SECRET_KEY": settings.SECRET_KEY,
        "SOCIALITSM_ENCRYPTION_KEYS": ",".join(settings.SOCIALITSM_ENCRYPTION_KEYS),
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "SOCIALITSM_VAR_DIR": str(tmp_path),
        "SOCIALITSM_CLASSIFIER_ENCODER": "0",
        "CONN_MAX_AGE": "0",
    }
    logs = [tmp_path / f"worker{n}.log" for n in range(WORKERS)]
    processes = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "project", "worker"),
                *("-Q", settings.SOCIALITSM_WORKER_QUEUES, "--pool=solo", "-n", f"many{n}@%h", "-l", "info"),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        for n, log in enumerate(logs)
    ]
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        wait_for(lambda: all(" ready." in log.read_text() for log in logs), timeout=90)
        yield logs
    finally:
        app.conf.task_always_eager = eager
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _post(n: int, start: datetime) -> InboundPost:
    author = n % 20
    return InboundPost(
        external_id=f"m-{n}",
        author=InboundAuthor(external_id=f"a-{author}", handle=f"@poster{author}"),
        text=f"{TEXTS[author % len(TEXTS)]} #{n}",
        posted_at=start + timedelta(seconds=n),
        conversation_id=f"conv-{author}",
    )


def test_four_workers_route_each_post_once_and_number_each_incident_once(workers):
    channel = ChannelFactory(network="webhook", slug="many")
    rule = WatchRuleFactory(channel=channel)
    start = datetime.now(UTC) - timedelta(minutes=10)
    posts = [_post(n, start) for n in range(300)]
    # Two large batches (tasks of ids shared by the workers) and 100 posts one call each
    # (drains, all four workers draining at once), the same authors throughout.
    posts_ingest(channel=channel, posts=posts[:150], rule=rule)
    for post in posts[150:250]:
        posts_ingest(channel=channel, posts=[post], rule=rule)
    posts_ingest(channel=channel, posts=posts[250:], rule=rule)

    wait_for(lambda: not Post.objects.filter(triage_state=Post.Triage.PENDING).exists(), timeout=120)

    assert Post.objects.count() == 300
    assert Post.objects.filter(triage_state=Post.Triage.INCIDENT).count() == 300
    linked = IncidentEvent.objects.filter(kind=IncidentEvent.Kind.POST_LINKED)
    assert linked.count() == 300
    assert not linked.values("new_value").annotate(n=Count("id")).filter(n__gt=1).exists()
    # One incident per poster (their follow-ups thread into it), however the posts were split.
    children = Incident.objects.filter(is_major=False)
    assert children.count() == 20
    assert sorted(children.values_list("author__external_id", flat=True)) == sorted(f"a-{n}" for n in range(20))
    numbers = list(Incident.objects.values_list("number", flat=True))
    assert len(numbers) == len(set(numbers))
    assert sorted(numbers) == [f"INC{n:07d}" for n in range(1001, 1001 + len(numbers))]
    opened = IncidentEvent.objects.filter(kind=IncidentEvent.Kind.OPENED).values("incident").annotate(n=Count("id"))
    assert {row["n"] for row in opened} == {1}
    majors = Incident.objects.filter(is_major=True).values("service").annotate(n=Count("id"))
    assert all(row["n"] == 1 for row in majors)
    # The work was shared: more than one worker routed posts.
    busy = [log for log in workers if "succeeded" in log.read_text()]
    assert len(busy) >= 2
