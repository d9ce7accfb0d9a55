from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError, transaction
from django.utils import timezone

from socialitsm import tasks
from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Channel, Incident, Post, Reply, SlaPolicy
from socialitsm.services import replies
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


def test_transient_error_is_recorded_for_a_later_attempt_not_retried_by_celery(reply, fake_network, no_propagate):
    # Six quick failures used to spend Celery's retries in about 25 s and fail the reply.
    fake_network.errors.extend([TransientError("HTTP 503", status=503)] * 6)
    result = tasks.reply_send_task.apply(args=[reply.pk])
    assert result.successful()
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.error) == ("queued", 1, "HTTP 503")
    assert reply.retry_after > timezone.now()
    assert len(fake_network.errors) == 5
    assert fake_network.sent == []


def test_replies_send_due_task_sends_a_reply_whose_next_attempt_is_due(reply, fake_network):
    fake_network.errors.append(TransientError("HTTP 503", status=503))
    tasks.reply_send_task(reply.pk)
    tasks.replies_send_due_task()
    assert Reply.objects.get(pk=reply.pk).status == "queued"
    Reply.objects.filter(pk=reply.pk).update(retry_after=timezone.now() - timedelta(seconds=1))
    tasks.replies_send_due_task()
    reply.refresh_from_db()
    assert (reply.status, reply.attempts) == ("sent", 2)
    assert len(fake_network.sent) == 1


def test_unexpected_error_mid_send_marks_the_reply_failed(reply, fake_network, no_propagate, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("id")

    monkeypatch.setattr("socialitsm.connectors.fake.FakeConnector.reply", broken)
    result = tasks.reply_send_task.apply(args=[reply.pk])
    assert isinstance(result.result, KeyError)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.error) == (
        "failed",
        1,
        "stopped by an unexpected error (KeyError: 'id')",
    )
    assert reply.incident.events.filter(kind="reply_failed").count() == 1


def test_unexpected_error_before_the_claim_leaves_the_reply_queued(reply, fake_network, no_propagate, monkeypatch):
    def broken(*, reply):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("socialitsm.services.replies.reply_send", broken)
    result = tasks.reply_send_task.apply(args=[reply.pk])
    assert isinstance(result.result, OperationalError)
    reply.refresh_from_db()
    assert (reply.status, reply.error) == ("queued", "")
    assert reply.incident.events.filter(kind="reply_failed").count() == 0


def test_canceled_reply_task_sends_nothing(reply, fake_network, agent):
    replies.reply_cancel(reply=reply, actor=agent)
    tasks.reply_send_task(reply.pk)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts) == ("canceled", 0)
    assert fake_network.sent == []


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


@pytest.fixture
def status_post(agent):
    from socialitsm.models import StatusPost

    from .factories import ChannelFactory, IncidentFactory

    return StatusPost.objects.create(
        incident=IncidentFactory(is_major=True), channel=ChannelFactory(), text="We know e-mail is down", agent=agent
    )


def test_status_post_send_task_sends(status_post, fake_network):
    tasks.status_post_send_task(status_post.pk)
    status_post.refresh_from_db()
    assert (status_post.status, status_post.external_id) == ("sent", "fake-status-1")
    tasks.status_post_send_task(status_post.pk)
    assert len(fake_network.statuses) == 1


def test_status_post_send_task_with_vanished_row_does_nothing(fake_network):
    tasks.status_post_send_task(999_999)
    assert fake_network.statuses == []


def test_status_post_permanent_error_is_not_retried(status_post, fake_network):
    fake_network.errors.extend([PermanentError("forbidden (HTTP 403)", status=403), TransientError("never reached")])
    tasks.status_post_send_task.apply(args=[status_post.pk])
    status_post.refresh_from_db()
    assert (status_post.status, status_post.attempts, status_post.error) == ("failed", 1, "forbidden (HTTP 403)")
    assert len(fake_network.errors) == 1


def test_status_posts_send_due_task_sends_one_whose_next_attempt_is_due(status_post, fake_network):
    status_post.attempts = 1
    status_post.retry_after = timezone.now() - timedelta(seconds=1)
    status_post.save()
    tasks.status_posts_send_due_task()
    status_post.refresh_from_db()
    assert (status_post.status, status_post.attempts) == ("sent", 2)
