from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from socialitsm import tasks
from socialitsm.backoff import backoff_delay
from socialitsm.exceptions import ApplicationError, ConflictError, PermanentError, TransientError
from socialitsm.models import Incident, IncidentEvent, Reply
from socialitsm.services.recovery import work_recover
from socialitsm.services.replies import (
    replies_send_due,
    reply_cancel,
    reply_mark_failed,
    reply_queue,
    reply_retry,
    reply_send,
)
from socialitsm.services.routing import posts_process

from ..factories import PostFactory

pytestmark = pytest.mark.django_db

# A Thursday morning; nothing here depends on the weekday.
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
DOWN = TransientError("cannot connect to mastodon.example (connection refused)")


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


def test_rate_limited_reply_waits_for_the_reset_then_is_sent(clock, incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    reset = NOW + timedelta(minutes=5)
    fake_network.errors.append(TransientError("HTTP 429", status=429, retry_at=reset))
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.error) == ("queued", 1, "HTTP 429")
    assert (reply.retry_after, reply.retry_until) == (reset, NOW + timedelta(hours=24))
    clock.move_to(reset - timedelta(seconds=1))
    assert reply_send(reply=reply) is None
    assert fake_network.sent == []
    clock.move_to(reset)
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.retry_after) == ("sent", 2, None)
    assert len(fake_network.sent) == 1


def test_permanent_error_marks_failed_at_once_and_retry_requeues(
    incident_post, agent, fake_network, django_capture_on_commit_callbacks
):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    fake_network.errors.append(PermanentError("HTTP 422: status is too long", status=422))
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.error) == ("failed", 1, "HTTP 422: status is too long")
    assert (reply.retry_after, reply.retry_until) == (None, None)
    assert list(incident.events.filter(kind="reply_failed").values_list("message", flat=True)) == [
        "HTTP 422: status is too long"
    ]
    assert replies_send_due(now=timezone.now() + timedelta(days=2)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        reply_retry(reply=reply, actor=agent)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, fake_network.lookups) == ("sent", 2, 1)
    assert len(fake_network.sent) == 1


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


def sweep(clock, fake_network, *, down: bool) -> None:
    """Let the clock reach the next due attempt and run the beat's sweep, with the network
    refusing connections while `down`."""
    fake_network.errors[:] = [DOWN] if down else []
    due = Reply.objects.filter(status="queued").order_by("retry_after").values_list("retry_after", flat=True)[0]
    clock.move_to(due)
    replies_send_due()


def test_reply_outlives_a_server_down_for_minutes_and_is_sent_once(
    clock, incident_post, agent, fake_network, django_capture_on_commit_callbacks
):
    incident, post = incident_post
    fake_network.errors[:] = [DOWN]
    with django_capture_on_commit_callbacks(execute=True):
        reply = queue(incident, post, agent)
    back_at = NOW + timedelta(minutes=20)
    gaps, seen = [], NOW
    while True:
        reply.refresh_from_db()
        assert (reply.status, reply.error) == ("queued", DOWN.message)
        assert reply.retry_until == NOW + timedelta(hours=24)
        gaps.append((reply.retry_after - seen).total_seconds())
        ceiling = backoff_delay(reply.attempts, cap=900)
        assert ceiling / 2 <= gaps[-1] <= ceiling
        # Nothing happens before the next attempt is due.
        clock.move_to(reply.retry_after - timedelta(seconds=1))
        assert replies_send_due() == 0
        seen = reply.retry_after
        if seen >= back_at:
            break
        sweep(clock, fake_network, down=True)
    # Six tries in about 25 s used to be the end; now the reply is still waiting, with the
    # waits doubling: 30 s, 60 s, 120 s, 240 s ... (each jittered into its upper half).
    assert reply.attempts >= 6
    assert [round(backoff_delay(n, cap=900)) for n in range(1, 7)] == [30, 60, 120, 240, 480, 900]
    # Until the cap the jittered ranges do not overlap, so each wait is at least the one before.
    # The sixth is capped at 900 s, and its upper half (450-900 s) overlaps the fifth's (240-480 s).
    assert gaps[:5] == sorted(gaps[:5])
    sweep(clock, fake_network, down=False)
    reply.refresh_from_db()
    assert (reply.status, reply.error, reply.retry_after) == ("sent", "", None)
    assert len(fake_network.sent) == 1
    assert replies_send_due(now=NOW + timedelta(days=2)) == 0
    assert list(incident.events.filter(kind__startswith="reply_").values_list("kind", flat=True)) == [
        "reply_queued",
        "reply_delayed",
        "reply_sent",
    ]
    delayed = incident.events.get(kind="reply_delayed")
    assert (delayed.new_value, delayed.message) == ("retrying until 2026-11-27 09:00 UTC", DOWN.message)


