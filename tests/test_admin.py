from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

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
