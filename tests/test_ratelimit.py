"""Shared rate-limit counters and the client address they are kept per."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from socialitsm import ratelimit
from socialitsm.ratelimit import Rate, client_address, exceeded, hit, parse_rate

# 20 seconds into a minute: a one-minute window ends 40 seconds later.
NOW = datetime(2026, 11, 26, 9, 0, 20, tzinfo=UTC)


@pytest.fixture
def rates(settings, throttle_cache):
    settings.SOCIALITSM_THROTTLE_RATES = {"api_user": "3/minute", "ingest": None}
    return settings


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("600/minute", Rate(600, 60)),
        ("10/s", Rate(10, 1)),
        ("5/hour", Rate(5, 3600)),
        ("1/day", Rate(1, 86400)),
        (" 7/Min", Rate(7, 60)),
    ],
)
def test_rates_read_as_drf_writes_them(rate, expected):
    assert parse_rate(rate) == expected


@pytest.mark.parametrize("rate", ["600", "0/minute", "-1/minute", "ten/minute", "5/fortnight", "5/", "/minute"])
def test_a_malformed_rate_fails_loudly(rate):
    with pytest.raises(ImproperlyConfigured, match=re.escape("is not <count>/<second|minute|hour|day>")):
        parse_rate(rate)


def test_an_unknown_scope_fails_loudly(rates):
    with pytest.raises(ImproperlyConfigured, match="no rate for 'nope'"):
        hit("nope", "x")


def test_the_limit_holds_per_subject_and_says_when_to_come_back(rates, clock):
    assert [hit("api_user", "user:1") for _ in range(3)] == [None, None, None]
    assert hit("api_user", "user:1") == 40
    assert exceeded("api_user", "user:1") == 40
    assert hit("api_user", "user:2") is None
    clock.shift(timedelta(seconds=40))
    assert hit("api_user", "user:1") is None


def test_exceeded_does_not_count(rates, clock):
    for _ in range(10):
        assert exceeded("api_user", "user:1") is None
    assert [hit("api_user", "user:1") for _ in range(4)] == [None, None, None, 40]


def test_a_scope_set_to_none_is_off(rates, clock):
    assert all(hit("ingest", "channel:1") is None for _ in range(1000))


def test_defaults_fill_scopes_the_setting_leaves_out(rates, clock):
    assert ratelimit.rate_for("api_auth_failure") == Rate(20, 60)


# (REMOTE_ADDR, X-Forwarded-For, SOCIALITSM_TRUSTED_PROXIES, the client address)
ADDRESSES = [
    ("203.0.113.9", "", [], "203.0.113.9"),
    ("203.0.113.9", "198.51.100.1", [], "203.0.113.9"),
    ("203.0.113.9", "198.51.100.1", ["10.0.0.0/8"], "203.0.113.9"),
    ("10.0.0.5", "198.51.100.1", ["10.0.0.0/8"], "198.51.100.1"),
    ("10.0.0.5", "6.6.6.6, 198.51.100.1", ["10.0.0.0/8"], "198.51.100.1"),
    ("10.0.0.5", "6.6.6.6, 198.51.100.1, 10.1.2.3", ["10.0.0.0/8"], "198.51.100.1"),
    ("10.0.0.5", "198.51.100.1, 10.1.2.3", ["10.0.0.5", "10.1.2.3/32"], "198.51.100.1"),
    ("10.0.0.5", "", ["10.0.0.0/8"], "10.0.0.5"),
    ("10.0.0.5", "10.9.9.9", ["10.0.0.0/8"], "10.9.9.9"),
    ("10.0.0.5", "198.51.100.1, not-an-address", ["10.0.0.0/8"], "10.0.0.5"),
    ("10.0.0.5", "2001:db8::1", ["10.0.0.0/8"], "2001:db8::1"),
    ("::1", "2001:db8::7", ["::1"], "2001:db8::7"),
    ("", "198.51.100.1", ["10.0.0.0/8"], ""),
]


@pytest.mark.parametrize(("remote", "forwarded", "proxies", "expected"), ADDRESSES)
def test_client_address(settings, remote, forwarded, proxies, expected):
    settings.SOCIALITSM_TRUSTED_PROXIES = proxies
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_a_bad_trusted_proxy_fails_loudly(settings):
    settings.SOCIALITSM_TRUSTED_PROXIES = ["10.0.0.0/8", "proxy.example.com"]
    with pytest.raises(ImproperlyConfigured, match="SOCIALITSM_TRUSTED_PROXIES"):
        client_address(RequestFactory().get("/", REMOTE_ADDR="10.0.0.5"))


def redis_cache() -> RedisCache:
    """A cache client of its own, as another web process would have."""
    return RedisCache(django_settings.CELERY_BROKER_URL, {"KEY_PREFIX": "socialitsm-test"})


@pytest.mark.redis
def test_processes_share_one_limit_in_redis(rates, clock, monkeypatch):
    first, second = redis_cache(), redis_cache()
    first.clear()
    processes = iter([first, second, first, second])
    monkeypatch.setattr(ratelimit, "throttle_cache", lambda: next(processes))

    assert [hit("api_user", "user:1") for _ in range(4)] == [None, None, None, 40]
    first.clear()


@pytest.mark.redis
def test_redis_counts_exactly_under_concurrency(rates, clock, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    rates.SOCIALITSM_THROTTLE_RATES = {"api_user": "50/minute"}
    first = redis_cache()
    first.clear()
    clients = [redis_cache() for _ in range(4)]
    monkeypatch.setattr(ratelimit, "throttle_cache", lambda: clients[hash(object()) % 4])

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: hit("api_user", "user:1"), range(120)))

    assert answers.count(None) == 50
    first.clear()


def test_an_unreachable_cache_lets_calls_through(rates, clock, monkeypatch, caplog):
    down = RedisCache("redis://127.0.0.1:1/0", {"OPTIONS": {"socket_connect_timeout": 0.2}})
    monkeypatch.setattr(ratelimit, "throttle_cache", lambda: down)

    assert [hit("api_user", "user:1") for _ in range(5)] == [None] * 5
    assert "the throttle cache cannot be reached" in caplog.text
