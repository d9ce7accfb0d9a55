"""The sync workflows against the in-memory suite: discovery, outbox, leases, conflicts, outages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group

from socialitsm import tasks
from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Incident, IncidentEvent, ItsmConnection, ItsmDelivery, ItsmLink, Service
from socialitsm.services.incidents import incident_update, post_link
from socialitsm.services.itsm_sync import (
    itsm_connection_poll,
    itsm_link_pull,
    itsm_link_retry,
    itsm_link_sync,
    itsm_links_discover,
    itsm_links_due,
    itsm_tick,
)
from socialitsm.services.routing import posts_process

from ..factories import AuthorFactory, ChannelFactory, IncidentFactory, PostFactory, ReplyFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def incident(clock):
    post = PostFactory(text="VPN down again, third time this week", author=AuthorFactory(handle="@maria"))
    posts_process(post_ids=[post.pk])
    return Incident.objects.get()


def test_tick_links_and_creates_the_incident_once(connection, incident, fake_suite):
    assert itsm_tick() == {"linked": 1, "synced": 1, "polled": 1}
    link = ItsmLink.objects.get()
    assert (link.status, link.remote_id, link.remote_key, link.external_ref) == (
        "ok",
        "1",
        "FAKE-1",
        f"socialitsm:{incident.number}",
    )
    ticket = fake_suite.tickets["1"]
    assert ticket.fields["short_description"] == "VPN down again, third time this week"
    assert ticket.fields["description"] == incident.description
    # Once more for the audit event the create wrote, then quiet; nothing more reaches the suite.
    assert itsm_tick() == {"linked": 0, "synced": 1, "polled": 0}
    assert itsm_tick() == {"linked": 0, "synced": 0, "polled": 0}
    assert [name for name, _ in fake_suite.calls] == ["find", "create", "fetch"]


@pytest.mark.parametrize(
    ("rule", "matches"),
    [
        ({}, True),
        ({"rule_max_priority": 3}, False),
        ({"rule_max_priority": 4}, True),
        ({"services": ["vpn"]}, True),
        ({"services": ["email"]}, False),
        ({"groups": ["Other team"]}, False),
    ],
)
def test_connection_rules_choose_the_incidents(connection, clock, rule, matches):
    incident = IncidentFactory(impact=3, urgency=2)  # priority 4, service vpn
    IncidentEvent.objects.create(incident=incident, kind="opened")
    if "rule_max_priority" in rule:
        connection.rule_max_priority = rule["rule_max_priority"]
        connection.save()
    for slug in rule.get("services", []):
        connection.rule_services.add(Service.objects.get(slug=slug))
    for name in rule.get("groups", []):
        connection.rule_groups.add(Group.objects.create(name=name))
    assert itsm_links_discover() == int(matches)


def test_an_incident_that_comes_to_match_later_is_linked_then(connection, clock, agent):
    connection.rule_max_priority = 2
    connection.save()
    incident = IncidentFactory(impact=3, urgency=2)
    IncidentEvent.objects.create(incident=incident, kind="opened")
    assert itsm_links_discover() == 0
    clock.shift(timedelta(seconds=60))
    incident_update(incident=incident, actor=agent, impact=1)
    assert itsm_links_discover() == 1


def test_discovery_cursor_waits_for_young_events(connection, incident, clock):
    itsm_links_discover()
    connection.refresh_from_db()
    assert connection.event_cursor == 0  # the events are younger than the settle time
    clock.shift(timedelta(seconds=31))
    itsm_links_discover()
    connection.refresh_from_db()
    assert connection.event_cursor == IncidentEvent.objects.order_by("pk").last().pk


def test_a_leased_link_is_left_to_its_worker(connection, incident, fake_suite):
    itsm_links_discover()
    link = ItsmLink.objects.get()
    ItsmLink.objects.filter(pk=link.pk).update(lease_until=NOW + timedelta(minutes=5))
    assert itsm_link_sync(link=link) is None
    assert itsm_links_due() == []
    assert fake_suite.calls == []


def test_an_abandoned_lease_is_taken_over(connection, incident, fake_suite, clock):
    itsm_links_discover()
    link = ItsmLink.objects.get()
    ItsmLink.objects.filter(pk=link.pk).update(lease_until=NOW - timedelta(seconds=1))
    assert itsm_link_sync(link=link).status == "ok"


def test_a_worker_dying_after_create_does_not_make_a_second_record(connection, incident, fake_suite):
    itsm_links_discover()
    link = ItsmLink.objects.get()
    fake_suite.errors.append((TransientError("connection reset"), "after"))
    assert itsm_link_sync(link=link).status == "pending"
    link = ItsmLink.objects.get()
    ItsmLink.objects.filter(pk=link.pk).update(next_attempt_at=None)
    assert itsm_link_sync(link=link).status == "ok"
    assert len(fake_suite.tickets) == 1
    assert link.deliveries.filter(action="create").values_list("status", "detail").last() == (
        "ok",
        f"found FAKE-1 by socialitsm:{incident.number}",
    )


def test_nothing_is_lost_while_the_suite_is_down_for_an_hour(connection, incident, fake_suite, clock, agent):
    itsm_tick()
    link = ItsmLink.objects.get()
    for _ in range(30):
        fake_suite.errors.append(TransientError("HTTP 503"))
    incident_update(incident=incident, actor=agent, state="in_progress")
    ReplyFactory(incident=incident, post=incident.posts.get(), agent=agent, text="Looking", status="sent", sent_at=NOW)
    incident_update(incident=incident, actor=agent, impact=1)
    attempts = 0
    for _ in range(12 * 65):  # ticks every 5 s for 65 minutes
        clock.shift(timedelta(seconds=5))
        if link.pk in itsm_links_due():
            attempts += 1
            itsm_link_sync(link=link)
        if not fake_suite.errors:
            break
    link.refresh_from_db()
    assert attempts == 9  # 30 s, 60 s, ... capped at 15 min: nine tries in the hour
    assert (link.status, link.attempts) == ("pending", 9)
    fake_suite.errors.clear()
    clock.shift(timedelta(minutes=15))
    assert link.pk in itsm_links_due()
    link = itsm_link_sync(link=link)
    assert (link.status, link.attempts, link.last_error) == ("ok", 0, "")
    ticket = fake_suite.tickets[link.remote_id]
    assert (ticket.status, ticket.fields["impact"]) == ("in_progress", 1)
    assert [c["text"].rsplit("\n", 1)[-1] for c in ticket.comments] == ["Looking"]


def test_permanent_error_fails_the_link_until_retried(
    connection, incident, fake_suite, django_capture_on_commit_callbacks
):
    itsm_links_discover()
    link = ItsmLink.objects.get()
    fake_suite.errors.append(PermanentError("HTTP 400: Invalid value for impact"))
    link = itsm_link_sync(link=link)
    assert (link.status, link.last_error) == ("failed", "HTTP 400: Invalid value for impact")
    assert itsm_links_due() == []
    event = IncidentEvent.objects.get(kind="itsm_failed")
    assert event.message == "Suite: HTTP 400: Invalid value for impact"
    with django_capture_on_commit_callbacks(execute=True):
        assert itsm_link_retry(link=link)
    link.refresh_from_db()
    assert (link.status, link.remote_id) == ("ok", "1")
    assert not itsm_link_retry(link=link)


def test_an_unexpected_adapter_error_releases_the_lease_counts_and_retries(connection, incident, fake_suite, clock):
    itsm_links_discover()
    link = ItsmLink.objects.get()
    fake_suite.errors.append(RuntimeError("suite client blew up"))
    link = itsm_link_sync(link=link)
    retry_at = NOW + timedelta(seconds=30)
    assert (link.status, link.lease_until, link.attempts, link.next_attempt_at, link.remote_id) == (
        "pending",
        None,
        1,
        retry_at,
        "",
    )
    assert link.last_error == (
        "unexpected error: RuntimeError: suite client blew up (attempt 1; retrying at 2026-11-26 09:00:30 UTC)"
    )
    assert link.last_error_at == NOW
    delivery = ItsmDelivery.objects.get(link=link)
    assert (delivery.action, delivery.status, delivery.detail) == (
        "create",
        "retrying",
        "unexpected error: RuntimeError: suite client blew up",
    )
    assert itsm_links_due() == []
    clock.shift(timedelta(seconds=30))
    assert itsm_links_due() == [link.pk]
    link = itsm_link_sync(link=link)
    assert (link.status, link.attempts, link.last_error, link.remote_id) == ("ok", 0, "", "1")


def test_an_unexpected_error_while_pulling_releases_the_lease_and_counts(linked, fake_suite, clock):
    fake_suite.errors.append(RuntimeError("no"))
    link = itsm_link_pull(link=linked)
    assert (link.status, link.lease_until, link.attempts, link.next_attempt_at) == (
        "pending",
        None,
        1,
        NOW + timedelta(seconds=30),
    )
    assert link.last_error.startswith("unexpected error: RuntimeError: no (attempt 1;")


def test_follow_up_posts_go_out_as_internal_notes(connection, incident, fake_suite):
    itsm_tick()
    follow_up = PostFactory(text="Still down", author=incident.author, url="https://social.example.com/@maria/2")
    post_link(post=follow_up, incident=incident)
    itsm_tick()
    ticket = fake_suite.tickets["1"]
    assert ticket.comments == [
        {
            "text": "New post from @maria on Replay:\n\nStill down\n\nhttps://social.example.com/@maria/2",
            "public": False,
        }
    ]


def test_follow_up_note_is_the_incidents_own_post_when_another_webhook_channel_reuses_its_id(
    connection, incident, fake_suite
):
    itsm_tick()
    ours, theirs = (ChannelFactory(network="webhook") for _ in range(2))
    follow_up = PostFactory(
        rule__channel=ours, scope=str(ours.pk), external_id="w-2", text="Still down", author=incident.author
    )
    PostFactory(rule__channel=theirs, scope=str(theirs.pk), external_id="w-2", text="Another caller's post")
    post_link(post=follow_up, incident=incident)
    itsm_tick()
    assert [c["text"] for c in fake_suite.tickets["1"].comments] == ["New post from @maria on Webhook:\n\nStill down"]


def test_a_comment_that_failed_is_sent_again_and_once(connection, incident, fake_suite, agent):
    itsm_tick()
    link = ItsmLink.objects.get()
    reply = ReplyFactory(incident=incident, post=incident.posts.get(), agent=agent, text="Hi", status="sent")
    fake_suite.errors.append(TransientError("timed out"))
    itsm_link_sync(link=link)
    assert ItsmDelivery.objects.get(reply=reply).status == "retrying"
    ItsmLink.objects.filter(pk=link.pk).update(next_attempt_at=None)
    itsm_link_sync(link=link)
    itsm_link_sync(link=link)
    delivery = ItsmDelivery.objects.get(reply=reply)
    assert (delivery.status, delivery.attempts, delivery.remote_ref) == ("ok", 2, "1")
    assert len(fake_suite.tickets["1"].comments) == 1


@pytest.fixture
def linked(connection, incident, fake_suite):
    itsm_tick()
    return ItsmLink.objects.get()


def test_suite_state_change_is_applied_when_ours_did_not_change(linked, fake_suite):
    fake_suite.tickets["1"].status = "on_hold"
    itsm_link_pull(link=linked)
    linked.incident.refresh_from_db()
    assert linked.incident.state == "on_hold"
    assert not IncidentEvent.objects.filter(kind="itsm_conflict").exists()
    fake_suite.calls.clear()
    itsm_link_sync(link=linked)
    assert fake_suite.calls == []  # nothing echoes back


def test_conflict_suite_resolution_wins(linked, fake_suite, agent):
    incident_update(incident=linked.incident, actor=agent, state="on_hold")
    fake_suite.tickets["1"].status = "resolved"
    itsm_link_pull(link=linked)
    linked.incident.refresh_from_db()
    assert linked.incident.state == "resolved"
    conflict = IncidentEvent.objects.get(kind="itsm_conflict")
    assert (conflict.old_value, conflict.new_value) == ("on_hold", "resolved")
    assert conflict.message == "Suite FAKE-1 is resolved; both sides changed the state: the suite's resolution wins."


def test_conflict_our_state_wins_otherwise_and_is_pushed_back(linked, fake_suite, agent):
    incident_update(incident=linked.incident, actor=agent, state="on_hold")
    fake_suite.tickets["1"].status = "in_progress"
    itsm_link_pull(link=linked)
    linked.incident.refresh_from_db()
    assert linked.incident.state == "on_hold"
    conflict = IncidentEvent.objects.get(kind="itsm_conflict")
    assert conflict.message.endswith("SocialITSM's state wins and is sent back.")
    itsm_link_sync(link=linked)
    assert fake_suite.tickets["1"].status == "on_hold"


def test_suite_closing_a_new_incident_resolves_then_closes_it(linked, fake_suite):
    fake_suite.tickets["1"].status = "closed"
    itsm_link_pull(link=linked)
    changes = list(
        IncidentEvent.objects.filter(kind="changed", field="state").values_list("old_value", "new_value", "message")
    )
    assert changes == [
        ("new", "resolved", "from Suite FAKE-1 is closed"),
        ("resolved", "closed", "from Suite FAKE-1 is closed"),
    ]


def test_suite_reopening_a_closed_incident_is_refused_and_logged(linked, fake_suite, agent):
    incident_update(incident=linked.incident, actor=agent, state="resolved")
    incident_update(incident=linked.incident, actor=agent, state="closed")
    itsm_link_sync(link=linked)
    fake_suite.tickets["1"].status = "in_progress"
    itsm_link_pull(link=linked)
    linked.incident.refresh_from_db()
    assert linked.incident.state == "closed"
    assert IncidentEvent.objects.get(kind="itsm_conflict").message.endswith(
        "an incident cannot move from Closed to In progress, so it stays."
    )


def test_poll_pulls_open_links_and_schedules_the_next(linked, fake_suite, clock):
    linked.connection.poll_interval = 120
    linked.connection.save()
    fake_suite.calls.clear()
    assert itsm_connection_poll(connection=linked.connection) == {"pulled": 1}
    linked.connection.refresh_from_db()
    assert linked.connection.next_poll_at == NOW + timedelta(seconds=120)
    assert fake_suite.calls == [("fetch", "1")]


def test_tasks_skip_vanished_rows(fake_suite):
    tasks.itsm_link_sync_task(999)
    tasks.itsm_link_pull_task(999)
    tasks.itsm_connection_poll_task(999)
    assert fake_suite.calls == []


def test_sync_task_records_permanent_errors_without_raising(linked, fake_suite, agent):
    incident_update(incident=linked.incident, actor=agent, impact=1)
    fake_suite.errors.append(PermanentError("HTTP 403: ACL"))
    tasks.itsm_link_sync_task(linked.pk)
    linked.refresh_from_db()
    assert (linked.status, linked.last_error) == ("failed", "HTTP 403: ACL")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_workers_and_ticks_make_exactly_one_record(fake_suite, monkeypatch):
    import threading
    import time

    from django.db import connections

    from socialitsm.itsm.fake import FakeAdapter

    connection = ItsmConnection.objects.create(name="S", slug="s", kind="fake", base_url="https://suite.example.com")
    incident = IncidentFactory()
    IncidentEvent.objects.create(incident=incident, kind="opened")
    create = FakeAdapter.create

    def slow_create(self, fields, *, idempotency_key):
        time.sleep(0.2)  # every other worker arrives while the first is inside the suite call
        return create(self, fields, idempotency_key=idempotency_key)

    monkeypatch.setattr(FakeAdapter, "create", slow_create)
    barrier = threading.Barrier(6)
    errors: list[Exception] = []

    def work() -> None:
        try:
            barrier.wait()
            itsm_links_discover()
            for link in ItsmLink.objects.filter(connection=connection):
                itsm_link_sync(link=link)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ItsmLink.objects.count() == 1
    assert [name for name, _ in fake_suite.calls].count("create") == 1
    assert len(fake_suite.tickets) == 1
    assert ItsmLink.objects.get().status == "ok"


def test_tick_task_links_and_pushes(connection, incident, fake_suite):
    tasks.itsm_tick_task()
    assert ItsmLink.objects.get().status == "ok"
    assert len(fake_suite.tickets) == 1


def test_suite_resolving_a_major_incident_resolves_its_children(connection, clock, fake_suite, agent):
    from socialitsm.services.major import major_open

    children = [IncidentFactory(), IncidentFactory()]
    major = major_open(incidents=children, actor=agent, short_description="Mail outage")
    itsm_tick()
    link = ItsmLink.objects.get(incident=major)
    fake_suite.tickets[link.remote_id].status = "resolved"
    itsm_link_pull(link=link)
    major.refresh_from_db()
    assert major.state == "resolved"
    for child in children:
        child.refresh_from_db()
        assert child.state == "resolved"
        event = child.events.get(kind=IncidentEvent.Kind.CHANGED, field="state")
        assert (event.actor, event.message) == (None, f"resolved with major incident {major.number}")


# -- the sync cursor: a tick looks at what changed, not at every link ------------------------------


@pytest.fixture
def quiet(connection, clock, fake_suite):
    """Three incidents linked and in sync, with every event settled and behind the cursor."""
    incidents = [IncidentFactory() for _ in range(3)]
    for incident in incidents:
        IncidentEvent.objects.create(incident=incident, kind="opened")
    itsm_tick()
    clock.shift(timedelta(seconds=31))
    itsm_tick()
    clock.shift(timedelta(seconds=31))
    assert itsm_tick() == {"linked": 0, "synced": 0, "polled": 0}
    fake_suite.calls.clear()
    return incidents


def _cursor(connection) -> int:
    connection.refresh_from_db()
    return connection.sync_cursor


def test_tick_syncs_only_the_links_of_incidents_that_changed(connection, quiet, fake_suite, agent, clock):
    assert _cursor(connection) == IncidentEvent.objects.order_by("pk").last().pk
    changed = quiet[1]
    incident_update(incident=changed, actor=agent, impact=1)
    link = ItsmLink.objects.get(incident=changed)
    assert itsm_links_due() == [link.pk]
    itsm_tick()
    assert fake_suite.tickets[link.remote_id].fields["impact"] == 1
    assert {ref for name, ref in fake_suite.calls if name == "update"} == {link.remote_id}
    clock.shift(timedelta(seconds=31))
    itsm_tick()
    assert _cursor(connection) == IncidentEvent.objects.order_by("pk").last().pk
    assert itsm_links_due() == []


def test_the_tick_reads_the_same_number_of_queries_however_many_links(connection, quiet, agent, clock):
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    incident_update(incident=quiet[0], actor=agent, impact=1)
    with CaptureQueriesContext(db) as few:
        itsm_links_due(now=NOW)
    more = [IncidentFactory() for _ in range(20)]
    ItsmLink.objects.bulk_create(
        [ItsmLink(connection=connection, incident=i, external_ref=f"x:{i.number}", remote_id=i.number) for i in more]
    )
    with CaptureQueriesContext(db) as many:
        due = itsm_links_due(now=NOW)
    assert due == [ItsmLink.objects.get(incident=quiet[0]).pk]
    assert len(many.captured_queries) == len(few.captured_queries)


def test_sync_cursor_waits_for_young_events(connection, quiet, agent, clock):
    before = _cursor(connection)
    incident_update(incident=quiet[0], actor=agent, impact=1)
    clock.shift(timedelta(seconds=29))
    itsm_links_due(advance=True)
    assert _cursor(connection) == before
    clock.shift(timedelta(seconds=2))
    itsm_links_due(advance=True)
    assert _cursor(connection) == IncidentEvent.objects.order_by("pk").last().pk


def test_a_failed_sync_is_retried_when_due_after_the_cursor_moved_on(connection, quiet, fake_suite, agent, clock):
    incident = quiet[2]
    link = ItsmLink.objects.get(incident=incident)
    incident_update(incident=incident, actor=agent, urgency=1)
    retry_at = NOW + timedelta(seconds=62 + 120)
    fake_suite.errors.append(TransientError("HTTP 429", status=429, retry_at=retry_at))
    itsm_tick()
    link.refresh_from_db()
    assert (link.status, link.next_attempt_at) == ("pending", retry_at)
    clock.shift(timedelta(seconds=31))
    assert itsm_tick()["synced"] == 0
    assert _cursor(connection) == IncidentEvent.objects.order_by("pk").last().pk  # past the change
    clock.move_to(retry_at - timedelta(seconds=1))
    assert itsm_links_due() == []
    clock.move_to(retry_at)
    assert itsm_links_due() == [link.pk]
    itsm_tick()
    link.refresh_from_db()
    assert (link.status, link.attempts, link.next_attempt_at) == ("ok", 0, None)
    ticket = fake_suite.tickets[link.remote_id]
    assert (ticket.fields["urgency"], ticket.fields["priority"]) == (1, 3)  # impact 3, urgency 1


def test_a_change_while_a_worker_holds_the_link_is_synced_when_the_lease_ends(
    connection, quiet, fake_suite, agent, clock
):
    incident = quiet[0]
    link = ItsmLink.objects.get(incident=incident)
    lease_until = NOW + timedelta(seconds=62 + 120)
    ItsmLink.objects.filter(pk=link.pk).update(lease_until=lease_until)
    incident_update(incident=incident, actor=agent, impact=1)
    clock.shift(timedelta(seconds=31))
    assert itsm_tick()["synced"] == 0
    assert _cursor(connection) == IncidentEvent.objects.order_by("pk").last().pk
    link.refresh_from_db()
    assert link.recheck_at == lease_until
    clock.move_to(lease_until + timedelta(seconds=1))
    assert itsm_links_due() == [link.pk]
    itsm_tick()
    assert fake_suite.tickets[link.remote_id].fields["impact"] == 1


def test_a_disabled_connection_keeps_its_cursor_until_enabled_again(connection, quiet, fake_suite, agent, clock):
    before = _cursor(connection)
    ItsmConnection.objects.filter(pk=connection.pk).update(enabled=False)
    incident_update(incident=quiet[1], actor=agent, impact=1)
    clock.shift(timedelta(seconds=31))
    assert itsm_tick()["synced"] == 0
    assert _cursor(connection) == before
    ItsmConnection.objects.filter(pk=connection.pk).update(enabled=True)
    assert itsm_links_due() == [ItsmLink.objects.get(incident=quiet[1]).pk]
