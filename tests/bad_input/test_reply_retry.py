"""Bad input to the reply retry and cancel commands: nothing changes, nothing is sent."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from socialitsm.models import IncidentEvent, Reply

from ..factories import IncidentFactory, PostFactory, ReplyFactory

pytestmark = pytest.mark.django_db

NOT_FOUND = {"detail": "No Reply matches the given query."}
NOT_AN_ID = {"detail": "Not found."}


@pytest.fixture
def failed(db) -> Reply:
    incident = IncidentFactory(number="INC0000901")
    post = PostFactory(incident=incident)
    return ReplyFactory(incident=incident, post=post, status="failed", attempts=2, error="blocked")


@pytest.fixture
def agent_api(agent) -> APIClient:
    client = APIClient()
    client.force_authenticate(agent)
    return client


def _unchanged(reply: Reply, fake_network) -> None:
    assert Reply.objects.filter(pk=reply.pk).values_list("status", "attempts", "error").get() == (
        "failed",
        2,
        "blocked",
    )
    assert IncidentEvent.objects.filter(incident=reply.incident).count() == 0
    assert fake_network.sent == []


@pytest.mark.parametrize(
    ("method", "path", "status", "answer"),
    [
        ("post", "/api/v1/replies/abc/retry/", 404, NOT_AN_ID),
        ("post", "/api/v1/replies/999999/cancel/", 404, NOT_FOUND),
        ("post", "/api/v1/replies/-1/retry/", 404, NOT_FOUND),
        ("post", "/api/v1/replies/1%00/cancel/", 404, NOT_AN_ID),
        ("post", "/api/v1/replies/99999999999999999999999/retry/", 404, NOT_FOUND),
        ("get", "/api/v1/replies/{pk}/retry/", 405, {"detail": 'Method "GET" not allowed.'}),
        ("put", "/api/v1/replies/{pk}/cancel/", 405, {"detail": 'Method "PUT" not allowed.'}),
        ("patch", "/api/v1/replies/{pk}/", 405, {"detail": 'Method "PATCH" not allowed.'}),
        ("delete", "/api/v1/replies/{pk}/", 405, {"detail": 'Method "DELETE" not allowed.'}),
    ],
)
def test_api_refuses_bad_reply_commands(agent_api, failed, fake_network, method, path, status, answer):
    response = getattr(agent_api, method)(path.format(pk=failed.pk), {"status": "sent"}, format="json")

    assert response.status_code == status
    assert response.json() == answer
    _unchanged(failed, fake_network)


@pytest.mark.parametrize(
    "body",
    [
        {"status": "sent", "attempts": 0, "external_id": "x"},
        "not json at all",
        {"text": "<script>alert(1)</script>"},
    ],
)
def test_a_body_sent_with_cancel_is_ignored(agent_api, failed, fake_network, body):
    if isinstance(body, str):
        response = agent_api.post(f"/api/v1/replies/{failed.pk}/cancel/", body, content_type="application/json")
    else:
        response = agent_api.post(f"/api/v1/replies/{failed.pk}/cancel/", body, format="json")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["text"], response.json()["external_id"]) == (
        "canceled",
        "On it",
        "",
    )
    assert Reply.objects.filter(pk=failed.pk).values_list("status", "attempts", "text", "external_id").get() == (
        "canceled",
        2,
        "On it",
        "",
    )
    assert fake_network.sent == []


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/incidents/INC0000901/replies/abc/retry/", 404),
        ("/incidents/INC0000901/replies/999999/cancel/", 404),
        ("/incidents/NOPE/replies/{pk}/retry/", 404),
        ("/incidents/INC0000901%00/replies/{pk}/cancel/", 404),
        ("/incidents/INC0000901/replies/{pk}/delete/", 404),
    ],
)
def test_web_refuses_bad_reply_commands(client, agent, failed, fake_network, path, status):
    client.force_login(agent)

    response = client.post(path.format(pk=failed.pk))

    assert response.status_code == status
    _unchanged(failed, fake_network)
