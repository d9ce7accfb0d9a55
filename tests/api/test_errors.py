"""Error answers under /api/ are JSON, with no trace or setting in them; pages stay HTML."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from socialitsm import selectors
from socialitsm.models import Incident

pytestmark = pytest.mark.django_db


@pytest.fixture
def failing(monkeypatch):
    def broken():
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(selectors, "post_list", broken)


def test_unexpected_error_in_the_api_is_a_json_500_without_details(agent, failing, caplog):
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(agent)

    response = client.get("/api/v1/posts/")

    assert (response.status_code, response["Content-Type"]) == (500, "application/json")
    assert response.json() == {"error": "server_error", "detail": "The server failed to answer; the error is logged."}
    assert "hunter2" not in response.content.decode()
    assert "database password is hunter2" in caplog.text


def test_unknown_api_path_is_a_json_404(agent_api):
    response = agent_api.get("/api/v1/no-such-thing/")

    assert (response.status_code, response["Content-Type"]) == (404, "application/json")
    assert response.json() == {"detail": "Not found."}


def test_unknown_page_is_still_html(client, agent):
    client.force_login(agent)

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_error_pages_outside_the_api_stay_html(rf):
    from project.errors import server_error

    response = server_error(rf.get("/incidents/INC0000001/"))

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


def test_body_over_the_upload_limit_is_a_json_413(agent_api, settings):
    from ..factories import IncidentFactory

    IncidentFactory(number="INC0000001", category="")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = agent_api.patch("/api/v1/incidents/INC0000001/", data={"category": "x" * 5000}, format="json")

    assert (response.status_code, response["Content-Type"]) == (413, "application/json")
    assert response.json() == {"error": "too_large", "detail": "The body is larger than this server accepts."}
    assert Incident.objects.get().category == ""


def test_bad_host_under_the_api_is_a_json_400(agent_api, settings):
    settings.ALLOWED_HOSTS = ["itsm.example.com"]

    response = agent_api.get("/api/v1/incidents/", headers={"host": "evil.example.net"})

    assert (response.status_code, response["Content-Type"]) == (400, "application/json")
    assert response.json() == {"error": "bad_request", "detail": "The request was refused."}


def test_permission_denied_outside_a_drf_view_is_json_under_the_api(rf):
    from django.core.exceptions import PermissionDenied

    from project.errors import permission_denied

    api = permission_denied(rf.get("/api/v1/anything/"), PermissionDenied())
    page = permission_denied(rf.get("/incidents/"), PermissionDenied())

    assert (api.status_code, api["Content-Type"]) == (403, "application/json")
    assert (page.status_code, page["Content-Type"].split(";")[0]) == (403, "text/html")
