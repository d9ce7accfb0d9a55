from __future__ import annotations

import pytest

from socialitsm.exceptions import PermanentError
from socialitsm.models import ItsmConnection, ItsmLink
from socialitsm.services.itsm_sync import itsm_link_sync

from ..factories import IncidentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed_link(fake_suite):
    connection = ItsmConnection.objects.create(
        name="Suite", slug="suite", kind="fake", base_url="https://suite.example.com"
    )
    incident = IncidentFactory(number="INC0000501")
    link = ItsmLink.objects.create(connection=connection, incident=incident, external_ref="socialitsm:INC0000501")
    fake_suite.errors.append(PermanentError("authentication refused (HTTP 401)"))
    return itsm_link_sync(link=link)


def test_incident_shows_its_links(agent_api, failed_link):
    response = agent_api.get("/api/v1/incidents/INC0000501/")
    assert response.json()["itsm_links"] == [
        {
            "id": failed_link.pk,
            "incident": "INC0000501",
            "connection": "suite",
            "suite": "fake",
            "suite_name": "Suite",
            "external_ref": "socialitsm:INC0000501",
            "remote_id": "",
            "remote_key": "",
            "remote_url": "",
            "status": "failed",
            "last_error": "authentication refused (HTTP 401)",
            "last_error_at": failed_link.last_error_at.isoformat().replace("+00:00", "Z"),
            "attempts": 1,
            "next_attempt_at": None,
            "last_synced_at": None,
            "last_pulled_at": None,
            "remote_status": "",
            "remote_state": "",
            "retry": f"http://testserver/api/v1/itsm-links/{failed_link.pk}/retry/",
        }
    ]


def test_retry_action_syncs_again(agent_api, failed_link, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_api.post(f"/api/v1/itsm-links/{failed_link.pk}/retry/")
    assert response.status_code == 200
    failed_link.refresh_from_db()
    assert (failed_link.status, failed_link.remote_key) == ("ok", "FAKE-1")
    response = agent_api.post(f"/api/v1/itsm-links/{failed_link.pk}/retry/")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["the link to Suite is in sync; there is nothing to retry"]}


def test_links_need_an_agent(api, outsider, failed_link):
    assert api.get("/api/v1/itsm-links/").status_code == 401
    api.force_authenticate(outsider)
    assert api.post(f"/api/v1/itsm-links/{failed_link.pk}/retry/").status_code == 403
    failed_link.refresh_from_db()
    assert failed_link.status == "failed"