def test_reply_fails_once_the_retry_window_is_spent(clock, incident_post, agent, fake_network, settings):
    settings.SOCIALITSM_REPLY_RETRY_HOURS = 1
    incident, post = incident_post
    reply = queue(incident, post, agent)
    fake_network.errors[:] = [DOWN]
    reply_send(reply=reply)
    attempts_at = [NOW]
    while Reply.objects.get(pk=reply.pk).status == "queued":
        sweep(clock, fake_network, down=True)
        attempts_at.append(timezone.now())
    reply.refresh_from_db()
    window_end = NOW + timedelta(hours=1)
    # The backoff overshooting the window does not skip the last try: it is made as the window closes.
    assert attempts_at[-1] == window_end
    assert all(at < window_end for at in attempts_at[:-1])
    assert (reply.status, reply.attempts, reply.retry_after) == ("failed", len(attempts_at), None)
    assert reply.error == (
        f"gave up after {len(attempts_at)} attempts, retried until 2026-11-26 10:00 UTC; last error: {DOWN.message}"
    )
    assert list(incident.events.filter(kind="reply_failed").values_list("message", flat=True)) == [reply.error]
    assert fake_network.sent == []
    assert replies_send_due(now=NOW + timedelta(days=2)) == 0


def test_no_retry_window_fails_a_reply_at_its_first_transient_error(
    clock, incident_post, agent, fake_network, settings
):
    settings.SOCIALITSM_REPLY_RETRY_HOURS = 0
    incident, post = incident_post
    reply = queue(incident, post, agent)
    fake_network.errors[:] = [DOWN]
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.error) == (
        "failed",
        f"gave up after 1 attempt, retried until 2026-11-26 09:00 UTC; last error: {DOWN.message}",
    )
    assert incident.events.filter(kind="reply_delayed").count() == 0


def test_a_reset_past_the_retry_window_fails_the_reply_now(clock, incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    fake_network.errors[:] = [TransientError("HTTP 429", status=429, retry_at=NOW + timedelta(hours=30))]
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.error) == (
        "failed",
        "HTTP 429; the network asked to wait until 2026-11-27 15:00 UTC, after the retry window closed "
        "(2026-11-27 09:00 UTC)",
    )


def test_a_waiting_reply_is_not_claimed_before_its_next_attempt(clock, incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    fake_network.errors[:] = [DOWN]
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert reply_send(reply=reply) is None
    assert tasks.reply_send_task(reply.pk) is None
    assert Reply.objects.get(pk=reply.pk).attempts == 1
    assert fake_network.sent == []


def _in_state(reply: Reply, state: str) -> Reply:
    changes = {
        "fresh": {},
        "waiting": {"attempts": 3, "error": "HTTP 503", "retry_after": NOW + timedelta(minutes=4)},
        "failed": {"status": "failed", "attempts": 2, "error": "HTTP 422: too long"},
        "sending": {"status": "sending", "attempts": 1, "claimed_at": NOW},
        "sent": {"status": "sent", "attempts": 1, "external_id": "fake-9", "sent_at": NOW},
        "canceled": {"status": "canceled"},
    }[state]
    Reply.objects.filter(pk=reply.pk).update(**changes, retry_until=NOW + timedelta(hours=20) if changes else None)
    reply.refresh_from_db()
    return reply


def _assert_refused(service, *, reply: Reply, actor, refusal: str) -> None:
    """`service` refuses with `refusal` and leaves the reply and the incident's history as they were."""
    before = Reply.objects.filter(pk=reply.pk).values().get()
    events = reply.incident.events.count()
    with pytest.raises(ConflictError) as info:
        service(reply=reply, actor=actor)
    assert info.value.message == refusal
    assert Reply.objects.filter(pk=reply.pk).values().get() == before
    assert reply.incident.events.count() == events


@pytest.mark.parametrize(
    ("state", "refusal"),
    [
        ("waiting", None),
        ("failed", None),
        ("fresh", "this reply is queued and has not failed; it is sent shortly, there is nothing to retry"),
        ("sending", "this reply is being sent right now; wait for the network's answer"),
        ("sent", "this reply was already sent; there is nothing to retry"),
        ("canceled", "this reply was canceled; write it again to send it"),
    ],
)
def test_retry_rules(clock, incident_post, agent, fake_network, django_capture_on_commit_callbacks, state, refusal):
    incident, post = incident_post
    reply = _in_state(queue(incident, post, agent), state)
    if refusal:
        _assert_refused(reply_retry, reply=reply, actor=agent, refusal=refusal)
        assert fake_network.sent == []
        return
    with django_capture_on_commit_callbacks(execute=True):
        retried = reply_retry(reply=reply, actor=agent)
    # The attempts made count as one: the next send looks for a copy of them first.
    assert (retried.status, retried.attempts, retried.error, retried.retry_after, retried.retry_until) == (
        "queued",
        1,
        "",
        None,
        None,
    )
    event = incident.events.get(kind="reply_retried")
    old = {"waiting": "Queued", "failed": "Failed"}[state]
    message = {"waiting": "after 3 attempts: HTTP 503", "failed": "after 2 attempts: HTTP 422: too long"}[state]
    assert (event.actor, event.old_value, event.new_value, event.message) == (agent, old, "Queued", message)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, fake_network.lookups) == ("sent", 2, 1)
    assert len(fake_network.sent) == 1


