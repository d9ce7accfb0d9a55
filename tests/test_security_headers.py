"""Content-Security-Policy and Permissions-Policy on every response (project/security.py)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

SITE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; "
    "worker-src 'self' blob:"
)
PERMISSIONS = (
    "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()"
)


@pytest.mark.parametrize(
    ("path", "status"),
    [("/accounts/login/", 200), ("/", 302), ("/healthz", 200), ("/api/v1/incidents/", 401), ("/api/nothing/", 404)],
)
def test_every_response_carries_the_policies(client, path, status):
    response = client.get(path)

    assert response.status_code == status
    assert response["Content-Security-Policy"] == SITE_POLICY
    assert response["Permissions-Policy"] == PERMISSIONS


def test_agent_pages_carry_the_strict_policy(client, agent):
    client.force_login(agent)

    response = client.get("/")

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == SITE_POLICY
    html = response.content.decode()
    # Nothing inline that the policy would block: scripts come from files only.
    assert "<script>" not in html and "<style" not in html and " style=" not in html


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_only_relax_styles_images_and_workers(path, agent):
    client = APIClient()
    client.force_authenticate(agent)

    response = client.get(path)

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == DOCS_POLICY
    assert response["Permissions-Policy"] == PERMISSIONS


def test_swagger_ui_loads_its_settings_from_a_script_file_not_inline(agent):
    client = APIClient()
    client.force_authenticate(agent)

    page = client.get("/api/docs/").content.decode()
    script = client.get("/api/docs/?script=")

    assert '<script src="/api/docs/?script="></script>' in page
    assert "<script>" not in page
    assert (script.status_code, script["Content-Type"]) == (200, "application/javascript")
    assert "/api/schema/" in script.content.decode()
