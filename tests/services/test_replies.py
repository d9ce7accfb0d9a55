from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from socialitsm.exceptions import ApplicationError, PermanentError, TransientError
from socialitsm.models import Incident, Reply
from socialitsm.services.replies import reply_mark_failed, reply_queue, reply_retry, reply_send, work_recover
from socialitsm.services.routing import posts_process

from ..factories import PostFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident_post():
    post = PostFactory(text="VPN down again, third time this week")
    posts_process(post_ids=[post.pk])
    post.refresh_from_db()
    return post.incident, post


def queue(incident, post, agent, text="Sorry about that, we are on it.", visibility="public") -> Reply:
    return reply_queue(incident=incident, post=post, text=text, visibility=visibility, agent=agent)


@pytest.mark.parametrize("visibility", ["public", "direct"])
def test_reply_is_queued_then_sent(incident_post, agent, fake_network, django_capture_on_commit_callbacks, visibility):
    incident, post = incident_post
    with django_capture_on_commit_callbacks(execute=True):
        reply = queue(incident, post, agent, visibility=visibility)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.external_id) == ("sent", 1, "fake-1")
    assert fake_network.sent == [
        {
            "id": "fake-1",
            "to": post.external_id,
            "text": "Sorry about that, we are on it.",
            "visibility": visibility,
            "key": str(reply.idempotency_key),
        }
    ]
    incident.refresh_from_db()
    assert incident.first_response_at == reply.sent_at
    assert list(incident.events.values_list("kind", flat=True))[-3:] == ["reply_queued", "reply_sent", "first_response"]


def test_second_reply_keeps_first_response_time(incident_post, agent, django_capture_on_commit_callbacks):
    incident, post = incident_post
    with django_capture_on_commit_callbacks(execute=True):
        first = queue(incident, post, agent)
    with django_capture_on_commit_callbacks(execute=True):
        queue(incident, post, agent, text="Fixed now.")
    first.refresh_from_db()
    incident.refresh_from_db()
    assert incident.first_response_at == first.sent_at
    assert incident.events.filter(kind="first_response").count() == 1


def test_queued_reply_does_not_count_as_response(incident_post, agent):
    incident, post = incident_post
    queue(incident, post, agent)
    incident.refresh_from_db()
    assert incident.first_response_at is None


@pytest.mark.parametrize(
    ("text", "visibility", "field"),
    [("", "public", "text"), ("x" * 501, "public", "text"), ("hi", "shout", "visibility")],
)
def test_invalid_reply_is_refused(incident_post, agent, text, visibility, field):
    incident, post = incident_post
    with pytest.raises(ApplicationError) as info:
        queue(incident, post, agent, text=text, visibility=visibility)
    assert info.value.field == field
    assert Reply.objects.count() == 0


def test_reply_on_closed_incident_is_refused(incident_post, agent):
    incident, post = incident_post
    Incident.objects.filter(pk=incident.pk).update(state=Incident.State.CLOSED)
    incident.refresh_from_db()
    with pytest.raises(ApplicationError, match="closed"):
        queue(incident, post, agent)
    assert Reply.objects.count() == 0


def test_reply_to_a_post_of_another_incident_is_refused(incident_post, agent):
    incident, _ = incident_post
    other = PostFactory(text="Email is down for everyone")
    posts_process(post_ids=[other.pk])
    other.refresh_from_db()
    with pytest.raises(ApplicationError, match="not part of"):
        queue(incident, other, agent)


def test_transient_error_requeues_for_retry(incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    reset = timezone.now() + timedelta(minutes=5)
    fake_network.errors.append(TransientError("HTTP 429", status=429, retry_at=reset))
    with pytest.raises(TransientError):
        reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.error, reply.retry_after) == ("queued", 1, "HTTP 429", reset)
    assert fake_network.sent == []
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts) == ("sent", 2)


def test_permanent_error_marks_failed_and_retry_requeues(
    incident_post, agent, fake_network, django_capture_on_commit_callbacks
):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    fake_network.errors.append(PermanentError("HTTP 422: status is too long", status=422))
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.error) == ("failed", "HTTP 422: status is too long")
    assert incident.events.filter(kind="reply_failed").count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert reply_retry(reply=reply) is True
    reply.refresh_from_db()
    assert reply.status == "sent"


def test_sent_reply_is_never_sent_twice(incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    reply_send(reply=reply)
    assert reply_send(reply=reply) is None
    assert len(fake_network.sent) == 1


def test_mark_failed_does_not_undo_a_sent_reply(incident_post, agent):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    reply_send(reply=reply)
    reply_mark_failed(reply=reply, error="late failure report")
    reply.refresh_from_db()
    assert reply.status == "sent"


def test_reply_abandoned_mid_send_is_reclaimed_after_lease(incident_post, agent, fake_network, settings):
    settings.SOCIALITSM_SEND_LEASE_SECONDS = 60
    incident, post = incident_post
    reply = queue(incident, post, agent)
    Reply.objects.filter(pk=reply.pk).update(status="sending", claimed_at=timezone.now() - timedelta(seconds=30))
    assert reply_send(reply=reply) is None
    Reply.objects.filter(pk=reply.pk).update(claimed_at=timezone.now() - timedelta(seconds=90))
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert reply.status == "sent"
    assert len(fake_network.sent) == 1


def test_recovery_sweep_requeues_stale_work(incident_post, agent, monkeypatch):
    incident, post = incident_post
    stale = timezone.now() - timedelta(hours=1)
    fresh_reply = queue(incident, post, agent)
    old_reply = queue(incident, post, agent, text="older")
    waiting = queue(incident, post, agent, text="rate limited")
    Reply.objects.filter(pk__in=[old_reply.pk, waiting.pk]).update(created_at=stale)
    Reply.objects.filter(pk=waiting.pk).update(retry_after=timezone.now() + timedelta(minutes=10))
    pending = PostFactory(text="Wifi keeps dropping", ingested_at=stale)
    sent, processed = [], []
    monkeypatch.setattr("socialitsm.tasks.reply_send_task.delay", sent.append)
    monkeypatch.setattr("socialitsm.tasks.posts_process_task.delay", processed.append)
    assert work_recover() == {"posts": 1, "replies": 1}
    assert sent == [old_reply.pk]
    assert processed == [[pending.pk]]
    assert fresh_reply.pk not in sent


# --- a retry never sends twice ------------------------------------------------------------------


@pytest.mark.parametrize("visibility", ["public", "direct"])
def test_a_retry_after_the_network_took_the_reply_records_that_copy(incident_post, agent, fake_network, visibility):
    incident, post = incident_post
    reply = queue(incident, post, agent, visibility=visibility)
    fake_network.answers_lost = 1
    with pytest.raises(TransientError):
        reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.external_id) == ("queued", 1, "")
    assert fake_network.lookups == 0  # a first attempt has nothing to look for
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.external_id) == ("sent", 2, "fake-1")
    assert [m["id"] for m in fake_network.sent] == ["fake-1"]
    assert fake_network.lookups == 1
    assert incident.events.filter(kind="reply_sent", new_value="fake-1").count() == 1


