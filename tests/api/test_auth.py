from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from socialitsm.models import Incident, IncidentEvent, Post, Reply

from ..factories import IncidentFactory, PostFactory, ReplyFactory

INCIDENT = "/api/v1/incidents/INC0000901/"

# (method, url, body, status an agent gets)
ENDPOINTS = [
    ("get", "/api/v1/", None, 200),
    ("get", "/api/v1/incidents/", None, 200),
    ("get", INCIDENT, None, 200),
    ("patch", INCIDENT, {"category": "network"}, 200),
    ("post", f"{INCIDENT}assign/", {"assignee": None}, 200),
    ("post", f"{INCIDENT}resolve/", None, 200),
    ("get", f"{INCIDENT}posts/", None, 200),
    ("get", f"{INCIDENT}events/", None, 200),
    ("get", f"{INCIDENT}replies/", None, 200),
    ("post", f"{INCIDENT}replies/", {"text": "We are on it.", "visibility": "public"}, 201),
    ("get", "/api/v1/posts/", None, 200),
    ("get", "/api/v1/posts/{post}/", None, 200),
    ("post", "/api/v1/posts/{ignored}/promote/", None, 201),
    ("post", "/api/v1/posts/{post}/label/", {"label": "complaint"}, 200),
    ("get", "/api/v1/replies/", None, 200),
    ("get", "/api/v1/replies/{reply}/", None, 200),
    ("get", "/api/v1/services/", None, 200),
    ("get", "/api/v1/services/vpn/", None, 200),
]
IDS = [f"{method} {url}" for method, url, _, _ in ENDPOINTS]


@pytest.fixture
def world(agent) -> dict[str, int]:
    incident = IncidentFactory(number="INC0000901", state=Incident.State.IN_PROGRESS, category="vpn")
    post = PostFactory(incident=incident, triage_state=Post.Triage.INCIDENT)
    ignored = PostFactory(triage_state=Post.Triage.IGNORED, is_complaint=False)
    reply = ReplyFactory(incident=incident, post=post, visibility="public", text="Hello", agent=agent)
    return {"post": post.pk, "ignored": ignored.pk, "reply": reply.pk}


def call(client: APIClient, method: str, url: str, body, world: dict[str, int]):
    return getattr(client, method)(url.format(**world), body, format="json")


def snapshot() -> tuple:
    return (
        list(Incident.objects.order_by("pk").values_list("number", "state", "category", "assignee")),
        IncidentEvent.objects.count(),
        Reply.objects.count(),
        list(Post.objects.order_by("pk").values_list("triage_state", "incident", "label")),
    )


@pytest.mark.parametrize(("method", "url", "body", "expected"), ENDPOINTS, ids=IDS)
def test_anonymous_gets_401_with_challenge(api, world, method, url, body, expected):
    before = snapshot()

    response = call(api, method, url, body, world)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert snapshot() == before


@pytest.mark.parametrize(("method", "url", "body", "expected"), ENDPOINTS, ids=IDS)
def test_user_without_agent_role_gets_403(api, outsider, world, method, url, body, expected):
    api.force_login(outsider)
    before = snapshot()

    response = call(api, method, url, body, world)

    assert response.status_code == 403
    assert response.json() == {"detail": "You need the agent role for this."}
    assert snapshot() == before


@pytest.mark.parametrize(("method", "url", "body", "expected"), ENDPOINTS, ids=IDS)
def test_agent_passes(api, agent, world, method, url, body, expected):
    api.force_login(agent)

    response = call(api, method, url, body, world)

    assert response.status_code == expected


@pytest.mark.parametrize(("method", "url", "body", "expected"), ENDPOINTS, ids=IDS)
def test_lead_passes(api, lead, world, method, url, body, expected):
    api.force_login(lead)

    response = call(api, method, url, body, world)

    assert response.status_code == expected


def test_token_auth_lets_an_agent_in(api, agent, world):
    token = Token.objects.create(user=agent)

    response = api.get("/api/v1/incidents/", headers={"Authorization": f"Token {token.key}"})

    assert response.status_code == 200
    assert [row["number"] for row in response.json()["results"]] == ["INC0000901"]


def test_token_of_a_user_without_agent_role_gets_403(api, outsider, world):
    token = Token.objects.create(user=outsider)

    response = api.get("/api/v1/incidents/", headers={"Authorization": f"Token {token.key}"})

    assert response.status_code == 403


@pytest.mark.parametrize("header", ["Token not-a-real-token", "Token", "Bearer abc"])
def test_bad_token_gets_401(api, world, header):
    response = api.get("/api/v1/incidents/", headers={"Authorization": header})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"


def test_token_of_an_inactive_agent_gets_401(api, agent, world):
    token = Token.objects.create(user=agent)
    agent.is_active = False
    agent.save()

    response = api.get("/api/v1/incidents/", headers={"Authorization": f"Token {token.key}"})

    assert response.status_code == 401
    assert response.json() == {"detail": "User inactive or deleted."}


@pytest.mark.parametrize("url", [url for method, url, _, _ in ENDPOINTS if method == "get"])
def test_browsable_api_renders_for_an_agent(api, agent, world, url):
    api.force_login(agent)

    response = api.get(url.format(**world), headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
