"""Every route, walked from the URL resolver, refuses anonymous callers and users without the
agent role; lookups that PostgreSQL cannot run are 404s, not 500s."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from socialitsm.models import (
    Broadcast,
    Incident,
    ItsmConnection,
    ItsmLink,
    Post,
    Reply,
    ReplyTemplate,
    Service,
    SlaCalendar,
    SlaPolicy,
    StatusPost,
)

from .factories import ChannelFactory, IncidentFactory, PostFactory, ReplyFactory, UserFactory

pytestmark = pytest.mark.django_db

# Open to anyone by design: the health and readiness probes and the login / logout pages.
PUBLIC = {"healthz", "readyz", "login", "logout"}
# For the metrics scraper only: a bearer token or an allowed address, else a 404 that gives
# nothing away (tests/test_metrics.py); no session opens it.
SCRAPER = {"socialitsm:metrics"}
# Signed, not logged in: a caller without a valid signature gets 401 (and 405 for other methods).
SIGNED = {
    "socialitsm-api:ingest",
    "socialitsm-api:ingest-no-slash",
    "socialitsm-api:itsm-webhook",
    "socialitsm-api:itsm-webhook-no-slash",
}
METHODS = ("get", "post", "put", "patch", "delete")


def _routes(patterns: list[Any], namespace: str = "", prefix: str = "") -> Iterator[tuple[str, URLPattern, str]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if str(pattern.pattern) == "admin/":
                continue  # Django's admin has its own staff login; tested by Django.
            inner = f"{namespace}:{pattern.namespace}" if namespace and pattern.namespace else pattern.namespace
            yield from _routes(pattern.url_patterns, inner or namespace, prefix + str(pattern.pattern))
        else:
            yield (f"{namespace}:{pattern.name}" if namespace else pattern.name), pattern, prefix + str(pattern.pattern)


ROUTES = sorted(
    {(name, route) for name, _, route in _routes(get_resolver().url_patterns) if name not in PUBLIC | SCRAPER}
)


@pytest.fixture
def world(agent) -> dict[str, dict[str, Any]]:
    """Real rows for every lookup, so that a missing check could not hide behind a 404."""
    incident = IncidentFactory(number="INC0000901", state=Incident.State.IN_PROGRESS, is_major=True)
    post = PostFactory(incident=incident, triage_state=Post.Triage.INCIDENT)
    reply = ReplyFactory(incident=incident, post=post, visibility="public", text="Hello", agent=agent)
    channel = ChannelFactory(slug="hook", network="webhook", credentials={"secret": "s"})
    connection = ItsmConnection.objects.create(
        name="Suite",
        slug="suite",
        kind="fake",
        base_url="https://suite.example.com",
        credentials={"webhook_secret": "w"},
    )
    link = ItsmLink.objects.create(connection=connection, incident=incident, external_ref="socialitsm:INC0000901")
    calendar = SlaCalendar.objects.create(name="Desk hours", timezone="UTC")
    policy = SlaPolicy.objects.create(name="P4", priority=4, first_response_minutes=60, resolution_minutes=480)
    service = Service.objects.order_by("pk").first()
    assert service is not None
    broadcast = Broadcast.objects.create(incident=incident, text="We know", created_by=agent)
    template = ReplyTemplate.objects.create(name="Sorry", text="Sorry, {name}")
    pks = {
        "broadcast": broadcast.pk,
        "template": template.pk,
        "post": post.pk,
        "reply": reply.pk,
        "itsm-link": link.pk,
        "sla-policy": policy.pk,
        "sla-calendar": calendar.pk,
    }
    slugs = {"service": service.slug, "channel": channel.slug, "itsm-connection": connection.slug}
    return {"pks": pks, "slugs": slugs, "link": {"link_id": link.pk}, "slug_routes": {"ingest": "hook"}}


def _url(name: str, route: str, world: dict[str, dict[str, Any]]) -> str:
    short = name.split(":")[-1]
    base = short.rsplit("-", 1)[0]
    kwargs: dict[str, Any] = {}
    if "number" in route:
        kwargs["number"] = "INC0000901"
    if "link_id" in route:
        kwargs.update(world["link"])
    if "reply_id" in route:
        kwargs["reply_id"] = world["pks"]["reply"]
    if "broadcast_id" in route:
        kwargs["broadcast_id"] = world["pks"]["broadcast"]
    if "template_id" in route:
        kwargs["template_id"] = world["pks"]["template"]
    if "pk>" in route:
        kwargs["pk"] = world["pks"][base] if base in world["pks"] else world["pks"]["post"]
    if "slug" in route:
        signed = {"ingest": "hook", "itsm-webhook": "suite"}
        kwargs["slug"] = signed.get(short.removesuffix("-no-slash")) or world["slugs"][base]
    if short == "api-root" and "format" in route:
        return reverse(name) + ".json"
    if "format" in route:
        kwargs["format"] = "json"
    return reverse(name, kwargs=kwargs)


def test_the_walk_sees_every_kind_of_route():
    names = {name for name, _ in ROUTES}
    assert {
        "socialitsm:queue",
        "socialitsm:incident-itsm-retry",
        "socialitsm:incident-reply-cancel",
        "socialitsm-api:reply-retry",
        "socialitsm:sla-dashboard-csv",
        "socialitsm:post-label",
        "socialitsm-api:incident-detail",
        "socialitsm-api:post-label",
        "socialitsm-api:itsm-link-retry",
        "socialitsm-api:itsm-connection-detail",
        "socialitsm-api:report-sla",
        "socialitsm-api:incident-broadcast-confirm",
        "socialitsm:incident-broadcast-confirm",
        "socialitsm-api:itsm-webhook",
        "schema",
        "api-docs",
        "api-redoc",
    } <= names
    assert len(ROUTES) >= 70


def _snapshot() -> tuple:
    return (
        list(Incident.objects.order_by("pk").values_list("number", "state", "assignee")),
        list(Post.objects.order_by("pk").values_list("triage_state", "incident", "label")),
        list(ItsmLink.objects.order_by("pk").values_list("status", "attempts")),
        ItsmConnection.objects.count(),
        SlaPolicy.objects.count(),
        SlaCalendar.objects.count(),
        list(Broadcast.objects.order_by("pk").values_list("status", "text", "visibility")),
        Reply.objects.count(),
        StatusPost.objects.count(),
    )


def _is_web(name: str) -> bool:
    return name.startswith("socialitsm:")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("name", "route"), ROUTES, ids=[name + " " + route for name, route in ROUTES])
def test_anonymous_is_refused_everywhere(world, name, route, method):
    url = _url(name, route, world)
    before = _snapshot()

    response = getattr(APIClient(), method)(url)

    if _is_web(name):
        assert response.status_code in (302, 405), (url, response.status_code)
        if response.status_code == 302:
            assert response["Location"].startswith("/accounts/login/?next=")
    elif name in SIGNED:
        assert response.status_code == (401 if method == "post" else 405)
    else:
        assert response.status_code == 401, (url, response.status_code)
    assert _snapshot() == before


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("name", "route"), ROUTES, ids=[name + " " + route for name, route in ROUTES])
def test_user_without_agent_role_is_refused_everywhere(world, outsider, name, route, method):
    url = _url(name, route, world)
    client = APIClient()
    client.force_login(outsider)
    before = _snapshot()

    response = getattr(client, method)(url)

    if name in SIGNED:
        assert response.status_code == (401 if method == "post" else 405)
    else:
        assert response.status_code in (403, 405), (url, response.status_code)
    assert _snapshot() == before


@pytest.mark.parametrize(
    "url",
    [
        "/incidents/INC%00/",
        "/incidents/INC%00/replies/",
        "/api/v1/incidents/INC%00/",
        "/api/v1/incidents/INC%00/posts/",
        "/api/v1/services/vpn%00/",
        "/api/v1/channels/hook%00/",
        "/api/v1/itsm-connections/suite%00/",
    ],
)
def test_a_nul_in_a_lookup_is_not_found(world, client, url):
    # PostgreSQL refuses NUL in a query: the route must not match rather than fail with a 500.
    client.force_login(UserFactory(username="root", is_superuser=True))
    client.raise_request_exception = False

    response = client.get(url)

    assert response.status_code == 404


@pytest.mark.parametrize(("value", "shown"), [("vpn\x00", "vpn"), ("vpn\ud800", "vpn\ufffd")], ids=["nul", "surrogate"])
@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("patch", "/api/v1/incidents/INC0000901/", lambda v: {"service": v}, "service"),
        (
            "post",
            "/api/v1/sla/policies/",
            lambda v: {"name": "P4", "priority": 4, "first_response_minutes": 60, "service": v},
            "service",
        ),
        (
            "post",
            "/api/v1/itsm-connections/",
            lambda v: {
                "name": "RT",
                "slug": "rt",
                "kind": "rt",
                "base_url": "https://rt.example.com",
                "rule_services": [v],
            },
            "rule_services",
        ),
    ],
    ids=["incident-service", "sla-policy-service", "itsm-connection-services"],
)
def test_a_slug_reference_no_row_can_hold_is_a_400(world, method, url, body, field, value, shown):
    # PostgreSQL fails a query holding a NUL or a lone surrogate: refused before the lookup.
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(UserFactory(username="root", is_superuser=True))
    payload = json.dumps(body(value)).encode()  # json.dumps escapes the surrogate, as a client would

    response = getattr(client, method)(url, payload, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {field: [f"Object with slug={shown} does not exist."]}
