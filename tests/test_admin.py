from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import (
    AuthorErasure,
    Broadcast,
    Channel,
    ChannelAlert,
    ChatWebhook,
    Incident,
    IncidentEvent,
    IngestRejection,
    ItsmConnection,
    ItsmLink,
    Notification,
    Post,
    Reply,
    SlaCalendar,
    SlaClock,
    SlaPolicy,
    StatusPost,
)
from socialitsm.services.itsm_sync import itsm_links_due
from socialitsm.services.sla import incident_sla_recompute

from .factories import (
    ChannelFactory,
    IncidentFactory,
    PostFactory,
    ReplyFactory,
    UserFactory,
    WatchRuleFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


# Written only by the services (or a record of what ingest set aside): the admin shows them and
# acts on them, it does not add them.
NOT_ADDED_IN_ADMIN = {Incident, Post, Reply, IngestRejection, Broadcast, StatusPost, AuthorErasure, ChannelAlert}
NOT_ADDED_IN_ADMIN |= {Notification}
# Added on their own pages, where what is entered is checked.
NOT_ADDED_IN_ADMIN |= {ChatWebhook}


@pytest.mark.parametrize("model", [m for m in admin.site._registry if m._meta.app_label == "socialitsm"])
def test_admin_pages_render(admin_client, model):
    ReplyFactory(post=PostFactory(incident=IncidentFactory()))
    post = Post.objects.get()
    IngestRejection.objects.create(channel=post.channel, network="replay", external_id="p-x", error="refused")
    prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    assert admin_client.get(reverse(f"{prefix}_changelist")).status_code == 200
    assert admin_client.get(reverse(f"{prefix}_add")).status_code == (403 if model in NOT_ADDED_IN_ADMIN else 200)
    obj = model.objects.first()
    if obj is not None:
        assert admin_client.get(reverse(f"{prefix}_change", args=[obj.pk])).status_code == 200


def test_channel_credentials_are_write_only(admin_client):
    channel = ChannelFactory(credentials={"token": "keep-me"})
    WatchRuleFactory(channel=channel)
    url = reverse("admin:socialitsm_channel_change", args=[channel.pk])
    page = admin_client.get(url).content.decode()
    assert "keep-me" not in page
    form = {
        "name": channel.name,
        "slug": channel.slug,
        "network": "replay",
        "handle": "@ITSupport",
        "base_url": "",
        "config": '{"connector": "fake"}',
        "listen_mode": "poll",
        "poll_interval": "30",
        "enabled": "on",
        "new_credentials": "",
        "rules-TOTAL_FORMS": "0",
        "rules-INITIAL_FORMS": "0",
    }
    assert admin_client.post(url, form).status_code == 302
    assert Channel.objects.get(pk=channel.pk).credentials == {"token": "keep-me"}
    form["new_credentials"] = '{"token": "rotated"}'
    assert admin_client.post(url, form).status_code == 302
    channel = Channel.objects.get(pk=channel.pk)
    assert (channel.credentials, channel.poll_interval) == ({"token": "rotated"}, 30)


CALENDAR_FORM = {
    "name": "Office",
    "timezone": "Europe/Berlin",
    "hours": '{"mon": [["09:00", "17:00"]]}',
    "holiday_country": "DE",
    "holiday_subdivision": "",
    "closed_dates": '["2026-12-24"]',
}


@pytest.fixture
def recomputes(monkeypatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr("socialitsm.tasks.sla_recompute_open_task.delay", lambda: calls.append(1))
    return calls


def test_saving_an_sla_calendar_re_evaluates_open_incidents(
    admin_client, recomputes, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:socialitsm_slacalendar_add"), CALENDAR_FORM)

    assert response.status_code == 302
    assert SlaCalendar.objects.get().closed_dates == ["2026-12-24"]
    assert recomputes == [1]


def test_a_bad_sla_calendar_is_refused_in_the_admin(admin_client, recomputes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:socialitsm_slacalendar_add"), {**CALENDAR_FORM, "hours": '{"mon": [["17:00", "09:00"]]}'}
        )

    assert response.status_code == 200
    assert "mon: 17:00-09:00 ends before it starts" in response.content.decode()
    assert (SlaCalendar.objects.count(), recomputes) == (0, [])


def test_itsm_connection_credentials_are_write_only(admin_client):
    from socialitsm.models import ItsmConnection

    connection = ItsmConnection.objects.create(
        name="RT", slug="rt", kind="rt", base_url="https://rt.example.com", credentials={"token": "keep-me"}
    )
    url = reverse("admin:socialitsm_itsmconnection_change", args=[connection.pk])
    assert "keep-me" not in admin_client.get(url).content.decode()
    form = {
        "name": "RT",
        "slug": "rt",
        "kind": "rt",
        "base_url": "https://rt.example.com",
        "new_credentials": "",
        "config": '{"queue": "Social"}',
        "field_map": "{}",
        "state_map": "{}",
        "rule_max_priority": "2",
        "poll_interval": "60",
        "enabled": "on",
    }
    assert admin_client.post(url, form).status_code == 302
    connection.refresh_from_db()
    assert (connection.credentials, connection.config, connection.rule_max_priority) == (
        {"token": "keep-me"},
        {"queue": "Social"},
        2,
    )
    form["new_credentials"] = '{"token": "rotated"}'
    assert admin_client.post(url, form).status_code == 302
    assert ItsmConnection.objects.get(pk=connection.pk).credentials == {"token": "rotated"}


def test_itsm_link_retry_action(admin_client, fake_suite, django_capture_on_commit_callbacks):
    from socialitsm.models import ItsmConnection, ItsmLink

    connection = ItsmConnection.objects.create(name="S", slug="s", kind="fake", base_url="https://suite.example.com")
    incident = IncidentFactory()
    link = ItsmLink.objects.create(
        connection=connection, incident=incident, external_ref="x:1", status="failed", last_error="HTTP 401"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:socialitsm_itsmlink_changelist"), {"action": "retry", "_selected_action": [link.pk]}
        )
    assert response.status_code == 302
    link.refresh_from_db()
    assert (link.status, link.remote_id, link.last_error) == ("ok", "1", "")


def test_reply_retry_action_sends_failed_and_waiting_replies_and_skips_the_rest(
    admin_client, fake_network, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from socialitsm.models import IncidentEvent, Reply

    from .factories import ReplyFactory

    post = PostFactory(incident=IncidentFactory())
    later = timezone.now() + timedelta(minutes=5)
    chosen = {
        "failed": ReplyFactory(post=post, status="failed", attempts=1, error="HTTP 422"),
        "waiting": ReplyFactory(post=post, attempts=3, error="HTTP 503", retry_after=later),
        "sent": ReplyFactory(post=post, status="sent", external_id="fake-9"),
        "canceled": ReplyFactory(post=post, status="canceled"),
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:socialitsm_reply_changelist"),
            {"action": "retry_failed", "_selected_action": [r.pk for r in chosen.values()]},
        )
    assert response.status_code == 302
    statuses = {name: Reply.objects.get(pk=r.pk).status for name, r in chosen.items()}
    assert statuses == {"failed": "sent", "waiting": "sent", "sent": "sent", "canceled": "canceled"}
    assert len(fake_network.sent) == 2
    retried = IncidentEvent.objects.filter(kind="reply_retried")
    assert sorted(retried.values_list("actor__username", "old_value")) == [("root", "Failed"), ("root", "Queued")]


def _channel_form(**changes) -> dict:
    form = {
        "name": "Fake support",
        "slug": "fake-support",
        "network": "replay",
        "handle": "",
        "base_url": "",
        "config": '{"connector": "fake"}',
        "listen_mode": "poll",
        "poll_interval": "60",
        "enabled": "on",
        "new_credentials": '{"access_token": "t0k3n"}',
        "rules-TOTAL_FORMS": "0",
        "rules-INITIAL_FORMS": "0",
    }
    form.update(changes)
    return form


def test_saving_a_channel_checks_its_credentials_and_learns_the_account(admin_client, fake_network):
    fake_network.account = ("@acmesupport", "109876")
    response = admin_client.post(reverse("admin:socialitsm_channel_add"), _channel_form())
    assert response.status_code == 302
    channel = Channel.objects.get(slug="fake-support")
    assert (channel.handle, channel.config, channel.credentials) == (
        "@acmesupport",
        {"connector": "fake", "account_id": "109876"},
        {"access_token": "t0k3n"},
    )


def test_refused_credentials_are_shown_and_nothing_is_saved(admin_client, fake_network):
    fake_network.errors.append(PermanentError("authentication refused (HTTP 401 from mastodon.example)"))
    response = admin_client.post(reverse("admin:socialitsm_channel_add"), _channel_form())
    assert response.status_code == 200
    assert "The network did not accept this channel: authentication refused (HTTP 401 from mastodon.example)" in (
        response.content.decode()
    )
    assert not Channel.objects.exists()


def test_a_channel_can_be_saved_without_checking(admin_client, fake_network):
    fake_network.errors.append(TransientError("timed out calling mastodon.example"))
    response = admin_client.post(reverse("admin:socialitsm_channel_add"), _channel_form(skip_verify="on"))
    assert response.status_code == 302
    assert Channel.objects.get().handle == ""
    assert fake_network.errors  # the network was not asked


def test_renaming_a_channel_does_not_ask_the_network(admin_client, fake_network):
    channel = ChannelFactory(name="Old", slug="fake-support", config={"connector": "fake"}, poll_interval=60)
    fake_network.errors.append(TransientError("the network is down"))
    # The admin posts the value a field had when the page was drawn beside fields with a callable default.
    form = _channel_form(
        name="New", new_credentials="", handle=channel.handle, **{"initial-config": '{"connector": "fake"}'}
    )
    response = admin_client.post(reverse("admin:socialitsm_channel_change", args=[channel.pk]), form)
    assert response.status_code == 302
    assert Channel.objects.get().name == "New"


def test_check_credentials_action_reports_each_channel(admin_client, fake_network):
    good = ChannelFactory(name="B good", slug="good", config={"connector": "fake"})
    bad = ChannelFactory(name="A bad", slug="bad", config={"connector": "fake"})
    fake_network.errors.append(PermanentError("authentication refused (HTTP 401)"))
    response = admin_client.post(
        reverse("admin:socialitsm_channel_changelist"),
        {"action": "check_credentials", "_selected_action": [bad.pk, good.pk]},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == [
        "bad: authentication refused (HTTP 401)",
        "good: accepted as @ITSupport",
    ]
    assert Channel.objects.get(pk=good.pk).config["account_id"] == "fake-account-1"
    assert Channel.objects.get(pk=bad.pk).health == "failing"


def test_moving_a_channel_to_another_host_asks_for_its_credentials_again(admin_client, fake_network):
    channel = ChannelFactory(
        slug="fake-support",
        config={"connector": "fake"},
        base_url="https://mastodon.example",
        credentials={"access_token": "stored-t0k3n"},
    )
    url = reverse("admin:socialitsm_channel_change", args=[channel.pk])
    moved = _channel_form(base_url="https://collector.example.net", new_credentials="", handle=channel.handle)
    fake_network.errors.append(TransientError("the network was asked"))

    response = admin_client.post(url, moved)

    # Not saved, and the network was not asked: the stored token never went to the new host.
    assert response.status_code == 200
    assert "The base URL now points to another host: enter the credentials for it again." in response.content.decode()
    assert Channel.objects.get(pk=channel.pk).base_url == "https://mastodon.example"
    assert len(fake_network.errors) == 1
    fake_network.errors.clear()
    same_host = _channel_form(base_url="https://MASTODON.example:443/", new_credentials="", handle=channel.handle)
    assert admin_client.post(url, same_host).status_code == 302
    moved["new_credentials"] = '{"access_token": "new-t0k3n"}'
    assert admin_client.post(url, moved).status_code == 302
    channel.refresh_from_db()
    assert (channel.base_url, channel.credentials) == ("https://collector.example.net", {"access_token": "new-t0k3n"})


def test_moving_an_itsm_connection_to_another_host_asks_for_its_credentials_again(admin_client):
    from socialitsm.models import ItsmConnection

    connection = ItsmConnection.objects.create(
        name="RT", slug="rt", kind="rt", base_url="https://rt.example.com", credentials={"token": "keep-me"}
    )
    url = reverse("admin:socialitsm_itsmconnection_change", args=[connection.pk])
    form = {
        "name": "RT",
        "slug": "rt",
        "kind": "rt",
        "base_url": "https://collector.example.net",
        "new_credentials": "",
        "config": "{}",
        "field_map": "{}",
        "state_map": "{}",
        "rule_max_priority": "2",
        "poll_interval": "60",
        "enabled": "on",
    }

    response = admin_client.post(url, form)

    assert response.status_code == 200
    assert "The base URL now points to another host: enter the credentials for it again." in response.content.decode()
    assert ItsmConnection.objects.get(pk=connection.pk).base_url == "https://rt.example.com"
    form["new_credentials"] = '{"token": "for-the-new-host"}'
    assert admin_client.post(url, form).status_code == 302
    connection.refresh_from_db()
    assert (connection.base_url, connection.credentials) == (
        "https://collector.example.net",
        {"token": "for-the-new-host"},
    )


def test_pointing_the_mastodon_stream_to_another_host_asks_for_the_credentials_again(admin_client, fake_network):
    channel = ChannelFactory(
        slug="fake-support",
        config={"connector": "fake", "streaming_url": "wss://streaming.mastodon.example"},
        base_url="https://mastodon.example",
        credentials={"access_token": "stored-t0k3n"},
    )
    url = reverse("admin:socialitsm_channel_change", args=[channel.pk])
    form = _channel_form(
        base_url="https://mastodon.example",
        new_credentials="",
        handle=channel.handle,
        config='{"connector": "fake", "streaming_url": "wss://collector.example.net"}',
    )
    fake_network.errors.append(TransientError("the network was asked"))

    response = admin_client.post(url, form)

    assert response.status_code == 200
    assert "streaming_url points to another host: enter the credentials for it again." in response.content.decode()
    assert Channel.objects.get(pk=channel.pk).config["streaming_url"] == "wss://streaming.mastodon.example"
    assert len(fake_network.errors) == 1
    fake_network.errors.clear()
    form["config"] = '{"connector": "fake", "streaming_url": "wss://streaming.mastodon.example:443"}'
    assert admin_client.post(url, form).status_code == 302


NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _incident_form(incident: Incident, **changes) -> dict:
    """The incident change form as the admin draws it, with `changes` typed in."""
    form = {
        "short_description": incident.short_description,
        "state": incident.state,
        "impact": str(incident.impact),
        "urgency": str(incident.urgency),
        "service": str(incident.service_id or ""),
        "category": incident.category,
        "assignment_group": str(incident.assignment_group_id or ""),
        "assignee": str(incident.assignee_id or ""),
        "sla_clocks-TOTAL_FORMS": "0",
        "sla_clocks-INITIAL_FORMS": "0",
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
    }
    form.update({name: str(value) for name, value in changes.items()})
    return form


def _change_url(obj) -> str:
    return reverse(f"admin:socialitsm_{obj._meta.model_name}_change", args=[obj.pk])


@pytest.fixture
def worked_incident(db) -> Incident:
    """A P4 incident opened at 08:00 under a policy that pauses on hold, synced to a suite that
    has seen every event so far."""
    SlaPolicy.objects.create(
        name="P4", priority=4, first_response_minutes=60, resolution_minutes=480, pause_states=["on_hold"]
    )
    with time_machine.travel(NOW - timedelta(hours=1), tick=False):
        incident = IncidentFactory(impact=2, urgency=3)
        post = PostFactory(posted_at=NOW - timedelta(hours=1), ingested_at=NOW - timedelta(hours=1))
        post.incident = incident
        post.save()
        incident_sla_recompute(incident=incident)
    connection = ItsmConnection.objects.create(name="S", slug="s", kind="fake", base_url="https://suite.example.com")
    ItsmLink.objects.create(
        connection=connection,
        incident=incident,
        external_ref=f"socialitsm:{incident.number}",
        remote_id="1",
        status=ItsmLink.Status.OK,
        event_watermark=IncidentEvent.objects.order_by("pk").last().pk if IncidentEvent.objects.exists() else 0,
    )
    incident.refresh_from_db()
    return incident


@time_machine.travel(NOW, tick=False)
def test_an_admin_state_change_goes_through_the_incident_service(admin_client, worked_incident):
    incident = worked_incident
    assert (incident.state, incident.resolution_due_at) == ("new", NOW + timedelta(hours=7))
    assert itsm_links_due(now=NOW) == []

    response = admin_client.post(_change_url(incident), _incident_form(incident, state="on_hold"))

    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.state == "on_hold"
    assert list(
        incident.events.filter(kind="changed").values_list("actor__username", "field", "old_value", "new_value")
    ) == [("root", "state", "new", "on_hold")]
    # On hold pauses the resolution clock: no due time while paused, one hour of eight used.
    resolution = incident.sla_clocks.get(target=SlaClock.Target.RESOLUTION)
    assert (resolution.state, resolution.due_at, resolution.elapsed_seconds, incident.resolution_due_at) == (
        "paused",
        None,
        3600,
        None,
    )
    # The audit events are the outbox the ITSM sync reads: the link is due again.
    assert itsm_links_due(now=NOW) == [incident.itsm_links.get().pk]


@time_machine.travel(NOW, tick=False)
def test_an_admin_priority_change_is_audited_with_the_priority_it_gives(admin_client, worked_incident):
    incident = worked_incident

    response = admin_client.post(_change_url(incident), _incident_form(incident, impact=1, urgency=1))

    assert response.status_code == 302
    incident.refresh_from_db()
    assert (incident.impact, incident.urgency, incident.priority, incident.sla_policy) == (1, 1, 1, None)
    assert list(
        incident.events.filter(kind="changed").values_list("actor__username", "field", "old_value", "new_value")
    ) == [("root", "impact", "2", "1"), ("root", "urgency", "3", "1"), ("root", "priority", "4", "1")]
    # No policy measures P1 here: the replay dropped the P4 clocks.
    assert (incident.sla_clocks.count(), incident.response_due_at) == (0, None)


@pytest.mark.parametrize(
    ("state", "change", "error"),
    [
        ("closed", {"state": "in_progress"}, "an incident cannot move from Closed to In progress"),
        ("canceled", {"state": "new"}, "an incident cannot move from Canceled to New"),
        ("in_progress", {"state": "new"}, "an incident cannot move from In progress to New"),
    ],
)
def test_an_admin_state_move_that_is_not_allowed_is_refused_on_the_form(admin_client, state, change, error):
    incident = IncidentFactory(state=state)
    events = IncidentEvent.objects.count()

    response = admin_client.post(_change_url(incident), _incident_form(incident, short_description="Edited", **change))

    assert response.status_code == 200
    assert error in response.content.decode()
    incident.refresh_from_db()
    assert (incident.state, incident.short_description) == (state, "VPN down again")
    assert IncidentEvent.objects.count() == events


def test_raw_posts_of_read_only_incident_fields_change_nothing(admin_client):
    incident = IncidentFactory(description="As posted")
    before = Incident.objects.filter(pk=incident.pk).values().get()
    other = IncidentFactory()
    raw = _incident_form(
        incident,
        number="INC0000001",
        priority="1",
        description="Rewritten",
        parent=other.pk,
        opened_at_0="2020-01-01",
        opened_at_1="00:00:00",
        resolved_at_0="2020-01-02",
        resolved_at_1="00:00:00",
        response_breached="on",
        resolution_due_at_0="2030-01-01",
        resolution_due_at_1="00:00:00",
    )

    response = admin_client.post(_change_url(incident), raw)

    assert response.status_code == 302
    after = Incident.objects.filter(pk=incident.pk).values().get()
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }
    assert not incident.events.exists()


@pytest.mark.parametrize("model", ["post", "reply"])
def test_posts_and_replies_cannot_be_edited_in_the_admin(admin_client, model):
    reply = ReplyFactory(post=PostFactory(incident=IncidentFactory()), status=Reply.Status.FAILED, text="On it")
    obj = reply if model == "reply" else reply.post
    raw = {"text": "Rewritten", "status": "sent", "external_id": "forged", "triage_state": "ignored", "incident": ""}

    assert admin_client.get(_change_url(obj)).status_code == 200  # still shown
    assert admin_client.post(_change_url(obj), raw).status_code == 403
    delete = reverse(f"admin:socialitsm_{model}_delete", args=[obj.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403

    reply.refresh_from_db()
    reply.post.refresh_from_db()
    assert (reply.text, reply.status, reply.external_id) == ("On it", "failed", "")
    assert (reply.post.text, reply.post.triage_state, reply.post.incident_id) == (
        "VPN down again, third time this week",
        "pending",
        reply.incident_id,
    )


def test_an_itsm_link_cannot_be_moved_to_another_incident_or_suite(admin_client):
    first = ItsmConnection.objects.create(name="A", slug="a", kind="fake", base_url="https://a.example.com")
    second = ItsmConnection.objects.create(name="B", slug="b", kind="fake", base_url="https://b.example.com")
    incident, other = IncidentFactory(), IncidentFactory()
    link = ItsmLink.objects.create(connection=first, incident=incident, external_ref="socialitsm:x", remote_id="7")
    raw = {
        "connection": second.pk,
        "incident": other.pk,
        "created_at_0": "2020-01-01",
        "created_at_1": "00:00:00",
        "deliveries-TOTAL_FORMS": "0",
        "deliveries-INITIAL_FORMS": "0",
    }

    assert admin_client.post(_change_url(link), raw).status_code == 302

    link.refresh_from_db()
    assert (link.connection, link.incident, link.remote_id) == (first, incident, "7")
    assert link.created_at.year == timezone.now().year


def test_incidents_cannot_be_deleted_in_the_admin(admin_client):
    incident = IncidentFactory()
    response = admin_client.post(reverse("admin:socialitsm_incident_delete", args=[incident.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Incident.objects.filter(pk=incident.pk).exists()


def _action(admin_client, model: str, action: str, *objs):
    return admin_client.post(
        reverse(f"admin:socialitsm_{model}_changelist"),
        {"action": action, "_selected_action": [o.pk for o in objs]},
        follow=True,
    )


def test_assign_to_me_action_assigns_and_starts_work(admin_client):
    fresh = IncidentFactory(number="INC0000010")
    held = IncidentFactory(number="INC0000011", state=Incident.State.ON_HOLD)

    response = _action(admin_client, "incident", "assign_to_me", fresh, held)

    assert [str(m) for m in response.context["messages"]] == [
        "INC0000010: assigned to you",
        "INC0000011: assigned to you",
    ]
    fresh.refresh_from_db()
    held.refresh_from_db()
    assert (fresh.assignee.username, fresh.state, held.assignee.username, held.state) == (
        "root",
        "in_progress",
        "root",
        "on_hold",
    )
    assert list(fresh.events.values_list("actor__username", "field", "new_value")) == [
        ("root", "assignee", "root"),
        ("root", "state", "in_progress"),
    ]


@pytest.mark.parametrize(("action", "state"), [("resolve", "resolved"), ("put_on_hold", "on_hold")])
def test_state_actions_go_through_the_incident_service(admin_client, action, state):
    incident = IncidentFactory(number="INC0000010", state=Incident.State.IN_PROGRESS)
    closed = IncidentFactory(number="INC0000011", state=Incident.State.CLOSED)

    response = _action(admin_client, "incident", action, incident, closed)

    label = Incident.State(state).label
    assert [str(m) for m in response.context["messages"]] == [
        f"INC0000010: {label.lower()}",
        f"INC0000011: an incident cannot move from Closed to {label}",
    ]
    incident.refresh_from_db()
    assert incident.state == state
    assert list(incident.events.values_list("actor__username", "field", "old_value", "new_value")) == [
        ("root", "state", "in_progress", state)
    ]
    assert (Incident.objects.get(pk=closed.pk).state, closed.events.count()) == ("closed", 0)


def test_label_actions_record_who_labelled(admin_client):
    posts = [PostFactory(), PostFactory()]

    response = _action(admin_client, "post", "label_not_complaint", *posts)

    assert [str(m) for m in response.context["messages"]] == ["2 posts labelled not a complaint."]
    assert list(Post.objects.order_by("pk").values_list("label", "labelled_by__username")) == [
        ("not_complaint", "root"),
        ("not_complaint", "root"),
    ]


def test_promote_action_opens_an_incident_for_a_queued_post(admin_client):
    queued = PostFactory(external_id="q-1", triage_state=Post.Triage.QUEUED)
    pending = PostFactory(external_id="p-1")

    response = _action(admin_client, "post", "promote", queued, pending)

    queued.refresh_from_db()
    assert [str(m) for m in response.context["messages"]] == [
        f"replay:q-1: linked to {queued.incident.number}",
        "replay:p-1: post has not been classified yet",
    ]
    assert list(queued.incident.events.values_list("kind", "actor__username")) == [
        ("opened", "root"),
        ("post_linked", "root"),
        ("promoted", "root"),
    ]
    assert Post.objects.get(pk=pending.pk).incident is None


def test_retry_action_queues_failed_replies_again(admin_client, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr("socialitsm.services.replies._enqueue_send", sent.append)
    failed = ReplyFactory(status=Reply.Status.FAILED, error="HTTP 422")
    done = ReplyFactory(status=Reply.Status.SENT)

    with django_capture_on_commit_callbacks(execute=True):
        response = _action(admin_client, "reply", "retry_failed", failed, done)

    assert [str(m) for m in response.context["messages"]] == ["1 replies queued again."]
    assert list(Reply.objects.order_by("pk").values_list("status", "error")) == [("queued", ""), ("sent", "")]
    assert sent == [failed.pk]


def test_posts_set_aside_are_counted_on_the_channel_and_listed_read_only(admin_client):
    channel = ChannelFactory()
    IngestRejection.objects.create(channel=channel, network="replay", external_id="p-1", error="DataError: boom")
    IngestRejection.objects.create(channel=channel, network="replay", external_id="p-2", error="DataError: boom")
    old = IngestRejection.objects.create(channel=channel, network="replay", external_id="p-0", error="old")
    IngestRejection.objects.filter(pk=old.pk).update(created_at=old.created_at - timedelta(days=2))

    page = admin_client.get(reverse("admin:socialitsm_channel_changelist")).content.decode()
    assert f'<a href="/admin/socialitsm/ingestrejection/?channel__id__exact={channel.pk}">2</a>' in page
    listed = admin_client.get(
        reverse("admin:socialitsm_ingestrejection_changelist") + f"?channel__id__exact={channel.pk}"
    )
    assert [r.external_id for r in listed.context["cl"].result_list] == ["p-2", "p-1", "p-0"]
    change = admin_client.post(reverse("admin:socialitsm_ingestrejection_change", args=[old.pk]), {"error": "edited"})
    assert change.status_code == 403
    assert IngestRejection.objects.get(pk=old.pk).error == "old"


def test_route_again_action_hands_parked_posts_back_to_routing(admin_client, django_capture_on_commit_callbacks):
    parked = PostFactory(text="Anyone up for lunch at the canteen today?")
    Post.objects.filter(pk=parked.pk).update(routing_error="ValueError: x", routing_failed_at=timezone.now())
    untouched = PostFactory(text="Anyone up for lunch at the canteen today?")

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:socialitsm_post_changelist"),
            {"action": "route_again", "_selected_action": [parked.pk, untouched.pk]},
            follow=True,
        )

    assert [str(m) for m in response.context["messages"]] == ["1 post(s) handed to routing again."]
    parked.refresh_from_db()
    assert (parked.routing_error, parked.routing_failed_at, parked.triage_state) == ("", None, "ignored")
    # Only the parked post was handed back; the other was never parked (a drain routes whatever
    # is pending anyway, so its triage state says nothing about the action).
    assert Post.objects.get(pk=untouched.pk).routing_failed_at is None


def test_a_post_shows_its_earlier_versions_read_only(admin_client):
    from socialitsm.connectors import InboundAuthor, InboundPost
    from socialitsm.services.edits import post_edit

    post = PostFactory(text="VPN down <b>again</b>")
    edit = InboundPost(
        external_id=post.external_id,
        author=InboundAuthor(post.author.external_id),
        text="VPN down again, since 8",
        posted_at=post.posted_at,
        edited_at=post.posted_at + timedelta(minutes=4),
    )
    post_edit(post=post, edit=edit)

    body = admin_client.get(_change_url(post)).content.decode()

    assert "VPN down &lt;b&gt;again&lt;/b&gt;" in body
    assert 'name="revisions-0-text"' not in body


def test_admin_erases_a_poster_for_a_lead_only(admin_client):
    post = PostFactory(text="my VPN is down")
    url = reverse("admin:socialitsm_author_changelist")
    staff = UserFactory(username="staff.sam", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_author", "change_author"]))
    staff_client = Client()
    staff_client.force_login(staff)

    staff_client.post(url, {"action": "erase", "_selected_action": [post.author_id]})
    assert not AuthorErasure.objects.exists()
    assert Post.objects.filter(pk=post.pk).exists()

    admin_client.post(url, {"action": "erase", "_selected_action": [post.author_id]})
    assert AuthorErasure.objects.get().author_id_erased == post.author_id
    assert not Post.objects.filter(pk=post.pk).exists()


def test_replies_are_called_replies_in_the_admin():
    from socialitsm.models import Reply

    assert str(Reply._meta.verbose_name_plural) == "replies"
