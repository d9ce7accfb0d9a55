"""API rate limits: per user, per client address, and for bad tokens; 429 with Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from socialitsm.conf import DEFAULTS

from ..factories import UserFactory

pytestmark = pytest.mark.django_db

# 15 seconds into a minute: a one-minute window ends 45 seconds later.
NOW = datetime(2026, 11, 26, 9, 0, 15, tzinfo=UTC)
URL = "/api/v1/services/"
ATTACKER = "203.0.113.9"
OFFICE = "198.51.100.7"


@pytest.fixture
def rates(settings, throttle_cache):
    settings.SOCIALITSM_THROTTLE_RATES = dict(DEFAULTS["THROTTLE_RATES"])
    return settings.SOCIALITSM_THROTTLE_RATES


@pytest.fixture
def token(agent) -> str:
    return Token.objects.create(user=agent).key


def get(token: str | None = None, address: str = OFFICE, **headers: str):
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get(URL, REMOTE_ADDR=address, **headers)


def assert_throttled(response, wait: int) -> None:
    assert response.status_code == 429
    assert response.headers["Retry-After"] == str(wait)
    assert response.json() == {"detail": f"Request was throttled. Expected available in {wait} seconds."}


def test_defaults_limit_every_scope():
    # 800 calls in a minute with one token, or 300 bad tokens from one address, go over these.
    assert DEFAULTS["THROTTLE_RATES"] == {
        "ingest": "600/minute",
        "ingest_refused": "60/minute",
        "api_user": "600/minute",
        "api_address": "1200/minute",
        "api_auth_failure": "20/minute",
    }


def test_calls_with_one_token_over_the_rate_are_throttled(rates, clock, token):
    rates["api_user"] = "8/minute"
    statuses = [get(token).status_code for _ in range(12)]

    assert statuses == [200] * 8 + [429] * 4
    assert_throttled(get(token), 45)


def test_the_user_limit_is_per_user_and_ends_with_its_window(rates, clock, token, lead):
    rates["api_user"] = "3/minute"
    assert [get(token).status_code for _ in range(4)] == [200] * 3 + [429]
    # Another user from the same address is not held up by the first one's calls.
    other = Token.objects.create(user=lead).key
    assert get(other).status_code == 200
    # A session counts against the same user as the token.
    session = APIClient()
    session.force_login(Token.objects.get(key=token).user)
    assert session.get(URL, REMOTE_ADDR="192.0.2.1").status_code == 429
    clock.shift(timedelta(seconds=45))
    assert get(token).status_code == 200


def test_bad_tokens_are_throttled_and_the_address_waits(rates, clock, token):
    statuses = [get(f"bad{n:037d}", address=ATTACKER).status_code for n in range(30)]

    assert statuses == [401] * 20 + [429] * 10
    # Even a valid token waits from that address: it is refused before any lookup.
    assert_throttled(get(token, address=ATTACKER), 45)
    # Everyone else is unaffected.
    assert get(token, address=OFFICE).status_code == 200
    clock.shift(timedelta(seconds=45))
    assert get(token, address=ATTACKER).status_code == 200


def test_anonymous_calls_count_per_address(rates, clock):
    rates["api_address"] = "10/minute"
    statuses = [get(address=ATTACKER).status_code for _ in range(11)]

    assert statuses == [401] * 10 + [429]
    assert get(address=OFFICE).status_code == 401


def test_rotating_x_forwarded_for_does_not_help_without_trusted_proxies(rates, clock):
    rates["api_address"] = "10/minute"
    statuses = [get(address=ATTACKER, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code for n in range(15)]

    assert statuses == [401] * 10 + [429] * 5


def test_behind_a_trusted_proxy_the_forwarded_client_is_limited(rates, clock, settings, token):
    settings.SOCIALITSM_TRUSTED_PROXIES = ["10.0.0.0/8"]
    rates["api_auth_failure"] = "5/minute"

    # The proxy appends the real client; the spoofed entries left of it change nothing.
    statuses = [
        get(f"bad{n:037d}", address="10.0.0.2", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, {ATTACKER}").status_code
        for n in range(8)
    ]

    assert statuses == [401] * 5 + [429] * 3
    # Another client behind the same proxy is not held up.
    assert get(token, address="10.0.0.2", HTTP_X_FORWARDED_FOR=OFFICE).status_code == 200


def test_with_limits_off_nothing_is_throttled(settings, clock, token):
    settings.SOCIALITSM_THROTTLE_RATES = dict.fromkeys(DEFAULTS["THROTTLE_RATES"])
    assert {get(token).status_code for _ in range(25)} == {200}
    assert {get("x" * 40, address=ATTACKER).status_code for _ in range(25)} == {401}


def test_inactive_user_token_counts_as_a_failure(rates, clock):
    rates["api_auth_failure"] = "2/minute"
    user = UserFactory(username="gone", is_active=False)
    key = Token.objects.create(user=user).key
    assert [get(key, address=ATTACKER).status_code for _ in range(3)] == [401, 401, 429]
