from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from socialitsm.exceptions import PermanentError
from socialitsm.models import Channel

from .factories import ChannelFactory, WatchRuleFactory, inbound

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("socialitsm_channel", *args, stdout=out)
    return out.getvalue()


def test_add_reads_the_secret_from_the_environment_and_verifies(monkeypatch, fake_network):
    monkeypatch.setenv("SOCIALITSM_CREDENTIAL_ACCESS_TOKEN", "t0k3n")
    fake_network.account = ("@acmesupport@mastodon.example", "1099")
    out = _run(
        "add",
        "acme-fake",
        "--network=replay",
        "--config=connector=fake",
        "--credential=access_token",
        "--rule=hashtag=acmedown",
        "--rule=mentions=",
        "--stream",
    )
    assert out == ("added acme-fake (Replay) as @acmesupport@mastodon.example with 2 rules, listening by stream\n")
    channel = Channel.objects.get(slug="acme-fake")
    assert channel.credentials == {"access_token": "t0k3n"}
    assert channel.config == {"connector": "fake", "account_id": "1099"}
    assert sorted(channel.rules.values_list("name", "kind", "query")) == [
        ("hashtag: acmedown", "hashtag", "acmedown"),
        ("mentions", "mentions", ""),
    ]


def test_add_without_a_secret_and_no_terminal_fails(monkeypatch):
    monkeypatch.delenv("SOCIALITSM_CREDENTIAL_ACCESS_TOKEN", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(CommandError, match=r"set \$SOCIALITSM_CREDENTIAL_ACCESS_TOKEN"):
        _run("add", "x1", "--network=replay", "--config=connector=fake", "--credential=access_token")
    assert not Channel.objects.exists()


def test_add_refused_by_the_network_saves_nothing(monkeypatch, fake_network):
    monkeypatch.setenv("SOCIALITSM_CREDENTIAL_ACCESS_TOKEN", "wrong")
    fake_network.errors.append(PermanentError("authentication refused (HTTP 401)"))
    with pytest.raises(CommandError, match=r"the network refused: authentication refused \(HTTP 401\)"):
        _run("add", "x1", "--network=replay", "--config=connector=fake", "--credential=access_token")
    assert not Channel.objects.exists()


def test_add_refuses_a_bad_rule_kind():
    with pytest.raises(CommandError, match="--rule kind 'keyword'"):
        _run("add", "x1", "--network=replay", "--rule=keyword=vpn")


def test_test_reports_the_account_and_what_each_rule_finds(fake_network):
    channel = ChannelFactory(slug="acme", config={"connector": "fake"})
    WatchRuleFactory(channel=channel, name="VPN")
    fake_network.inbox["acme"] += [inbound("p1"), inbound("p2")]
    fake_network.quota = {"remaining": 297, "limit": 300}
    out = _run("test", "acme", "--search")
    assert out == (
        "acme: credentials accepted for @ITSupport (account id fake-account-1)\n"
        "  rule 'VPN': 2 posts now\n"
        "  quota left: 297 of 300\n"
    )
    channel.refresh_from_db()
    assert channel.config["account_id"] == "fake-account-1"
    assert channel.rules.get().cursor == {}
    assert not channel.posts.exists()


def test_test_records_a_refusal_on_the_channel(fake_network):
    channel = ChannelFactory(slug="acme", config={"connector": "fake"})
    fake_network.errors.append(PermanentError("authentication refused (HTTP 401)"))
    with pytest.raises(CommandError, match="the network refused"):
        _run("test", "acme")
    channel.refresh_from_db()
    assert (channel.health, channel.last_error) == ("failing", "authentication refused (HTTP 401)")
