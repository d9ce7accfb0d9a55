from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Channel, SlaCalendar

from .factories import ChannelFactory, IncidentFactory, PostFactory, UserFactory, WatchRuleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("model", [m for m in admin.site._registry if m._meta.app_label == "socialitsm"])
def test_admin_pages_render(admin_client, model):
    PostFactory(incident=IncidentFactory())
    prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    assert admin_client.get(reverse(f"{prefix}_changelist")).status_code == 200
    assert admin_client.get(reverse(f"{prefix}_add")).status_code == 200
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
