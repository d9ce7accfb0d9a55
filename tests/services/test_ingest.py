from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from socialitsm.connectors import InboundAuthor
from socialitsm.connectors.base import DetailKind, PostDetail
from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Author, Channel, Incident, IncidentEvent, Post, WatchRule
from socialitsm.services.ingest import DETAIL_CHARS, MAX_DETAILS, channel_poll, channels_poll_due, posts_ingest

from ..factories import ChannelFactory, IncidentFactory, ReplyFactory, WatchRuleFactory, inbound

pytestmark = pytest.mark.django_db


def test_ingest_stores_posts_and_authors_once():
    rule = WatchRuleFactory()
    result = posts_ingest(
        channel=rule.channel, posts=[inbound("a1"), inbound("a2", author="u-2")], rule=rule, process=False
    )
    assert (result.received, result.created, result.duplicates) == (2, 2, 0)
    assert Post.objects.count() == 2
    assert sorted(Author.objects.values_list("external_id", flat=True)) == ["u-1", "u-2"]
    assert len(result.pending_ids) == 2


def test_duplicate_post_is_ignored():
    rule = WatchRuleFactory()
    posts_ingest(channel=rule.channel, posts=[inbound("a1")], rule=rule, process=False)
    again = posts_ingest(channel=rule.channel, posts=[inbound("a1"), inbound("a1")], rule=rule, process=False)
    assert (again.received, again.created, again.duplicates) == (2, 0, 2)
    assert again.pending_ids == []
    assert Post.objects.count() == 1


def test_same_external_id_on_two_networks_is_two_posts():
    replay = WatchRuleFactory()
    webhook = WatchRuleFactory(channel=ChannelFactory(network="webhook"))
    posts_ingest(channel=replay.channel, posts=[inbound("same")], rule=replay, process=False)
    posts_ingest(channel=webhook.channel, posts=[inbound("same")], rule=webhook, process=False)
    assert sorted(Post.objects.values_list("network", flat=True)) == ["replay", "webhook"]


def test_author_profile_is_refreshed():
    rule = WatchRuleFactory()
    posts_ingest(channel=rule.channel, posts=[inbound("a1")], rule=rule, process=False)
    renamed = replace(inbound("a2"), author=InboundAuthor("u-1", "@new", "New Name"))
    posts_ingest(channel=rule.channel, posts=[renamed], rule=rule, process=False)
    author = Author.objects.get()
    assert (author.handle, author.name) == ("@new", "New Name")


def test_cursor_is_saved_with_the_posts():
    rule = WatchRuleFactory()
    posts_ingest(channel=rule.channel, posts=[inbound("a1")], rule=rule, cursor={"since_id": "a1"}, process=False)
    assert WatchRule.objects.get(pk=rule.pk).cursor == {"since_id": "a1"}


def test_crash_before_commit_keeps_the_old_cursor(monkeypatch):
    rule = WatchRuleFactory(cursor={"since_id": "old"})

    def explode(*args, **kwargs):
        raise RuntimeError("worker died")

    monkeypatch.setattr("socialitsm.services.ingest._authors_upsert", explode)
    with pytest.raises(RuntimeError):
        posts_ingest(channel=rule.channel, posts=[inbound("a1")], rule=rule, cursor={"since_id": "new"}, process=False)
    assert WatchRule.objects.get(pk=rule.pk).cursor == {"since_id": "old"}
    assert Post.objects.count() == 0


def test_ingest_routes_new_posts_after_commit(django_capture_on_commit_callbacks):
    rule = WatchRuleFactory()
    with django_capture_on_commit_callbacks(execute=True):
        posts_ingest(channel=rule.channel, posts=[inbound("a1", "VPN down again, third time this week")], rule=rule)
    post = Post.objects.get()
    assert post.triage_state == Post.Triage.INCIDENT
    assert Incident.objects.count() == 1


