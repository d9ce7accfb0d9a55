"""A channel config its connector cannot read is refused at the door (admin, command), naming
the key, and nothing is stored."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from socialitsm.models import Channel

from ..factories import UserFactory

pytestmark = pytest.mark.django_db

CASES = [
    ("x", '{"max_pages": "many"}', "config max_pages: expected a number, got 'many'"),
    ("x", '{"max_pages": -2}', "config max_pages: expected a number of at least 0, got -2"),
    ("x", '{"reply_policy": "everyone"}', "config reply_policy: expected one of summoned, any"),
    ("x", '{"prices": 0.01}', "config prices: expected a JSON object, got 0.01"),
    ("reddit", '{"subreddits": [1, 2]}', "config subreddits: expected a list of names, got [1, 2]"),
    ("reddit", '{"include_comments": "no"}', "config include_comments: expected true or false, got 'no'"),
    ("reddit", '{"user_agent": {"name": "bot"}}', "config user_agent: expected text, got {'name': 'bot'}"),
    (
        "mastodon",
        '{"streaming_url": "https://streaming.example.com"}',
        "config streaming_url: expected a wss:// address",
    ),
    ("mastodon", '{"reply_visibility": "direct"}', "config reply_visibility: expected public or unlisted"),
    (
        "bluesky",
        '{"jetstream_url": "https://jetstream.example.com"}',
        "config jetstream_url: expected a wss:// address",
    ),
    ("mastodon", '["a", "list"]', "config must be a JSON object"),
    ("x", '{"recheck_minutes": "hourly"}', "config recheck_minutes: expected a number, got 'hourly'"),
    ("bluesky", '{"recheck_max_posts": -5}', "config recheck_max_posts: expected a number of at least 0, got -5"),
]


@pytest.mark.parametrize(("network", "config", "error"), CASES)
def test_admin_refuses_a_config_the_connector_cannot_read(client, network, config, error):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    form = {
        "name": "Support",
        "slug": "support",
        "network": network,
        "handle": "@support",
        "base_url": "",
        "config": config,
        "listen_mode": "poll",
        "poll_interval": "60",
        "enabled": "on",
        "new_credentials": '{"access_token": "t0k3n"}',
        "rules-TOTAL_FORMS": "0",
        "rules-INITIAL_FORMS": "0",
    }
    response = client.post(reverse("admin:socialitsm_channel_add"), form)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["config"] == [error[:1].upper() + error[1:] + "."]
    assert not Channel.objects.exists()


@pytest.mark.parametrize(
    ("network", "option", "error"),
    [
        ("x", "max_pages=many", "config: config max_pages: expected a number, got 'many'"),
        ("x", "reply_policy=everyone", "config: config reply_policy: expected one of summoned, any"),
        ("mastodon", "streaming_url=https://streaming.example.com", "config: config streaming_url: expected a wss://"),
    ],
)
def test_channel_command_refuses_a_config_the_connector_cannot_read(monkeypatch, network, option, error):
    monkeypatch.setenv("SOCIALITSM_CREDENTIAL_ACCESS_TOKEN", "t0k3n")
    with pytest.raises(CommandError) as refused:
        call_command(
            "socialitsm_channel",
            "add",
            "support",
            f"--network={network}",
            f"--config={option}",
            "--credential=access_token",
            "--no-verify",
        )
    assert str(refused.value).startswith(error)
    assert not Channel.objects.exists()


def test_channel_command_takes_config_values_given_as_text(monkeypatch):
    monkeypatch.setenv("SOCIALITSM_CREDENTIAL_ACCESS_TOKEN", "t0k3n")
    call_command(
        "socialitsm_channel",
        "add",
        "support",
        "--network=reddit",
        "--config=subreddits=sysadmin,acme",
        "--config=max_pages=3",
        "--credential=access_token",
        "--no-verify",
    )
    assert Channel.objects.get(slug="support").config == {"subreddits": "sysadmin,acme", "max_pages": "3"}
