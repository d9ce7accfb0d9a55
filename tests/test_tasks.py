from __future__ import annotations

from datetime import timedelta

import pytest
from celery.app.task import Task
from django.db import transaction
from django.utils import timezone

from socialitsm import tasks
from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Channel, Incident, Post, Reply, SlaPolicy
from socialitsm.services.incidents import incident_open_from_post
from socialitsm.services.replies import reply_queue
from socialitsm.services.routing import posts_process

from .factories import PostFactory, WatchRuleFactory, inbound

pytestmark = pytest.mark.django_db


@pytest.fixture
def reply(agent, fake_network, monkeypatch):
    post = PostFactory(text="Email is down for everyone")
    posts_process(post_ids=[post.pk])
    post.refresh_from_db()
    return reply_queue(incident=post.incident, post=post, text="We're on it.", visibility="public", agent=agent)


def test_channel_poll_task_ingests(fake_network):
    rule = WatchRuleFactory()
    fake_network.inbox[rule.channel.slug] = [inbound("t-1")]
    tasks.channel_poll_task(rule.channel.pk)
    assert Post.objects.get().external_id == "t-1"


@pytest.mark.parametrize("disabled", [True, False])
def test_channel_poll_task_skips_vanished_or_disabled_channel(fake_network, disabled):
    rule = WatchRuleFactory()
    fake_network.inbox[rule.channel.slug] = [inbound("t-1")]
    channel_id = rule.channel.pk
    if disabled:
        Channel.objects.filter(pk=channel_id).update(enabled=False)
    else:
        channel_id += 1000
    tasks.channel_poll_task(channel_id)
    assert Post.objects.count() == 0


def test_posts_process_task_routes():
    post = PostFactory(text="VPN down again, third time this week")
    tasks.posts_process_task([post.pk])
    assert Incident.objects.count() == 1


def test_reply_send_task_sends(reply, fake_network):
    tasks.reply_send_task(reply.pk)
    reply.refresh_from_db()
    assert reply.status == "sent"
    assert len(fake_network.sent) == 1


def test_reply_send_task_with_vanished_reply_does_nothing(fake_network):
    tasks.reply_send_task(999_999)
    assert fake_network.sent == []


def test_permanent_error_is_not_retried(reply, fake_network):
    fake_network.errors.extend(
        [PermanentError("authentication refused (HTTP 401)", status=401), TransientError("never reached")]
    )
    tasks.reply_send_task.apply(args=[reply.pk])
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.error) == ("failed", 1, "authentication refused (HTTP 401)")
    assert len(fake_network.errors) == 1


@pytest.fixture
def no_propagate():
    """Eager retries re-run in place only when failures are not propagated straight away."""
    conf = tasks.reply_send_task.app.conf
    before = conf.task_eager_propagates
    conf.task_eager_propagates = False
    yield
    conf.task_eager_propagates = before


def test_transient_error_is_retried(reply, fake_network, no_propagate):
    fake_network.errors.append(TransientError("HTTP 503", status=503))
    tasks.reply_send_task.apply(args=[reply.pk])
    reply.refresh_from_db()
    assert (reply.status, reply.attempts) == ("sent", 2)


def test_exhausted_retries_mark_the_reply_failed(reply, fake_network, no_propagate):
    fake_network.errors.extend([TransientError("HTTP 503", status=503)] * 6)
    result = tasks.reply_send_task.apply(args=[reply.pk])
    assert isinstance(result.result, TransientError)
    reply.refresh_from_db()
    assert reply.status == "failed"
    assert reply.attempts == 6
    assert reply.error == "gave up after 6 attempts: HTTP 503"
    assert fake_network.sent == []


def test_rate_limit_retry_waits_for_reset(monkeypatch):
    seen = {}

    def fake_retry(
        self, args=None, kwargs=None, exc=None, throw=True, eta=None, countdown=None, max_retries=None, **options
    ):
        seen.update(eta=eta, countdown=countdown)

    monkeypatch.setattr(Task, "retry", fake_retry)
    reset = timezone.now() + timedelta(minutes=7)
    tasks.reply_send_task.retry(exc=TransientError("HTTP 429", status=429, retry_at=reset), countdown=3)
    assert seen == {"eta": reset, "countdown": None}
    tasks.reply_send_task.retry(exc=TransientError("HTTP 503", status=503), countdown=3)
    assert seen == {"eta": None, "countdown": 3}


@pytest.mark.usefixtures("any_clock")
def test_recover_task_requeues(reply, monkeypatch):
    Reply.objects.filter(pk=reply.pk).update(created_at=timezone.now() - timedelta(hours=1))
    sent = []
    monkeypatch.setattr("socialitsm.tasks.reply_send_task.delay", sent.append)
    tasks.work_recover_task()
    assert sent == [reply.pk]


@pytest.mark.usefixtures("any_clock")
def test_sla_sweep_task_announces_a_breach():
    SlaPolicy.objects.create(name="P1", priority=1, first_response_minutes=15, resolution_minutes=240)
    post = PostFactory(posted_at=timezone.now() - timedelta(minutes=20), ingested_at=timezone.now())
    post.rule.default_impact = 1
    with transaction.atomic():
        incident = incident_open_from_post(post=post, rule=post.rule, service=None, urgency=1)

    tasks.sla_sweep_task()
    tasks.sla_sweep_task()

    assert list(incident.events.filter(kind__startswith="sla_").values_list("kind", "field")) == [
        ("sla_breached", "first_response")
    ]


@pytest.mark.usefixtures("any_clock")
def test_sla_recompute_open_task_applies_an_edited_policy():
    policy = SlaPolicy.objects.create(name="P4", priority=4, first_response_minutes=60, resolution_minutes=480)
    post = PostFactory(posted_at=timezone.now(), ingested_at=timezone.now())
    with transaction.atomic():
        incident = incident_open_from_post(post=post, rule=post.rule, service=None, urgency=2)
    SlaPolicy.objects.filter(pk=policy.pk).update(first_response_minutes=30)

    tasks.sla_recompute_open_task()

    incident.refresh_from_db()
    assert incident.response_due_at == post.posted_at + timedelta(minutes=30)


def test_recheck_task_looks_up_the_posts_of_open_incidents_and_redacts_the_gone(fake_network):
    live = PostFactory(text="VPN down again", external_id="live-1")
    gone = PostFactory(rule=live.rule, text="Mail down again", external_id="gone-1")
    posts_process(post_ids=[live.pk, gone.pk])
    fake_network.gone = {"gone-1": "deleted"}

    tasks.channels_recheck_due_task()

    assert fake_network.gone_lookups == [["live-1", "gone-1"]]
    assert list(Post.objects.order_by("pk").values_list("external_id", "text", "gone_reason")) == [
        ("live-1", "VPN down again", ""),
        ("gone-1", "[deleted by the author]", "deleted"),
    ]