def test_poll_ingests_and_advances_cursor(fake_network, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory()
    fake_network.inbox[rule.channel.slug] = [inbound("f1"), inbound("f2", "Anyone up for lunch?", author="u-9")]
    with django_capture_on_commit_callbacks(execute=True):
        created = channel_poll(channel=rule.channel)
    assert created == 2
    assert WatchRule.objects.get(pk=rule.pk).cursor == {"offset": 2}
    channel = Channel.objects.get(pk=rule.channel.pk)
    assert channel.health == Channel.Health.OK
    assert channel.last_event_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        assert channel_poll(channel=channel) == 0
    assert Post.objects.count() == 2


def test_rate_limited_poll_waits_for_the_reset(fake_network):
    rule = WatchRuleFactory(cursor={"offset": 0})
    reset = timezone.now() + timedelta(minutes=15)
    fake_network.errors.append(TransientError("HTTP 429", status=429, retry_at=reset))
    assert channel_poll(channel=rule.channel) == 0
    channel = Channel.objects.get(pk=rule.channel.pk)
    assert channel.health == Channel.Health.DEGRADED
    assert channel.rate_limited_until == reset
    assert channel.next_poll_at == reset
    assert channel.last_error == "HTTP 429"
    assert WatchRule.objects.get(pk=rule.pk).cursor == {"offset": 0}


def test_poll_records_quota_and_cost_even_when_it_fails(fake_network):
    rule = WatchRuleFactory()
    reset = timezone.now() + timedelta(minutes=15)
    fake_network.quota = {"remaining": 299, "limit": 300, "reset_at": reset, "cost": 0.005}
    channel_poll(channel=rule.channel)
    fake_network.errors.append(TransientError("HTTP 429", status=429, retry_at=reset))
    fake_network.quota = {"remaining": 0, "cost": 0.005}
    channel_poll(channel=rule.channel)
    channel = Channel.objects.get(pk=rule.channel.pk)
    assert (channel.requests_made, str(channel.cost_used)) == (2, "0.0100")
    assert (channel.quota_remaining, channel.quota_limit, channel.quota_reset_at) == (0, 300, reset)


def test_permanent_poll_error_marks_channel_failing(fake_network):
    rule = WatchRuleFactory()
    fake_network.errors.append(PermanentError("authentication refused (HTTP 401)", status=401))
    assert channel_poll(channel=rule.channel) == 0
    channel = Channel.objects.get(pk=rule.channel.pk)
    assert (channel.health, channel.last_error) == (Channel.Health.FAILING, "authentication refused (HTTP 401)")
    assert Post.objects.count() == 0


def test_due_channels_are_claimed_once(monkeypatch):
    due = ChannelFactory(poll_interval=30)
    ChannelFactory(next_poll_at=timezone.now() + timedelta(minutes=5))
    ChannelFactory(enabled=False)
    ChannelFactory(listen_mode=Channel.ListenMode.PUSH)
    polled = []
    monkeypatch.setattr("socialitsm.tasks.channel_poll_task.delay", polled.append)
    assert channels_poll_due() == [due.pk]
    assert channels_poll_due() == []
    assert polled == [due.pk]
    next_poll = Channel.objects.get(pk=due.pk).next_poll_at
    assert timedelta(seconds=29) < next_poll - timezone.now() <= timedelta(seconds=30)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_overlapping_ingests_store_each_post_once():
    import threading

    from django.db import connections

    rule = WatchRuleFactory()
    posts = [inbound(f"c-{n:03d}", author=f"u-{n % 7}") for n in range(60)]
    batches = [posts, list(reversed(posts)), posts[20:] + posts[:20], posts[::2] + posts[1::2]]
    barrier = threading.Barrier(len(batches))
    results, errors = [], []

    def work(batch):
        try:
            barrier.wait()
            results.append(posts_ingest(channel=rule.channel, posts=batch, rule=rule, process=False).created)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Post.objects.count() == 60
    assert Author.objects.count() == 7
    assert sum(results) == 60


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_ingest_and_routing_of_the_same_authors_do_not_deadlock():
    import threading

    from django.db import connections

    from socialitsm.services.routing import posts_process

    rule = WatchRuleFactory()
    # Mixed case and punctuation: the database's locale order differs from Python's here.
    names = ["Zed", "alpha", "Bob", "_x", "beta", "Alpha", "zed", "9lives"]
    first = posts_ingest(
        channel=rule.channel, posts=[inbound(f"a-{n}", author=n) for n in names], rule=rule, process=False
    )
    errors: list[Exception] = []
    barrier = threading.Barrier(4)

    def ingest(round_: int, order: list[str]) -> None:
        try:
            barrier.wait()
            batch = [inbound(f"r{round_}-{n}", "VPN down again", author=n) for n in order]
            posts_ingest(channel=rule.channel, posts=batch, rule=rule, process=False)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    def route(ids: list[int]) -> None:
        try:
            barrier.wait()
            posts_process(post_ids=ids)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=ingest, args=(1, names)),
        threading.Thread(target=ingest, args=(2, list(reversed(names)))),
        threading.Thread(target=route, args=(first.pending_ids,)),
        threading.Thread(target=route, args=(list(reversed(first.pending_ids)),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Post.objects.count() == 24
    assert Post.objects.filter(external_id__startswith="a-", triage_state="pending").count() == 0


def test_deletion_redacts_the_stored_post_and_keeps_its_incident():
    rule = WatchRuleFactory()
    posts_ingest(channel=rule.channel, posts=[inbound("a1", raw={"id": "a1"})], rule=rule, process=False)
    incident = IncidentFactory()
    Post.objects.filter(external_id="a1").update(incident=incident, triage_state=Post.Triage.INCIDENT)
    gone = replace(inbound("a1"), text="", deleted=True)
    result = posts_ingest(channel=rule.channel, posts=[gone], rule=rule, process=False)
    assert (result.created, result.redacted, result.duplicates) == (0, 1, 0)
    post = Post.objects.get(external_id="a1")
    assert (post.text, post.raw, post.incident_id, post.triage_state) == (
        "[deleted by the author]",
        {},
        incident.pk,
        Post.Triage.INCIDENT,
    )
    assert post.deleted_at is not None
    events = list(IncidentEvent.objects.filter(incident=incident).values_list("kind", "old_value"))
    assert events == [("post_deleted", "replay:a1")]
    again = posts_ingest(channel=rule.channel, posts=[gone], rule=rule, process=False)
    assert again.redacted == 0
    assert IncidentEvent.objects.filter(incident=incident).count() == 1


def test_deletion_of_a_pending_post_sets_it_aside():
    rule = WatchRuleFactory()
    posts_ingest(channel=rule.channel, posts=[inbound("a1")], rule=rule, process=False)
    posts_ingest(channel=rule.channel, posts=[replace(inbound("a1"), deleted=True)], rule=rule, process=False)
    assert Post.objects.get().triage_state == Post.Triage.IGNORED


def test_deletion_of_an_unknown_post_is_a_no_op():
    rule = WatchRuleFactory()
    result = posts_ingest(
        channel=rule.channel, posts=[replace(inbound("never"), deleted=True)], rule=rule, cursor={"n": 1}, process=False
    )
    assert (result.received, result.created, result.redacted, result.duplicates) == (1, 0, 0, 0)
    assert Post.objects.count() == 0
    assert Author.objects.count() == 0
    assert WatchRule.objects.get(pk=rule.pk).cursor == {"n": 1}


def test_a_webhook_deletion_redacts_only_the_calling_channels_post():
    # Webhook callers name their own ids: another channel's post with the same id is not theirs.
    ours, theirs = (WatchRuleFactory(channel=ChannelFactory(network="webhook")) for _ in range(2))
    for rule in (ours, theirs):
        posts_ingest(channel=rule.channel, posts=[inbound("t-1", text="VPN down again")], rule=rule, process=False)
    gone = replace(inbound("t-1"), text="", deleted=True)
    assert posts_ingest(channel=ours.channel, posts=[gone], rule=ours, process=False).redacted == 1
    assert dict(Post.objects.values_list("channel_id", "text")) == {
        ours.channel.pk: "[deleted by the author]",
        theirs.channel.pk: "VPN down again",
    }


def test_posts_by_our_own_account_are_skipped():
    channel = ChannelFactory(config={"connector": "fake", "account_id": "us-1"})
    rule = WatchRuleFactory(channel=channel)
    other = WatchRuleFactory(channel=ChannelFactory())
    result = posts_ingest(
        channel=other.channel, posts=[inbound("mine", author="us-1"), inbound("theirs")], rule=other, process=False
    )
    assert (result.created, result.own, result.duplicates) == (1, 1, 0)
    assert list(Post.objects.values_list("external_id", flat=True)) == ["theirs"]
    assert not Author.objects.filter(external_id="us-1").exists()
    assert rule.channel.network == other.channel.network


def test_our_sent_replies_are_not_ingested():
    reply = ReplyFactory(external_id="sent-7", status="sent")
    result = posts_ingest(
        channel=reply.channel, posts=[inbound("sent-7", author="someone-else")], rule=reply.post.rule, process=False
    )
    assert (result.created, result.own) == (0, 1)
    assert not Post.objects.filter(external_id="sent-7").exists()


def test_stream_cursor_is_saved_with_the_posts():
    channel = ChannelFactory()
    posts_ingest(channel=channel, posts=[inbound("s1")], stream_cursor={"time_us": 5}, process=False)
    assert Channel.objects.get(pk=channel.pk).stream_cursor == {"time_us": 5}


def test_an_answer_to_our_reply_joins_the_incident_of_the_post_we_answered(django_capture_on_commit_callbacks):
    rule = WatchRuleFactory()
    with django_capture_on_commit_callbacks(execute=True):
        posts_ingest(channel=rule.channel, posts=[inbound("p1", "VPN down again, third time this week")], rule=rule)
    first = Post.objects.get()
    assert first.incident is not None
    ReplyFactory(post=first, incident=first.incident, external_id="our-reply-9", status="sent")
    with django_capture_on_commit_callbacks(execute=True):
        posts_ingest(
            channel=rule.channel,
            posts=[inbound("p2", "still down, VPN cannot connect at all", in_reply_to="our-reply-9")],
            rule=rule,
        )
    second = Post.objects.get(external_id="p2")
    assert (second.in_reply_to, second.incident_id) == ("p1", first.incident_id)
    assert Incident.objects.count() == 1


def test_poll_with_posts_that_cannot_be_stored_stores_the_rest_and_shows_it_on_health(
    fake_network, django_capture_on_commit_callbacks
):
    from socialitsm.models import IngestRejection

    rule = WatchRuleFactory()
    fake_network.inbox[rule.channel.slug] = [
        inbound("f1", "VPN\x00 down"),
        inbound("x" * 300),
        replace(inbound("f3"), author=InboundAuthor("u-3", "@u3", "N\x00" * 200)),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        assert channel_poll(channel=rule.channel) == 2

    assert WatchRule.objects.get(pk=rule.pk).cursor == {"offset": 3}
    assert sorted(Post.objects.values_list("external_id", "text")) == [
        ("f1", "VPN down"),
        ("f3", "VPN down again, third time this week"),
    ]
    assert Author.objects.get(external_id="u-3").name == "N" * 200
    assert list(IngestRejection.objects.values_list("channel", "external_id")) == [(rule.channel.pk, "x" * 255)]
    channel = Channel.objects.get(pk=rule.channel.pk)
    assert channel.health == Channel.Health.DEGRADED
    assert channel.last_error.startswith("1 post(s) could not be stored and were set aside: the post id is 300")

    # The next poll that stores everything it gets shows the channel healthy again.
    fake_network.inbox[rule.channel.slug].append(inbound("f4", author="u-4"))
    with django_capture_on_commit_callbacks(execute=True):
        assert channel_poll(channel=channel) == 1
    channel.refresh_from_db()
    assert (channel.health, channel.last_error) == (Channel.Health.OK, "")
    assert IngestRejection.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_identical_batches_ingested_at_once_count_what_the_database_did():
    import threading

    from django.db import connections

    rule = WatchRuleFactory()
    posts = [inbound(f"s-{n:02d}", author=f"u-{n % 5}") for n in range(20)]
    barrier = threading.Barrier(8)
    results, errors = [], []

    def work():
        try:
            barrier.wait()
            results.append(posts_ingest(channel=rule.channel, posts=posts, rule=rule, process=False))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert (sum(r.created for r in results), sum(r.duplicates for r in results)) == (20, 140)
    assert sorted(pk for r in results for pk in r.pending_ids) == sorted(Post.objects.values_list("pk", flat=True))
    assert Post.objects.count() == 20


def test_details_are_cleaned_at_the_door_and_stored():
    channel = ChannelFactory()
    details = (
        PostDetail(kind=DetailKind.QUOTE, text="VPN\x00 down again\x07", url="https://example.org/q/1"),
        PostDetail(kind="made-up", text="dropped: unknown kind"),
        PostDetail(kind=DetailKind.ALT_TEXT, text="   "),
        PostDetail(kind=DetailKind.POLL, text="x" * 5000),
        *(PostDetail(kind=DetailKind.POLL, text=f"option {n}") for n in range(40)),
    )
    posts_ingest(channel=channel, posts=[replace(inbound("d1", "look at this"), details=details)])

    stored = Post.objects.get(external_id="d1").details
    assert stored[0] == {"kind": "quote", "text": "VPN down again", "url": "https://example.org/q/1"}
    assert stored[1]["kind"] == "poll"
    assert len(stored[1]["text"]) == DETAIL_CHARS
    assert len(stored) == MAX_DETAILS
    assert {d["kind"] for d in stored} == {"quote", "poll"}


def test_channel_last_event_is_written_at_most_once_a_second():
    import time_machine

    channel = ChannelFactory(network="webhook")
    start = timezone.now().replace(microsecond=0) + timedelta(days=1)
    with time_machine.travel(start, tick=False):
        posts_ingest(channel=channel, posts=[inbound("s1")])
    with time_machine.travel(start + timedelta(milliseconds=900), tick=False):
        posts_ingest(channel=channel, posts=[inbound("s2")])
        # Another process's copy of the channel (loaded before) does not write it either.
        posts_ingest(channel=Channel.objects.get(pk=channel.pk), posts=[inbound("s3")])
    assert Channel.objects.get(pk=channel.pk).last_event_at == start
    with time_machine.travel(start + timedelta(seconds=2), tick=False):
        posts_ingest(channel=channel, posts=[inbound("s4")])
    assert Channel.objects.get(pk=channel.pk).last_event_at == start + timedelta(seconds=2)
    assert Post.objects.filter(channel=channel).count() == 4


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_known_posters_new_post_does_not_wait_for_the_worker_routing_their_posts():
    import psycopg
    from django.db import connection

    from ..test_worker import _database_url

    rule = WatchRuleFactory()
    posts_ingest(channel=rule.channel, posts=[inbound("k1")], rule=rule, process=False)
    author = Author.objects.get()
    with psycopg.connect(_database_url()) as routing:
        # A worker routing this poster's posts holds their row for its batch.
        routing.execute("SELECT id FROM socialitsm_author WHERE id = %s FOR NO KEY UPDATE", (author.pk,))
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")  # a wait fails the test instead of hanging it
        try:
            result = posts_ingest(channel=rule.channel, posts=[inbound("k2")], rule=rule, process=False)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        routing.rollback()
    assert result.created == 1
    assert Post.objects.get(external_id="k2").author_id == author.pk
    assert Author.objects.count() == 1
