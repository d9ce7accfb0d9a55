from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from datetime import UTC, datetime
from importlib import import_module

import pytest
import responses
import time_machine
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import caches
from django.db import connection

from socialitsm.connectors import fake
from socialitsm.itsm import fake as fake_itsm
from socialitsm.roles import AGENT_GROUP, LEAD_GROUP

from .factories import UserFactory
from .faults.servers import missing_binaries

REQUIRED = os.environ.get("SOCIALITSM_REQUIRE_SERVICES") == "1"
# Written by ../shared/peers/rt/start-rt.sh (RT_URL, RT_TOKEN, RT_QUEUE, RT_CF); RT_* variables win.
RT_ENV_FILE = os.environ.get("RT_ENV_FILE", "/var/lib/rt-peer/env")
SLA_DEFAULTS = "socialitsm.migrations.0011_default_sla"
# A public address (not private, reserved or documentation space) that stubbed names resolve
# to, so the SSRF guard lets them pass; nothing ever connects to it (see the socket guard).
PUBLIC_ADDRESS = "93.184.215.14"


class NetworkBlocked(OSError):
    """A test tried to reach a host other than the loopback services the suite uses."""


def _loopback(host: object) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _check_address(sock: socket.socket, address: object) -> None:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _loopback(host):
        raise NetworkBlocked(f"tests may only connect to loopback services, not {address!r}")