def test_retry_on_a_closed_incident_is_refused(clock, incident_post, agent, fake_network):
    incident, post = incident_post
    reply = _in_state(queue(incident, post, agent), "failed")
    Incident.objects.filter(pk=incident.pk).update(state=Incident.State.CLOSED)
    with pytest.raises(ConflictError, match="is closed; reopen it to reply"):
        reply_retry(reply=reply, actor=agent)
    assert Reply.objects.get(pk=reply.pk).status == "failed"


@pytest.mark.parametrize(
    ("state", "refusal"),
    [
        ("fresh", None),
        ("waiting", None),
        ("failed", None),
        ("sending", "this reply is being sent right now; wait for the network's answer"),
        ("sent", "this reply was already sent; there is nothing to cancel"),
        ("canceled", "this reply was canceled; write it again to send it"),
    ],
)
def test_cancel_rules(clock, incident_post, agent, fake_network, state, refusal):
    incident, post = incident_post
    reply = _in_state(queue(incident, post, agent), state)
    if refusal:
        _assert_refused(reply_cancel, reply=reply, actor=agent, refusal=refusal)
        return
    canceled = reply_cancel(reply=reply, actor=agent)
    assert (canceled.status, canceled.retry_after) == ("canceled", None)
    event = incident.events.get(kind="reply_canceled")
    old = {"fresh": "Queued", "waiting": "Queued", "failed": "Failed"}[state]
    assert (event.actor, event.old_value, event.new_value, event.message) == (agent, old, "Canceled", reply.text)


def test_a_canceled_reply_is_never_sent(
    clock, incident_post, agent, fake_network, django_capture_on_commit_callbacks, settings
):
    incident, post = incident_post
    # Queued, its task not run yet; then waiting out a backoff: both end canceled.
    fresh = queue(incident, post, agent)
    waiting = _in_state(queue(incident, post, agent, text="second"), "waiting")
    reply_cancel(reply=fresh, actor=agent)
    reply_cancel(reply=waiting, actor=agent)
    later = NOW + timedelta(days=3)
    clock.move_to(later)
    for reply in (fresh, waiting):
        tasks.reply_send_task(reply.pk)
        assert reply_send(reply=reply) is None
    assert replies_send_due() == 0
    assert work_recover()["replies"] == 0
    assert reply_mark_failed(reply=fresh, error="late").status == "canceled"
    assert fake_network.sent == []
    assert set(Reply.objects.values_list("status", flat=True)) == {"canceled"}
    assert IncidentEvent.objects.filter(kind__in=["reply_sent", "reply_failed"]).count() == 0


