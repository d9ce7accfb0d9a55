"""Draining what arrives one post at a time: one queued drain, the batch path, nothing lost."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import caches
from django.db import OperationalError
from django.utils import timezone

from socialitsm.connectors import InboundAuthor, InboundPost
from socialitsm.models import Incident, IncidentCounter, IncidentEvent, Post, SlaClock, WatchRule
from socialitsm.services import routing
from socialitsm.services.ingest import posts_ingest
from socialitsm.services.recovery import work_recover
from socialitsm.services.routing import posts_drain, posts_drain_request, posts_process

from ..factories import AuthorFactory, ChannelFactory, PostFactory, WatchRuleFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


@pytest.fixture
def drain_cache(settings):
    settings.SOCIALITSM_DRAIN_CACHE = "throttle"
    caches["throttle"].clear()
    yield caches["throttle"]
    caches["throttle"].clear()


@pytest.fixture
def drains(monkeypatch) -> list[int]:
    """Drain tasks enqueued (not run)."""
    enqueued: list[int] = []
    monkeypatch.setattr("socialitsm.tasks.posts_drain_task.delay", lambda: enqueued.append(1))
    return enqueued


@pytest.fixture
def batches(monkeypatch) -> list[int]:
    """The size of each batch the drain hands to the batch path."""
    sizes: list[int] = []

    def recording(*, post_ids):
        sizes.append(len(post_ids))
        return posts_process(post_ids=post_ids)

    monkeypatch.setattr(routing, "posts_process", recording)
    return sizes


def _scenario() -> list[Post]:
    """Complaints by seven people about the VPN (a spike), follow-ups in a conversation and in
    reply to a post, noise, and a complaint heard by a rule that only queues."""
    rule = WatchRuleFactory()
    queue_rule = WatchRuleFactory(channel=rule.channel, action=WatchRule.Action.QUEUE)
    authors = [AuthorFactory(network=rule.channel.network) for _ in range(7)]
    specs = [
        (authors[0], "VPN down again, third time this week", "c0", "", rule),
        (authors[1], "the VPN keeps dropping me, cannot work", "c1", "", rule),
        (authors[0], "still no VPN, any news?", "c0", "", rule),
        (authors[2], "Anyone up for lunch at the canteen today?", "c2", "", rule),
        (authors[3], "VPN is down for the whole team", "c3", "", rule),
        (authors[4], "cannot connect to the VPN since this morning", "c4", "", rule),
        (authors[1], "and now it dropped again", "", "e-1", rule),
        (authors[5], "VPN broken AGAIN, meetings lost", "c5", "", rule),
        (authors[6], "VPN down here too", "c6", "", rule),
        (authors[6], "printer on floor 2 not working, whole team waiting", "c7", "", queue_rule),
        (authors[2], "VPN down, same as everyone", "c8", "", rule),
    ]
    now = timezone.now()
    return [
        PostFactory(
            rule=post_rule,
            external_id=f"e-{n}",
            author=author,
            text=text,
            conversation_id=conversation,
            in_reply_to=reply_to,
            posted_at=START + timedelta(minutes=n),
            ingested_at=now + timedelta(milliseconds=n),
        )
        for n, (author, text, conversation, reply_to, post_rule) in enumerate(specs)
    ]


def _outcome() -> dict[str, object]:
    numbers = dict(Incident.objects.values_list("pk", "number"))
    posts = {
        external_id: (state, numbers.get(incident_id))
        for external_id, state, incident_id in Post.objects.values_list("external_id", "triage_state", "incident_id")
    }
    incidents = {
        number: (is_major, numbers.get(parent_id), service_id, state)
        for number, is_major, parent_id, service_id, state in Incident.objects.values_list(
            "number", "is_major", "parent_id", "service_id", "state"
        )
    }
    events = sorted(
        (numbers[incident_id], kind, new_value)
        for incident_id, kind, new_value in IncidentEvent.objects.values_list("incident_id", "kind", "new_value")
    )
    clocks = sorted(
        (numbers[incident_id], target, due_at)
        for incident_id, target, due_at in SlaClock.objects.values_list("incident_id", "target", "due_at")
    )
    return {"posts": posts, "incidents": incidents, "events": events, "clocks": clocks}


def _wipe() -> None:
    IncidentEvent.objects.all().delete()
    SlaClock.objects.all().delete()
    Post.objects.all().delete()
    Incident.objects.update(parent=None)
    Incident.objects.all().delete()
    IncidentCounter.objects.all().delete()


def test_drain_routes_as_the_single_post_path_does(settings, batches, sla_defaults):
    settings.SOCIALITSM_SPIKE_AUTHORS = 50  # no spike: numbers, events and clocks compare one to one
    for post in _scenario():
        posts_process(post_ids=[post.pk])
    one_by_one = _outcome()
    _wipe()
    _scenario()

    assert posts_drain() == {"incident": 9, "ignored": 1, "queued": 1}

    assert batches == [11]
    assert _outcome() == one_by_one
    assert one_by_one["posts"]["e-6"] == one_by_one["posts"]["e-1"]
    assert one_by_one["posts"]["e-2"] == one_by_one["posts"]["e-0"]
    assert one_by_one["posts"]["e-3"] == ("ignored", None)
    assert one_by_one["posts"]["e-9"] == ("queued", None)
    assert len(one_by_one["incidents"]) == 7


def _shape() -> tuple[list[tuple[str, ...]], list[tuple[str, ...]], int]:
    """Which posts share an incident, which of those incidents are children of a major incident,
    and how many major incidents: the outcome without the numbers (a batch numbers a major
    incident it opens before its children, one post at a time numbers it when the spike comes)."""
    groups: dict[int, list[str]] = {}
    for external_id, incident_id in Post.objects.exclude(incident=None).values_list("external_id", "incident_id"):
        groups.setdefault(incident_id, []).append(external_id)
    children = set(Incident.objects.exclude(parent=None).values_list("pk", flat=True))
    return (
        sorted(tuple(sorted(ids)) for ids in groups.values()),
        sorted(tuple(sorted(ids)) for pk, ids in groups.items() if pk in children),
        Incident.objects.filter(is_major=True).count(),
    )


def test_drain_opens_the_major_incident_the_single_post_path_opens(batches, sla_defaults):
    for post in _scenario():
        posts_process(post_ids=[post.pk])
    one_by_one = _shape()
    _wipe()
    _scenario()

    posts_drain()

    assert batches == [11]
    assert _shape() == one_by_one
    assert one_by_one[2] == 1
    assert len(one_by_one[1]) == 7


def test_requests_enqueue_one_drain_while_one_is_on_its_way(drain_cache, drains):
    assert [posts_drain_request() for _ in range(5)] == [True, False, False, False, False]
    assert drains == [1]

    posts_drain()

    assert posts_drain_request() is True
    assert drains == [1, 1]


def test_without_a_drain_cache_every_request_enqueues(settings, drains):
    settings.SOCIALITSM_DRAIN_CACHE = ""
    posts_drain_request()
    posts_drain_request()
    assert drains == [1, 1]


def test_webhook_calls_arriving_singly_are_routed_in_one_batch(
    drain_cache, drains, batches, django_capture_on_commit_callbacks
):
    channel = ChannelFactory(network="webhook", slug="hook")
    rule = WatchRuleFactory(channel=channel)
    for n in range(4):
        post = InboundPost(
            external_id=f"w-{n}",
            author=InboundAuthor(external_id=f"u-{n}", handle=f"@u{n}"),
            text="VPN down again, third time this week",
            posted_at=START + timedelta(seconds=n),
        )
        with django_capture_on_commit_callbacks(execute=True):
            posts_ingest(channel=channel, posts=[post], rule=rule)
    assert drains == [1]
    assert Post.objects.filter(triage_state=Post.Triage.PENDING).count() == 4

    assert posts_drain() == {"incident": 4}

    assert batches == [4]
    assert sorted(Incident.objects.values_list("number", flat=True)) == [f"INC000100{n}" for n in range(1, 5)]


def test_drain_takes_what_was_stored_while_it_ran_in_batches(settings, batches):
    settings.SOCIALITSM_DRAIN_BATCH = 2
    author = AuthorFactory()
    first = [PostFactory(author=author, conversation_id="c", text="VPN down again") for _ in range(3)]
    stored_late: list[Post] = []
    real = routing.posts_process

    def and_one_more(*, post_ids):
        if not stored_late:
            # Stored before the posts being routed, committed after them (a slow transaction).
            earlier = timezone.now() - timedelta(minutes=5)
            stored_late.append(PostFactory(author=author, conversation_id="c", text="still down", ingested_at=earlier))
        return real(post_ids=post_ids)

    routing.posts_process = and_one_more
    try:
        assert posts_drain() == {"incident": 4}
    finally:
        routing.posts_process = real
    assert batches == [2, 2]
    assert {p.incident_id for p in Post.objects.filter(pk__in=[p.pk for p in [*first, *stored_late]])} == {
        Incident.objects.get().pk
    }


def test_post_stored_as_the_flag_is_cleared_is_not_left_behind(drain_cache, drains, monkeypatch):
    clear = routing._drain_flag_clear
    late: list[Post] = []

    def store_then_clear():
        if not late:
            # Stored and committed before the clear: its request found the flag set.
            late.append(PostFactory(text="VPN down again"))
            assert posts_drain_request() is False
        clear()

    monkeypatch.setattr(routing, "_drain_flag_clear", store_then_clear)
    drain_cache.add(routing.DRAIN_FLAG, 1)

    assert posts_drain() == {"incident": 1}

    late[0].refresh_from_db()
    assert late[0].triage_state == Post.Triage.INCIDENT
    assert drains == []


def test_time_budget_spent_hands_the_rest_to_another_drain(settings, drain_cache, drains, batches):
    settings.SOCIALITSM_DRAIN_BATCH = 2
    posts = [PostFactory(text="VPN down again", author=AuthorFactory()) for _ in range(3)]

    assert posts_drain(seconds=0) == {"incident": 2}

    assert batches == [2]
    assert drains == [1]
    assert Post.objects.filter(pk=posts[2].pk, triage_state=Post.Triage.PENDING).exists()


def test_worker_dying_mid_drain_loses_nothing_and_opens_each_incident_once(settings, drain_cache, drains, monkeypatch):
    settings.SOCIALITSM_DRAIN_BATCH = 2
    settings.SOCIALITSM_SPIKE_DETECTION = False
    stale = timezone.now() - timedelta(hours=1)
    posts = [
        PostFactory(text=f"VPN down again #{n}", author=AuthorFactory(), ingested_at=stale + timedelta(seconds=n))
        for n in range(5)
    ]
    real = routing.posts_process
    calls: list[int] = []

    def dies_on_second_batch(*, post_ids):
        calls.append(len(post_ids))
        if len(calls) == 2:
            raise OperationalError("server closed the connection unexpectedly")
        return real(post_ids=post_ids)

    monkeypatch.setattr(routing, "posts_process", dies_on_second_batch)
    assert posts_drain_request() is True
    with pytest.raises(OperationalError):
        posts_drain()

    assert Post.objects.filter(triage_state=Post.Triage.PENDING).count() == 3
    # A drain that failed lets the next request queue one at once.
    assert posts_drain_request() is True
    assert drains == [1, 1]
    recovered: list[list[int]] = []
    monkeypatch.setattr("socialitsm.tasks.posts_process_task.delay", recovered.append)
    assert work_recover() == {"posts": 3, "replies": 0}
    assert recovered == [[p.pk for p in posts[2:]]]
    assert real(post_ids=recovered[0]) == {"incident": 3}

    numbers = list(Incident.objects.values_list("number", flat=True))
    assert sorted(numbers) == [f"INC000100{n}" for n in range(1, 6)]
    assert Post.objects.filter(triage_state=Post.Triage.INCIDENT).count() == 5
    assert IncidentEvent.objects.filter(kind=IncidentEvent.Kind.POST_LINKED).count() == 5


def test_flag_of_a_worker_killed_mid_drain_holds_requests_until_it_lapses(drain_cache, drains):
    assert posts_drain_request() is True
    # The worker is killed outright: nothing clears the flag, and the sweep routes what waits.
    assert posts_drain_request() is False
    assert drains == [1]
    assert 0 < drain_cache._expire_info[drain_cache.make_and_validate_key(routing.DRAIN_FLAG)] - time.time() <= 90
    drain_cache.delete(routing.DRAIN_FLAG)  # lapsed
    assert posts_drain_request() is True


def test_drain_under_continuous_arrival_hands_over_when_its_time_is_spent(
    settings, drain_cache, drains, batches, monkeypatch
):
    """Posts keep arriving while each batch is routed: the drain stops at its time budget and
    asks for the next drain rather than keeping its worker for ever."""
    settings.SOCIALITSM_DRAIN_BATCH = 3
    clock = [0.0]
    monkeypatch.setattr(routing.time, "monotonic", lambda: clock[0])
    real = routing.posts_process
    arrived: list[Post] = []

    def while_more_arrive(*, post_ids):
        clock[0] += 10  # each batch takes 10 s of the drain's budget
        arrived.append(PostFactory(text="VPN down again", author=AuthorFactory()))
        return real(post_ids=post_ids)

    monkeypatch.setattr(routing, "posts_process", while_more_arrive)
    for _ in range(3):
        PostFactory(text="VPN down again", author=AuthorFactory())
    assert posts_drain_request() is True

    assert posts_drain(seconds=25) == {"incident": 5}

    # Each batch brings one more post; the third spends the budget, and the post it brought
    # waits for the next drain.
    assert batches == [3, 1, 1]
    assert drains == [1, 1]
    assert list(Post.objects.routable().values_list("pk", flat=True)) == [arrived[-1].pk]


def _claimed_elsewhere(lock_sql: str, pk: int, run) -> None:
    """Run `run()` while another connection holds the row `lock_sql` locks (FOR UPDATE)."""
    import psycopg

    from ..test_worker import _database_url

    with psycopg.connect(_database_url()) as other:
        other.execute(lock_sql, (pk,))
        run()
        other.rollback()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_drain_skips_posts_another_worker_claimed_instead_of_waiting(settings, drain_cache, drains, batches):
    settings.SOCIALITSM_SPIKE_DETECTION = False
    posts = [PostFactory(text=f"VPN down again #{n}", author=AuthorFactory()) for n in range(4)]
    outcome: list[dict[str, int]] = []
    assert posts_drain_request() is True

    # Another drain holds the second post (routing it); the drain routes the others and, its
    # budget spent with that post still claimed, hands over to the next drain.
    _claimed_elsewhere(
        "SELECT id FROM socialitsm_post WHERE id = %s FOR UPDATE",
        posts[1].pk,
        lambda: outcome.append(posts_drain(seconds=0.2)),
    )

    assert outcome == [{"incident": 3}]
    assert batches == [3]
    assert list(Post.objects.routable().values_list("pk", flat=True)) == [posts[1].pk]
    assert drains == [1, 1]
    # Once released, the next drain takes it.
    assert posts_drain() == {"incident": 1}
    assert Incident.objects.count() == 4


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_drain_skips_the_posts_of_an_author_being_routed_elsewhere(settings, drain_cache, drains, batches):
    settings.SOCIALITSM_SPIKE_DETECTION = False
    busy, free = AuthorFactory(), AuthorFactory()
    held = [PostFactory(text="VPN down again", author=busy, conversation_id="b") for _ in range(2)]
    PostFactory(text="printer on floor 2 not working", author=free)
    outcome: list[dict[str, int]] = []

    _claimed_elsewhere(
        "SELECT id FROM socialitsm_author WHERE id = %s FOR UPDATE",
        busy.pk,
        lambda: outcome.append(posts_drain(seconds=0.2)),
    )

    assert outcome == [{"incident": 1}]
    assert batches == [1]
    assert set(Post.objects.routable().values_list("pk", flat=True)) == {p.pk for p in held}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_drains_at_once_route_disjoint_batches_each_post_once(settings, monkeypatch):
    import threading

    from django.db import connections

    settings.SOCIALITSM_DRAIN_CACHE = ""
    settings.SOCIALITSM_SPIKE_DETECTION = False
    settings.SOCIALITSM_DRAIN_BATCH = 2
    monkeypatch.setattr("socialitsm.tasks.posts_drain_task.delay", lambda: None)
    posts = [PostFactory(text=f"VPN down again #{n}", author=AuthorFactory()) for n in range(5)]
    real = routing.posts_process
    first_claimed, release = threading.Event(), threading.Event()
    handed: dict[str, list[list[int]]] = {"first": [], "second": []}
    errors: list[Exception] = []

    def routing_of(name):
        def recording(*, post_ids):
            handed[name].append(sorted(post_ids))
            if name == "first" and len(handed[name]) == 1:
                first_claimed.set()
                release.wait(30)  # holds its claim while the second drain runs
            return real(post_ids=post_ids)

        return recording

    def first() -> None:
        try:
            monkeypatch.setattr(routing, "posts_process", routing_of("first"))
            posts_drain()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=first)
    thread.start()
    assert first_claimed.wait(30)
    monkeypatch.setattr(routing, "posts_process", routing_of("second"))
    # The second drain does not wait for the first one's posts: it routes the rest and, with
    # no budget left, returns while the first one still holds its batch.
    posts_drain(seconds=0)
    second_done = Post.objects.exclude(triage_state=Post.Triage.PENDING).count()
    release.set()
    thread.join(60)

    assert errors == []
    ids = [p.pk for p in posts]
    assert handed["first"][0] == ids[:2]
    assert handed["second"][0] == ids[2:4]
    assert second_done == 2
    routed_by = [pk for batch in handed["first"] + handed["second"] for pk in batch]
    assert sorted(routed_by) == ids
    assert Post.objects.filter(triage_state=Post.Triage.INCIDENT).count() == 5
    numbers = list(Incident.objects.values_list("number", flat=True))
    assert len(numbers) == len(set(numbers)) == 5
