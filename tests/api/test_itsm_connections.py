"""ITSM connections over the API: the model's Django permissions, write-only credentials, and no
SSRF through the base URL."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from socialitsm.models import ItsmConnection, Service

from ..factories import UserFactory

pytestmark = pytest.mark.django_db

LIST = "/api/v1/itsm-connections/"
BODY = {
    "name": "Acme RT",
    "slug": "acme-rt",
    "kind": "rt",
    "base_url": "https://rt.example.com",
    "credentials": {"token": "s3cret", "webhook_secret": "hook-key"},
    "config": {"queue": "Social"},
    "rule_services": ["vpn"],
    "rule_max_priority": 2,
    "poll_interval": 120,
}


def _client(*codenames: str) -> APIClient:
    user = UserFactory(username="integrator")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def integrator() -> APIClient:
    return _client("view_itsmconnection", "add_itsmconnection", "change_itsmconnection", "delete_itsmconnection")


def test_create_stores_credentials_encrypted_and_never_returns_them(integrator):
    response = integrator.post(LIST, BODY, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert "credentials" not in body and "s3cret" not in response.content.decode()
    assert (body["has_credentials"], body["accepts_webhooks"]) == (True, True)
    assert body["webhook_url"] == "http://testserver/api/v1/itsm/acme-rt/webhook/"
    assert (body["rule_services"], body["rule_max_priority"]) == (["vpn"], 2)
    connection = ItsmConnection.objects.get(slug="acme-rt")
    assert connection.credentials == {"token": "s3cret", "webhook_secret": "hook-key"}
    assert list(connection.rule_services.all()) == [Service.objects.get(slug="vpn")]


def test_partial_update_without_credentials_keeps_them(integrator):
    integrator.post(LIST, BODY, format="json")

    response = integrator.patch(f"{LIST}acme-rt/", {"enabled": False, "config": {"queue": "Web"}}, format="json")

    assert response.status_code == 200, response.json()
    connection = ItsmConnection.objects.get(slug="acme-rt")
    assert (connection.enabled, connection.config) == (False, {"queue": "Web"})
    assert connection.credentials["token"] == "s3cret"


def test_moving_to_another_host_needs_the_credentials_again(integrator):
    integrator.post(LIST, BODY, format="json")

    moved = integrator.patch(f"{LIST}acme-rt/", {"base_url": "https://collector.example.net"}, format="json")
    same_host = integrator.patch(f"{LIST}acme-rt/", {"base_url": "https://RT.example.com:443/rt"}, format="json")

    assert moved.status_code == 400
    assert moved.json() == {
        "credentials": ["the base URL now points to another host: enter the credentials for it again"]
    }
    assert same_host.status_code == 200, same_host.json()
    assert ItsmConnection.objects.get(slug="acme-rt").base_url == "https://RT.example.com:443/rt"
    with_credentials = integrator.patch(
        f"{LIST}acme-rt/",
        {"base_url": "https://collector.example.net", "credentials": {"token": "for-the-new-host"}},
        format="json",
    )
    assert with_credentials.status_code == 200, with_credentials.json()
    connection = ItsmConnection.objects.get(slug="acme-rt")
    assert (connection.base_url, connection.credentials) == (
        "https://collector.example.net",
        {"token": "for-the-new-host"},
    )


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"base_url": "http://127.0.0.1:8080/"}, "base_url", "resolves to a non-public address"),
        ({"base_url": "file:///etc/passwd"}, "base_url", "Enter a valid URL."),
        ({"kind": "remedy"}, "kind", '"remedy" is not a valid choice.'),
        ({"credentials": ["token"]}, "credentials", 'Expected a dictionary of items but got type "list".'),
        ({"config": "queue=Social"}, "config", "must be a JSON object"),
        ({"poll_interval": 1}, "poll_interval", "poll at most every 10 seconds"),
        ({"rule_services": ["no-such-service"]}, "rule_services", "Object with slug=no-such-service does not exist."),
    ],
)
def test_bad_input_is_refused_by_field_and_stores_nothing(integrator, change, field, message):
    response = integrator.post(LIST, {**BODY, **change}, format="json")

    assert response.status_code == 400
    assert any(message in error for error in response.json()[field]), response.json()
    assert not ItsmConnection.objects.exists()


def test_private_base_urls_are_allowed_only_when_configured(integrator, settings):
    settings.SOCIALITSM_ALLOW_PRIVATE_URLS = True
    response = integrator.post(LIST, {**BODY, "base_url": "http://127.0.0.1:8480"}, format="json")
    assert response.status_code == 201, response.json()


def test_permissions_follow_the_model(client, agent_api, outsider):
    ItsmConnection.objects.create(name="RT", slug="rt", kind="rt", base_url="https://rt.example.com")
    assert APIClient().get(LIST).status_code == 401
    # Working incidents is not configuring integrations.
    assert agent_api.get(LIST).status_code == 403
    reader = _client("view_itsmconnection")
    assert [c["slug"] for c in reader.get(LIST).json()["results"]] == ["rt"]
    assert reader.patch(f"{LIST}rt/", {"enabled": False}, format="json").status_code == 403
    assert reader.delete(f"{LIST}rt/").status_code == 403
    assert ItsmConnection.objects.get(slug="rt").enabled
