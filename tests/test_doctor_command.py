from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
import responses
from django.core.management import call_command
from django.utils import timezone

from socialitsm.models import Channel, Heartbeat
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

GOOD_KEY = "k" * 20 + "Z9x!q" + "m" * 30


def _doctor(*args) -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("socialitsm_doctor", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code), out.getvalue() + err.getvalue()
    return 0, out.getvalue()


def test_healthy_installation_passes(settings):
    settings.SECRET_KEY = GOOD_KEY
    settings.SOCIALITSM_SITE_URL = "https://social.example.com"
    ChannelFactory(slug="replayed")
    Heartbeat.objects.create(name="worker", beat_at=timezone.now())
    code, out = _doctor("--offline")
    assert code == 0, out
    assert "ok    channel replayed: credentials readable" in out
    assert "all checks passed" in out


def test_problems_are_listed_with_what_to_fix(settings):
    settings.SECRET_KEY = "short"
    settings.DEBUG = True
    channel = ChannelFactory(slug="refused")
    Channel.objects.filter(pk=channel.pk).update(health="failing", last_error_status=401)
    Heartbeat.objects.create(name="worker", beat_at=timezone.now() - timedelta(hours=1))
    code, out = _doctor("--offline")
    assert code == 1
    assert "FIX   SECRET_KEY: too short or a placeholder" in out
    assert "FIX   DEBUG: on" in out
    assert "FIX   channel refused: the network refused the credentials" in out
    assert "FIX   worker: last heartbeat 3600 s ago" in out


def test_undecryptable_credentials_and_missing_heartbeat(settings):
    ChannelFactory(slug="locked")
    settings.SOCIALITSM_ENCRYPTION_KEYS = ["Jx5vX0k0d9uC4m2ZQGZp1e8n3r6sY7tB1aWqLcKfHgI="]
    code, out = _doctor("--offline")
    assert code == 1
    assert "FIX   channel locked: credentials cannot be decrypted" in out
    assert "FIX   worker: no heartbeat yet" in out


def test_reachability_of_networks(settings, public_dns, http_mock):
    settings.SECRET_KEY = GOOD_KEY
    ChannelFactory(
        slug="masto", network="mastodon", base_url="https://mastodon.example.com", credentials={"access_token": "t"}
    )
    ChannelFactory(
        slug="down", network="mastodon", base_url="https://down.example.com", credentials={"access_token": "t"}
    )
    http_mock.add(responses.GET, "https://mastodon.example.com", status=401)
    http_mock.add(responses.GET, "https://down.example.com", status=503)
    code, out = _doctor()
    assert code == 1
    assert "ok    channel masto network: answers (HTTP 401)" in out
    assert "FIX   channel down network: https://down.example.com unreachable: HTTP 503" in out