def _guarded_connect(self: socket.socket, address: object) -> None:
    _check_address(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _check_address(self, address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host, port, *args, **kwargs):
    """Only loopback names and address literals resolve: a name lookup would ask the Internet's
    DNS. Tests that need a network's host name use the `public_dns` fixture."""
    if host is not None and not _loopback(host):
        try:
            ipaddress.ip_address(str(host).split("%")[0])
        except ValueError:
            raise socket.gaierror(
                socket.EAI_NONAME, f"tests resolve no names but localhost ({host!r}): use the public_dns fixture"
            ) from None
    return _real_getaddrinfo(host, port, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    """Every socket of the test process may reach the loopback range and Unix sockets only:
    PostgreSQL, Redis, the RT and AT Protocol peers, Chromium and the tests' own servers.
    Outbound HTTP to the networks and suites is answered by `responses`, which never opens one."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo


def pytest_unconfigure(config: pytest.Config) -> None:
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _real_getaddrinfo


# Moments of the week and year that tests reading the clock must all hold at (UTC; the demo's
# Service Desk hours are Europe/Berlin, 08-18 on weekdays, German holidays). A test or module
# asks for the `any_clock` fixture to run once at each of them.
CLOCKS = {
    "weekday-afternoon": datetime(2026, 11, 25, 13, 0, tzinfo=UTC),  # a Wednesday, 14:00 in Berlin
    "sunday-night": datetime(2026, 12, 6, 22, 0, tzinfo=UTC),
    "monday-early": datetime(2026, 11, 30, 5, 30, tzinfo=UTC),  # before the desk opens, after a weekend
    "holiday": datetime(2026, 12, 25, 10, 0, tzinfo=UTC),  # Christmas Day, a Friday
    "dst-spring": datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # Berlin went from 02:00 to 03:00 half an hour ago
    "dst-autumn": datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # Berlin's 02:00-03:00 came twice
    "year-end": datetime(2026, 12, 31, 23, 30, tzinfo=UTC),  # already the new year in Berlin
}


@pytest.fixture(params=list(CLOCKS.values()), ids=list(CLOCKS))
def any_clock(request: pytest.FixtureRequest):
    """Run the test with the clock set to each moment of CLOCKS (it keeps ticking from there)."""
    with time_machine.travel(request.param, tick=True):
        yield request.param


def rt_peer() -> dict[str, str]:
    """The Request Tracker test peer's URL, token, queue and custom field; {} when unknown."""
    found: dict[str, str] = {}
    try:
        with open(RT_ENV_FILE) as env_file:
            for line in env_file:
                name, sep, value = line.strip().partition("=")
                if sep:
                    found[name] = value
    except OSError:
        pass
    found.update({k: v for k, v in os.environ.items() if k.startswith("RT_")})
    return found if found.get("RT_URL") and found.get("RT_TOKEN") else {}


def _rt_available() -> bool:
    import requests

    peer = rt_peer()
    if not peer:
        return False
    try:
        response = requests.get(
            f"{peer['RT_URL']}/REST/2.0/rt", headers={"Authorization": f"token {peer['RT_TOKEN']}"}, timeout=3
        )
    except requests.RequestException:
        return False
    return response.status_code == 200


def _redis_available() -> bool:
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def _missing(item: pytest.Item) -> str | None:
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        return "needs PostgreSQL: set DATABASE_URL=postgres://..."
    if item.get_closest_marker("redis") and not _redis_available():
        return "needs Redis: set CELERY_BROKER_URL=redis://... to a running server"
    if item.get_closest_marker("rt") and not _rt_available():
        return "needs Request Tracker: run ../shared/peers/rt/start-rt.sh (or set RT_URL and RT_TOKEN)"
    if item.get_closest_marker("faults") and (reason := missing_binaries()):
        return reason
    if item.get_closest_marker("browser") and not shutil.which(os.environ.get("CHROMIUM", "/usr/bin/chromium")):
        return "needs Chromium at /usr/bin/chromium (apt-get install chromium)"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = _missing(item)
    if reason is None:
        return
    if REQUIRED:
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Transactional tests flush every table when they end; with --reuse-db the next session
    would start without the seeded catalogue and roles. Seed again and re-serialize, so
    serialized_rollback restores them. Tests set up their own SLA rules and groups: the shipped
    SLA defaults are taken out (the `sla_defaults` fixture puts them back)."""
    from django.apps import apps
    from django.db import connections

    seed = import_module("socialitsm.migrations.0002_default_catalogue").seed
    describe = import_module("socialitsm.migrations.0018_service_description").describe
    with django_db_blocker.unblock():
        seed(apps, None)
        describe(apps, None)
        import_module(SLA_DEFAULTS).unseed(apps, None)
        for conn in connections.all():
            if hasattr(conn, "_test_serialized_contents"):
                conn._test_serialized_contents = conn.creation.serialize_db_to_string()


@pytest.fixture
def sla_defaults(db) -> None:
    """What migration 0011 ships to a fresh install: SLA policies per priority and the default group."""
    from django.apps import apps

    import_module(SLA_DEFAULTS).seed(apps, None)


@pytest.fixture(autouse=True)
def _fake_network():
    fake.network.reset()
    yield fake.network
    fake.network.reset()


@pytest.fixture
def fake_network():
    return fake.network


@pytest.fixture(autouse=True)
def fake_suite():
    fake_itsm.suite.reset()
    yield fake_itsm.suite
    fake_itsm.suite.reset()


@pytest.fixture
def clock(request: pytest.FixtureRequest):
    """The clock stopped at the test module's NOW."""
    with time_machine.travel(request.module.NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def throttle_cache():
    """Rate-limit counters start empty and are dropped afterwards."""
    caches["throttle"].clear()
    yield caches["throttle"]
    caches["throttle"].clear()


@pytest.fixture
def public_dns(monkeypatch):
    """Host names resolve to PUBLIC_ADDRESS, so the SSRF guard (left on) passes the networks' and
    suites' example hosts; loopback names and address literals resolve as before."""

    def resolve(host, port, family=0, type=0, proto=0, flags=0):
        if host is None or _loopback(host):
            return _guarded_getaddrinfo(host, port, family, type, proto, flags)
        try:
            ipaddress.ip_address(str(host))
        except ValueError:
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (PUBLIC_ADDRESS, port))]
        return _guarded_getaddrinfo(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.fixture
def suite_settings(settings, public_dns):
    return settings


@pytest.fixture
def http_mock():
    """Outbound HTTP answered by the test; a call nobody registered fails."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def agent(db):
    user = UserFactory(username="agent.anna")
    user.groups.add(Group.objects.get(name=AGENT_GROUP))
    return user


@pytest.fixture
def lead(db):
    user = UserFactory(username="lead.lars")
    user.groups.add(Group.objects.get(name=LEAD_GROUP))
    return user


@pytest.fixture
def outsider(db):
    return UserFactory(username="nobody")
