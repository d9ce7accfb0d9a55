from __future__ import annotations

import os
import shutil
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection

from socialitsm.connectors import fake
from socialitsm.roles import AGENT_GROUP, LEAD_GROUP

from .factories import UserFactory

REQUIRED = os.environ.get("SOCIALITSM_REQUIRE_SERVICES") == "1"


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
    serialized_rollback restores them."""
    from django.apps import apps
    from django.db import connections

    seed = import_module("socialitsm.migrations.0002_default_catalogue").seed
    with django_db_blocker.unblock():
        seed(apps, None)
        for conn in connections.all():
            if hasattr(conn, "_test_serialized_contents"):
                conn._test_serialized_contents = conn.creation.serialize_db_to_string()


@pytest.fixture(autouse=True)
def _fake_network():
    fake.network.reset()
    yield fake.network
    fake.network.reset()


@pytest.fixture
def fake_network():
    return fake.network


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
