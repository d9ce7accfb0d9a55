"""Login lockout: wrong passwords lock one account from one address for the cool-off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from socialitsm.roles import AGENT_GROUP

from ..factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
ATTACKER = "203.0.113.9"
OFFICE = "198.51.100.7"
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


@pytest.fixture
def anna(db):
    user = UserFactory(username="anna.agent", is_staff=True)
    user.groups.add(Group.objects.get(name=AGENT_GROUP))
    return user


def log_in(client: Client, password: str, *, url: str = LOGIN, address: str = ATTACKER, username: str = "anna.agent"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("url", [LOGIN, ADMIN_LOGIN])
def test_30_wrong_passwords_then_the_right_one_does_not_log_in(url, anna, clock):
    client = Client()
    statuses = [log_in(client, f"guess-{n}", url=url).status_code for n in range(30)]

    response = log_in(client, PASSWORD, url=url)

    # Four plain refusals, the fifth locks; from then on every answer is the locked page.
    assert statuses == [200] * 4 + [429] * 26
    assert response.status_code == 429
    assert not logged_in(client)
    page = response.content.decode()
    assert "Login locked" in page
    assert "Too many wrong passwords for anna.agent from your address" in page
    assert "(5 in a row): logging in is locked for\n    15 minutes." in page


def test_another_address_still_logs_in(anna, clock):
    for n in range(30):
        log_in(Client(), f"guess-{n}")

    client = Client()
    response = log_in(client, PASSWORD, address=OFFICE)

    assert (response.status_code, response["Location"]) == (302, "/")
    assert logged_in(client)


def test_another_account_from_the_same_address_still_logs_in(anna, clock):
    UserFactory(username="ben.agent")
    for n in range(10):
        log_in(Client(), f"guess-{n}")

    client = Client()
    assert log_in(client, PASSWORD, username="ben.agent").status_code == 302
    assert logged_in(client)


def test_after_the_cool_off_the_right_password_logs_in(anna, clock):
    for n in range(30):
        log_in(Client(), f"guess-{n}")
    clock.shift(timedelta(minutes=14, seconds=59))
    assert log_in(Client(), PASSWORD).status_code == 429

    clock.shift(timedelta(seconds=2))
    client = Client()

    assert log_in(client, PASSWORD).status_code == 302
    assert logged_in(client)


def test_a_success_resets_the_count(anna, clock):
    for n in range(4):
        log_in(Client(), f"guess-{n}")
    assert log_in(Client(), PASSWORD).status_code == 302

    statuses = [log_in(Client(), f"again-{n}").status_code for n in range(4)]
    client = Client()

    assert statuses == [200] * 4
    assert log_in(client, PASSWORD).status_code == 302
    assert logged_in(client)


def test_rotating_x_forwarded_for_does_not_escape_the_lockout(anna, clock):
    statuses = [
        Client()
        .post(
            LOGIN,
            {"username": "anna.agent", "password": "x"},
            REMOTE_ADDR=ATTACKER,
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )
        .status_code
        for n in range(6)
    ]
    assert statuses == [200] * 4 + [429] * 2


def test_behind_a_trusted_proxy_the_forwarded_client_is_locked_out(anna, clock, settings):
    settings.SOCIALITSM_TRUSTED_PROXIES = ["10.0.0.0/8"]

    def via_proxy(client: Client, password: str, client_address: str):
        return client.post(
            LOGIN,
            {"username": "anna.agent", "password": password},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=client_address,
        )

    assert [via_proxy(Client(), "x", ATTACKER).status_code for _ in range(5)] == [200] * 4 + [429]
    client = Client()
    assert via_proxy(client, PASSWORD, OFFICE).status_code == 302
    assert logged_in(client)