def test_due_sweep_hands_only_due_waiting_replies_to_workers(clock, incident_post, agent, monkeypatch):
    incident, post = incident_post
    due = _in_state(queue(incident, post, agent), "waiting")
    not_yet = _in_state(queue(incident, post, agent, text="later"), "waiting")
    Reply.objects.filter(pk=not_yet.pk).update(retry_after=NOW + timedelta(minutes=10))
    _in_state(queue(incident, post, agent, text="failed"), "failed")
    queue(incident, post, agent, text="fresh")
    sent = []
    monkeypatch.setattr("socialitsm.tasks.reply_send_task.delay", sent.append)
    clock.move_to(NOW + timedelta(minutes=4))
    assert replies_send_due() == 1
    assert sent == [due.pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_workers_agents_retrying_and_canceling_at_once_send_at_most_once(agent, fake_network, monkeypatch):
    import threading
    import time

    from django.db import connections

    from socialitsm.connectors.fake import FakeConnector

    post = PostFactory(text="VPN down again, third time this week")
    posts_process(post_ids=[post.pk])
    post.refresh_from_db()
    reply = queue(post.incident, post, agent)
    Reply.objects.filter(pk=reply.pk).update(
        attempts=2, error="HTTP 503", retry_after=timezone.now() - timedelta(seconds=1)
    )
    send = FakeConnector.reply

    def slow_send(self, *args, **kwargs):
        time.sleep(0.2)  # the others arrive while the first is inside the network call
        return send(self, *args, **kwargs)

    monkeypatch.setattr(FakeConnector, "reply", slow_send)
    commands = [reply_send] * 4 + [reply_cancel] * 2 + [reply_retry] * 2
    barrier = threading.Barrier(len(commands))
    errors: list[Exception] = []

    def work(command) -> None:
        try:
            barrier.wait()
            if command is reply_send:
                command(reply=reply)
            else:
                command(reply=reply, actor=agent)
        except ConflictError:
            pass
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(command,)) for command in commands]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    reply.refresh_from_db()
    if reply.status == "sent":
        assert len(fake_network.sent) == 1
        assert not IncidentEvent.objects.filter(kind="reply_canceled").exists()
    else:
        assert (reply.status, fake_network.sent) == ("canceled", [])
        assert IncidentEvent.objects.filter(kind="reply_canceled").count() == 1


def test_a_reply_handed_to_a_worker_is_not_handed_over_again_until_its_lease_ends(
    clock, incident_post, agent, monkeypatch, settings
):
    settings.SOCIALITSM_SEND_LEASE_SECONDS = 300
    incident, post = incident_post
    reply = _in_state(queue(incident, post, agent), "waiting")
    sent = []
    monkeypatch.setattr("socialitsm.tasks.reply_send_task.delay", sent.append)
    clock.move_to(NOW + timedelta(minutes=4))
    assert replies_send_due() == 1
    # The workers are busy: the next ticks leave it alone ...
    clock.move_to(NOW + timedelta(minutes=8))
    assert replies_send_due() == 0
    # ... until the task must have been lost.
    clock.move_to(NOW + timedelta(minutes=9, seconds=1))
    assert replies_send_due() == 1
    assert sent == [reply.pk, reply.pk]


# --- a retry never sends twice ------------------------------------------------------------------


def send_when_due(clock, reply: Reply) -> Reply | None:
    """The next attempt, once the backoff of the one before has passed."""
    reply.refresh_from_db()
    if reply.retry_after is not None:
        clock.move_to(reply.retry_after)
    return reply_send(reply=reply)


@pytest.mark.parametrize("visibility", ["public", "direct"])
def test_a_retry_after_the_network_took_the_reply_records_that_copy(
    clock, incident_post, agent, fake_network, visibility
):
    incident, post = incident_post
    reply = queue(incident, post, agent, visibility=visibility)
    fake_network.answers_lost = 1
    assert reply_send(reply=reply).status == "queued"
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.external_id) == ("queued", 1, "")
    assert fake_network.lookups == 0  # a first attempt has nothing to look for
    send_when_due(clock, reply)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.external_id) == ("sent", 2, "fake-1")
    assert [m["id"] for m in fake_network.sent] == ["fake-1"]
    assert fake_network.lookups == 1
    assert incident.events.filter(kind="reply_sent", new_value="fake-1").count() == 1