def test_a_copy_that_went_out_before_the_post_was_deleted_is_recorded_sent(incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    fake_network.answers_lost = 1
    with pytest.raises(TransientError):
        reply_send(reply=reply)
    assert fake_network.gone_lookups == [[post.external_id]]
    # The author deletes the post after our reply reached it: the copy is found first.
    fake_network.gone[post.external_id] = "deleted"
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id, reply.error) == ("sent", "fake-1", "")
    assert (fake_network.lookups, fake_network.gone_lookups) == (1, [[post.external_id]])
    assert [m["id"] for m in fake_network.sent] == ["fake-1"]


def test_a_retry_without_a_copy_to_a_deleted_post_fails_unsent(incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    fake_network.errors.append(TransientError("HTTP 503", status=503))
    with pytest.raises(TransientError):
        reply_send(reply=reply)
    fake_network.gone[post.external_id] = "deleted"
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.error) == (
        "failed",
        "the post was deleted by its author, so it cannot be answered in public; send a direct message instead",
    )
    assert (fake_network.lookups, fake_network.gone_lookups, fake_network.sent) == (
        1,
        [[post.external_id], [post.external_id]],
        [],
    )


def test_a_deleted_post_look_up_that_fails_on_a_retry_is_retried_later(incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    Reply.objects.filter(pk=reply.pk).update(attempts=1)
    fake_network.gone_lookup_errors.append(TransientError("timed out"))
    with pytest.raises(TransientError):
        reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.error) == ("queued", 2, "timed out")
    assert (fake_network.lookups, fake_network.sent) == (1, [])


def test_a_reply_left_sending_by_a_dead_worker_is_found_not_resent(incident_post, agent, fake_network, settings):
    settings.SOCIALITSM_SEND_LEASE_SECONDS = 60
    incident, post = incident_post
    reply = queue(incident, post, agent, visibility="direct")
    # The network took it; the worker died before it could record the answer.
    fake_network.sent.append(
        {"id": "fake-9", "to": post.external_id, "text": reply.text, "visibility": "direct", "key": "k"}
    )
    Reply.objects.filter(pk=reply.pk).update(
        status="sending", attempts=1, claimed_at=timezone.now() - timedelta(seconds=90)
    )
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.external_id) == ("sent", 2, "fake-9")
    assert len(fake_network.sent) == 1


def test_a_retry_that_finds_no_copy_sends_once(incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    fake_network.errors.append(TransientError("HTTP 503", status=503))
    with pytest.raises(TransientError):
        reply_send(reply=reply)
    assert fake_network.sent == []
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == ("sent", "fake-1")
    assert (len(fake_network.sent), fake_network.lookups) == (1, 1)


def test_a_look_up_that_fails_is_retried_later_and_nothing_is_sent(incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    Reply.objects.filter(pk=reply.pk).update(attempts=1)
    fake_network.lookup_errors.append(TransientError("listing timed out"))
    with pytest.raises(TransientError):
        reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.error) == ("queued", 2, "listing timed out")
    assert reply.retry_after is not None
    assert fake_network.sent == []


def test_a_look_up_that_is_refused_fails_the_reply_without_sending(incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    Reply.objects.filter(pk=reply.pk).update(attempts=1)
    fake_network.lookup_errors.append(PermanentError("HTTP 403: missing scope", status=403))
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.error) == ("failed", "HTTP 403: missing scope")
    assert fake_network.sent == []


def test_a_copy_recorded_by_another_reply_is_not_taken_for_this_one(incident_post, agent, fake_network):
    incident, post = incident_post
    first = queue(incident, post, agent, text="On it")
    reply_send(reply=first)
    second = queue(incident, post, agent, text="On it")
    fake_network.errors.append(TransientError("HTTP 503", status=503))
    with pytest.raises(TransientError):
        reply_send(reply=second)
    reply_send(reply=second)
    second.refresh_from_db()
    assert (second.status, second.external_id) == ("sent", "fake-2")
    third = queue(incident, post, agent, text="On it")
    fake_network.answers_lost = 1
    with pytest.raises(TransientError):
        reply_send(reply=third)
    reply_send(reply=third)
    third.refresh_from_db()
    # fake-1 and fake-2 belong to the first two; the lost answer was fake-3.
    assert (third.status, third.external_id) == ("sent", "fake-3")
    assert [m["id"] for m in fake_network.sent] == ["fake-1", "fake-2", "fake-3"]
