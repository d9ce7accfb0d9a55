"""Routing works in sets: a batch costs the same queries whatever its size, a batch that fails
half-way loses and doubles nothing when it runs again, and follow-ups leave the SLA clocks as a
full replay of the incident's history would."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
import time_machine
from django.db import OperationalError, transaction
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from socialitsm.connectors import InboundPost
from socialitsm.models import Author, Incident, IncidentEvent, Post, Reply, SlaClock, SlaPolicy, WatchRule
from socialitsm.services import ingest as ingest_service
from socialitsm.services import routing
from socialitsm.services.ingest import posts_ingest
from socialitsm.services.routing import posts_process
from socialitsm.services.sla import incidents_sla_recompute

from ..factories import ReplyFactory, WatchRuleFactory, inbound

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
COMPLAINT = "VPN down again, third time this week"
NOISE = "Anyone up for lunch at the canteen today?"


def _batch(size: int, tag: str) -> list[InboundPost]:
    """`size` posts of every kind routing handles: complaints by different people (new incidents,
    all about one service, five people or more: a spike), their follow-ups in the same
    conversation and in reply to them (threaded), and noise (ignored)."""
    posts = []
    for i in range(size):
        author = f"{tag}-u{i // 2}"
        at = NOW - timedelta(minutes=5) + timedelta(seconds=i)
        if i % 10 == 9:
            posts.append(inbound(f"{tag}-{i}", NOISE, author=f"{tag}-quiet{i}", posted_at=at))
        elif i % 2 == 0:
            text = f"{COMPLAINT} #{i}"
            posts.append(inbound(f"{tag}-{i}", text, author=author, posted_at=at, conversation_id=f"{tag}-c{i}"))
        else:
            posts.append(
                inbound(
                    f"{tag}-{i}",
                    f"still broken, nobody answers #{i}",
                    author=author,
                    posted_at=at,
                    conversation_id=f"{tag}-c{i - 1}",
                    in_reply_to=f"{tag}-{i - 1}",
                )
            )
    return posts


def _queries_to_route(rule: WatchRule, size: int, capture_on_commit) -> tuple[int, dict[str, int]]:
    """Ingest a batch of `size`, count the queries of routing it (the work it hands on once
    committed included), then undo all of it."""
    undo = transaction.savepoint()
    ids = posts_ingest(channel=rule.channel, posts=_batch(size, f"b{size}"), rule=rule, process=False).pending_ids
    assert len(ids) == size
    with CaptureQueriesContext(db_connection) as queries, capture_on_commit(execute=True):
        outcome = posts_process(post_ids=ids)
    assert Incident.objects.filter(is_major=True).count() == 1, "both sizes open a major incident"
    transaction.savepoint_rollback(undo)
    return len(queries), outcome


# PostgreSQL's: elsewhere rows_update writes row by row, and bulk inserts are split by the
# database's limit on parameters per statement.
@pytest.mark.postgres
@time_machine.travel(NOW, tick=False)
def test_a_batch_costs_the_same_queries_for_10_posts_as_for_100(sla_defaults, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory()
    few, few_outcome = _queries_to_route(rule, 10, django_capture_on_commit_callbacks)
    many, many_outcome = _queries_to_route(rule, 100, django_capture_on_commit_callbacks)
    assert few_outcome == {"incident": 9, "ignored": 1}
    assert many_outcome == {"incident": 90, "ignored": 10}
    # One query per kind of row, not per post: the counts do not grow with the batch.
    assert many == few
    assert few < 60


def _stored_once(rule: WatchRule, posts: list[InboundPost]) -> None:
    stored = Counter(Post.objects.filter(channel=rule.channel).values_list("external_id", flat=True))
    assert sorted(stored) == sorted(p.external_id for p in posts)
    assert set(stored.values()) == {1}


@time_machine.travel(NOW, tick=False)
def test_ingest_that_fails_mid_batch_stores_nothing_and_its_retry_stores_each_post_once():
    rule = WatchRuleFactory()
    posts = _batch(30, "i")
    insert = ingest_service.values_insert_new

    def posts_fail(model, *args, **kwargs):
        if model is Post:
            raise OperationalError("connection lost")
        return insert(model, *args, **kwargs)

    with (
        mock.patch.object(ingest_service, "values_insert_new", side_effect=posts_fail),
        pytest.raises(OperationalError),
    ):
        posts_ingest(channel=rule.channel, posts=posts, rule=rule, process=False)
    # The authors written before the posts went back with them.
    assert (Post.objects.count(), Author.objects.count()) == (0, 0)
    first = posts_ingest(channel=rule.channel, posts=posts[:20], rule=rule, process=False)
    again = posts_ingest(channel=rule.channel, posts=posts, rule=rule, process=False)
    assert (first.created, again.created, again.duplicates) == (20, 10, 20)
    _stored_once(rule, posts)


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("fails_in", ["events_record", "incidents_sla_recompute", "rows_update"])
def test_routing_that_fails_mid_batch_loses_and_doubles_nothing(
    fails_in, sla_defaults, django_capture_on_commit_callbacks
):
    rule = WatchRuleFactory()
    posts = _batch(40, "r")
    ids = posts_ingest(channel=rule.channel, posts=posts, rule=rule, process=False).pending_ids

    # The database goes away after the incidents were written: the whole batch goes back.
    with (
        mock.patch.object(routing, fails_in, side_effect=OperationalError("server closed the connection")),
        django_capture_on_commit_callbacks(execute=True) as announced,
        pytest.raises(OperationalError),
    ):
        posts_process(post_ids=ids)
    assert announced == []
    assert Post.objects.routable().count() == 40
    assert (Incident.objects.count(), IncidentEvent.objects.count(), SlaClock.objects.count()) == (0, 0, 0)

    # The retry (the task again, or the recovery sweep) routes each post once.
    with django_capture_on_commit_callbacks(execute=True):
        assert posts_process(post_ids=ids) == {"incident": 36, "ignored": 4}
    assert posts_process(post_ids=ids) == {}
    linked = Post.objects.filter(triage_state=Post.Triage.INCIDENT)
    assert linked.count() == 36 and not linked.filter(incident__isnull=True).exists()
    assert Post.objects.filter(triage_state=Post.Triage.IGNORED, incident__isnull=True).count() == 4
    links = Counter(
        IncidentEvent.objects.filter(kind=IncidentEvent.Kind.POST_LINKED).values_list("new_value", flat=True)
    )
    assert len(links) == 36 and set(links.values()) == {1}
    numbers = list(Incident.objects.values_list("number", flat=True))
    assert len(numbers) == len(set(numbers))
    # Each complaint opened one incident its follow-up (if any) joined, all children of one major
    # incident; the figures count each post once.
    children = Incident.objects.filter(is_major=False)
    assert Counter(children.values_list("post_count", flat=True)) == {2: 16, 1: 4}
    assert Incident.objects.filter(is_major=True).count() == 1
    assert not children.filter(parent__isnull=True).exists()
    # Their SLA clocks were started once each.
    clocks = Counter(SlaClock.objects.filter(incident__in=children).values_list("incident_id", "target", "cycle"))
    assert len({incident for incident, _, _ in clocks}) == 20 and set(clocks.values()) == {1}


@time_machine.travel(NOW, tick=False)
def test_follow_ups_in_later_batches_keep_each_incidents_post_count(sla_defaults):
    """Follow-ups routed into incidents opened by earlier batches add to their counts (no
    recount); a routable post that an incident still held (none should) is counted again in both."""
    rule = WatchRuleFactory()
    first = _batch(20, "k")
    posts_process(post_ids=posts_ingest(channel=rule.channel, posts=first, rule=rule, process=False).pending_ids)
    follow_ups = [
        inbound(
            f"k-again-{i}", f"still nothing #{i}", author=p.author.external_id, in_reply_to=p.external_id, posted_at=NOW
        )
        for i, p in enumerate(first)
        if p.conversation_id
    ]
    for chunk in (follow_ups[:6], follow_ups[6:]):
        ids = posts_ingest(channel=rule.channel, posts=chunk, rule=rule, process=False).pending_ids
        posts_process(post_ids=ids)

    def counts_right() -> None:
        for incident in Incident.objects.filter(is_major=False):
            assert incident.post_count == incident.posts.count() > 0, incident.number

    counts_right()
    # A post an incident holds, made pending again, that answers a post of another incident.
    held, other = Incident.objects.filter(is_major=False).order_by("pk")[:2]
    moving = held.posts.order_by("pk").first()
    Post.objects.filter(pk=moving.pk).update(
        triage_state=Post.Triage.PENDING, in_reply_to=other.posts.first().external_id, conversation_id=""
    )
    posts_process(post_ids=[moving.pk])
    assert Post.objects.get(pk=moving.pk).incident_id == other.pk
    counts_right()


@pytest.fixture
def next_response_policies() -> None:
    """24x7 targets for every priority, answering the poster again within an hour."""
    for priority in range(1, 6):
        SlaPolicy.objects.create(
            name=f"P{priority}",
            priority=priority,
            first_response_minutes=120,
            next_response_minutes=60,
            resolution_minutes=480,
        )


def _route_at(at: datetime, rule: WatchRule, *posts: InboundPost) -> None:
    with time_machine.travel(at, tick=False):
        ids = posts_ingest(channel=rule.channel, posts=list(posts), rule=rule, process=False).pending_ids
        posts_process(post_ids=ids)


def _clocks(incident: Incident) -> dict[tuple[str, int], tuple]:
    return {
        (c.target, c.cycle): (c.state, c.started_at, c.due_at, c.stopped_at)
        for c in SlaClock.objects.filter(incident=incident)
    }


def _as_a_full_replay_leaves_them(incident: Incident, at: datetime) -> dict[tuple[str, int], tuple]:
    """The clocks as routing left them, checked against replaying the whole history then."""
    left = _clocks(incident)
    with time_machine.travel(at, tick=False):
        incidents_sla_recompute(incident_ids=[incident.pk])
    assert _clocks(incident) == left
    return left


def test_a_follow_up_leaves_the_clocks_as_a_full_replay_would(next_response_policies):
    rule = WatchRuleFactory()
    thread = {"author": "poster", "conversation_id": "c-1"}
    _route_at(NOW, rule, inbound("f-1", COMPLAINT, posted_at=NOW - timedelta(minutes=1), **thread))
    incident = Incident.objects.get()
    opened = _as_a_full_replay_leaves_them(incident, NOW)
    assert set(opened) == {("first_response", 0), ("resolution", 0)}

    # The poster writes again before any reply: nothing the clocks start from moved.
    later = NOW + timedelta(minutes=10)
    _route_at(later, rule, inbound("f-2", "still broken", posted_at=later - timedelta(minutes=1), **thread))
    assert _as_a_full_replay_leaves_them(incident, later) == opened
    incident.refresh_from_db()
    assert incident.post_count == 2

    # After a reply, writing again starts a next-response clock.
    answered = NOW + timedelta(minutes=20)
    with time_machine.travel(answered, tick=False):
        ReplyFactory(
            post=Post.objects.get(external_id="f-1"), incident=incident, status=Reply.Status.SENT, sent_at=answered
        )
        incidents_sla_recompute(incident_ids=[incident.pk])
    again = NOW + timedelta(minutes=30)
    _route_at(again, rule, inbound("f-3", "hello??", posted_at=again - timedelta(minutes=1), **thread))
    clocks = _as_a_full_replay_leaves_them(incident, again)
    assert clocks[("next_response", 1)] == (
        "running",
        again - timedelta(minutes=1),
        again + timedelta(minutes=59),
        None,
    )

    # A post dated before the first one (delivered late) moves the start of the clocks.
    late = NOW + timedelta(minutes=40)
    _route_at(late, rule, inbound("f-0", "VPN flaky since 8", posted_at=NOW - timedelta(hours=1), **thread))
    clocks = _as_a_full_replay_leaves_them(incident, late)
    assert clocks[("resolution", 0)][1] == NOW - timedelta(hours=1)
    incident.refresh_from_db()
    assert (incident.post_count, incident.sla_started_at) == (4, NOW - timedelta(hours=1))


@time_machine.travel(NOW, tick=False)
def test_a_batch_threads_each_follow_up_by_its_own_poster_and_conversation():
    """Two posters, each with an incident in a conversation of their own; the batch after holds
    each one's follow-up and each one writing in the other's conversation: only a poster's own
    (poster, conversation) pair continues an incident."""
    rule = WatchRuleFactory()
    ids = posts_ingest(
        channel=rule.channel,
        posts=[
            inbound("a-1", COMPLAINT, author="ann", conversation_id="c-ann", posted_at=NOW - timedelta(minutes=9)),
            inbound("b-1", "Printer on floor 2 is broken again", author="bob", conversation_id="c-bob"),
        ],
        rule=rule,
        process=False,
    ).pending_ids
    posts_process(post_ids=ids)
    opened = {p.author.external_id: p.incident_id for p in Post.objects.select_related("author")}
    assert len(set(opened.values())) == 2

    later = [
        inbound("a-2", "still broken, nobody answers", author="ann", conversation_id="c-ann"),
        inbound("b-2", "still broken, nobody answers", author="bob", conversation_id="c-bob"),
        inbound("a-3", "Email is down, Outlook keeps failing", author="ann", conversation_id="c-bob"),
        inbound("b-3", "Email is down, Outlook keeps failing", author="bob", conversation_id="c-ann"),
    ]
    posts_process(post_ids=posts_ingest(channel=rule.channel, posts=later, rule=rule, process=False).pending_ids)

    incident_of = dict(Post.objects.values_list("external_id", "incident_id"))
    assert incident_of["a-2"] == opened["ann"]
    assert incident_of["b-2"] == opened["bob"]
    assert incident_of["a-3"] not in (None, opened["ann"], opened["bob"])
    assert incident_of["b-3"] not in (None, opened["ann"], opened["bob"], incident_of["a-3"])