def test_a_copy_that_went_out_before_the_post_was_deleted_is_recorded_sent(clock, incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    fake_network.answers_lost = 1
    assert reply_send(reply=reply).status == "queued"
    assert fake_network.gone_lookups == [[post.external_id]]
    # The author deletes the post after our reply reached it: the copy is found first.
    fake_network.gone[post.external_id] = "deleted"
    send_when_due(clock, reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id, reply.error) == ("sent", "fake-1", "")
    assert (fake_network.lookups, fake_network.gone_lookups) == (1, [[post.external_id]])
    assert [m["id"] for m in fake_network.sent] == ["fake-1"]


def test_a_retry_without_a_copy_to_a_deleted_post_fails_unsent(clock, incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    fake_network.errors.append(TransientError("HTTP 503", status=503))
    assert reply_send(reply=reply).status == "queued"
    fake_network.gone[post.external_id] = "deleted"
    send_when_due(clock, reply)
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


def test_a_deleted_post_look_up_that_fails_on_a_retry_is_retried_later(clock, incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    Reply.objects.filter(pk=reply.pk).update(attempts=1)
    fake_network.gone_lookup_errors.append(TransientError("timed out"))
    assert reply_send(reply=reply).status == "queued"
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.error) == ("queued", 2, "timed out")
    assert reply.retry_after > timezone.now()
    assert (fake_network.lookups, fake_network.sent) == (1, [])
    # The next attempt asks again, finds the post still there and sends once.
    send_when_due(clock, reply)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts) == ("sent", 3)
    assert (fake_network.lookups, len(fake_network.gone_lookups), len(fake_network.sent)) == (2, 2, 1)


def test_a_reply_left_sending_by_a_dead_worker_is_found_not_resent(clock, incident_post, agent, fake_network, settings):
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
    send_when_due(clock, reply)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.external_id) == ("sent", 2, "fake-9")
    assert len(fake_network.sent) == 1


def test_a_retry_that_finds_no_copy_sends_once(clock, incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    fake_network.errors.append(TransientError("HTTP 503", status=503))
    assert reply_send(reply=reply).status == "queued"
    assert fake_network.sent == []
    send_when_due(clock, reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == ("sent", "fake-1")
    assert (len(fake_network.sent), fake_network.lookups) == (1, 1)


def test_a_look_up_that_fails_is_retried_later_and_nothing_is_sent(clock, incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    Reply.objects.filter(pk=reply.pk).update(attempts=1)
    fake_network.lookup_errors.append(TransientError("listing timed out"))
    assert reply_send(reply=reply).status == "queued"
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.error) == ("queued", 2, "listing timed out")
    assert reply.retry_after > timezone.now()
    assert fake_network.sent == []
    send_when_due(clock, reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id, fake_network.lookups) == ("sent", "fake-1", 2)


def test_a_look_up_that_is_refused_fails_the_reply_without_sending(clock, incident_post, agent, fake_network):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    Reply.objects.filter(pk=reply.pk).update(attempts=1)
    fake_network.lookup_errors.append(PermanentError("HTTP 403: missing scope", status=403))
    send_when_due(clock, reply)
    reply.refresh_from_db()
    assert (reply.status, reply.error) == ("failed", "HTTP 403: missing scope")
    assert fake_network.sent == []


def test_a_copy_recorded_by_another_reply_is_not_taken_for_this_one(clock, incident_post, agent, fake_network):
    incident, post = incident_post
    first = queue(incident, post, agent, text="On it")
    reply_send(reply=first)
    second = queue(incident, post, agent, text="On it")
    fake_network.errors.append(TransientError("HTTP 503", status=503))
    assert reply_send(reply=second).status == "queued"
    send_when_due(clock, second)
    second.refresh_from_db()
    assert (second.status, second.external_id) == ("sent", "fake-2")
    third = queue(incident, post, agent, text="On it")
    fake_network.answers_lost = 1
    assert reply_send(reply=third).status == "queued"
    send_when_due(clock, third)
    third.refresh_from_db()
    # fake-1 and fake-2 belong to the first two; the lost answer was fake-3.
    assert (third.status, third.external_id) == ("sent", "fake-3")
    assert [m["id"] for m in fake_network.sent] == ["fake-1", "fake-2", "fake-3"]


def test_an_agent_retry_still_looks_for_the_copy_an_earlier_attempt_got_out(
    clock, incident_post, agent, fake_network, django_capture_on_commit_callbacks
):
    incident, post = incident_post
    reply = queue(incident, post, agent)
    fake_network.answers_lost = 1
    assert reply_send(reply=reply).status == "queued"
    # "Retry now" on the waiting reply: its backoff starts over, yet the copy is found, not resent.
    with django_capture_on_commit_callbacks(execute=True):
        retried = reply_retry(reply=reply, actor=agent)
    assert (retried.attempts, retried.retry_after) == (1, None)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == ("sent", "fake-1")
    assert ([m["id"] for m in fake_network.sent], fake_network.lookups) == (["fake-1"], 1)
