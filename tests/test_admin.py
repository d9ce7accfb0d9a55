from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Channel

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
