"""Text from networks, suites and configuration is escaped on every page, charts included."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.utils.html import escape

from socialitsm.models import Incident, ItsmConnection, ItsmLink, Post, Reply, Service
from socialitsm.web import charts

from .. import sla_data
from ..factories import AuthorFactory, IncidentFactory, PostFactory, ReplyFactory, UserFactory

pytestmark = pytest.mark.django_db

XSS = '<script>alert("x")</script>'
ATTR = '" onmouseover="alert(1)'


def evil(label: str) -> str:
    return f"{label} {XSS}{ATTR}"


def assert_escaped(html: str, *labels: str) -> None:
    assert "<script>alert" not in html
    assert 'onmouseover="alert' not in html
    for label in labels:
        assert escape(evil(label)) in html, label


@pytest.fixture
def evil_world(agent) -> Incident:
    group = Group.objects.create(name=evil("group"))
    service = Service.objects.create(name=evil("service"), slug="evil", owner_group=group)
    author = AuthorFactory(name=evil("name"), handle=evil("handle"), profile_url="javascript:alert(1)")
    incident = IncidentFactory(
        number="INC0000666",
        short_description=evil("short"),
        service=service,
        assignment_group=group,
        author=author,
        state=Incident.State.IN_PROGRESS,
    )
    post = PostFactory(
        incident=incident,
        author=author,
        text=evil("text"),
        url="javascript:alert(2)",
        detected_service=service,
        triage_state=Post.Triage.INCIDENT,
        reasons=[evil("reason")],
        details=[
            {"kind": "quote", "text": evil("quote"), "url": "javascript:alert(3)"},
            {"kind": "alt_text", "text": evil("alt"), "url": ""},
        ],
    )
    ReplyFactory(incident=incident, post=post, agent=agent, text=evil("reply"), status=Reply.Status.FAILED)
    Reply.objects.filter(incident=incident).update(error=evil("reply-error"))
    connection = ItsmConnection.objects.create(
        name=evil("suite"), slug="suite", kind="fake", base_url="https://suite.example.com"
    )
    ItsmLink.objects.create(
        connection=connection,
        incident=incident,
        external_ref="socialitsm:INC0000666",
        status=ItsmLink.Status.FAILED,
        last_error=evil("itsm-error"),
        remote_status=evil("rs"),
    )
    PostFactory(author=author, text=evil("ignored"), triage_state=Post.Triage.IGNORED, is_complaint=False)
    return incident


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


def test_queue_escapes_names(agent_client, evil_world):
    html = agent_client.get("/").content.decode()
    assert_escaped(html, "short", "service", "group", "name", "handle")


def test_incident_page_escapes_network_and_suite_text(agent_client, evil_world):
    html = agent_client.get("/incidents/INC0000666/").content.decode()
    assert_escaped(
        html,
        "short",
        "service",
        "group",
        "name",
        "handle",
        "text",
        "quote",
        "alt",
        "reason",
        "reply",
        "reply-error",
        "suite",
        "itsm-error",
        "rs",
    )
    assert "javascript:" not in html


def test_triage_escapes_posts(agent_client, evil_world):
    html = agent_client.get("/posts/").content.decode()
    assert_escaped(html, "name", "handle", "ignored")
    assert "javascript:" not in html


def test_sla_dashboard_escapes_groups_agents_and_incidents(client, lead):
    incidents = sla_data.build()
    Group.objects.filter(name="Network Team").update(name=evil("group"))
    bob = UserFactory._meta.model.objects.get(username="bob")
    bob.username = evil("agent")
    bob.save()
    Incident.objects.filter(pk=incidents["C"].pk).update(short_description=evil("short"))
    client.force_login(lead)

    with time_machine.travel(sla_data.NOW, tick=False):
        html = client.get("/sla/", sla_data.QUERY).content.decode()

    assert_escaped(html, "group", "agent", "short")


def test_chart_labels_are_escaped_in_the_svg():
    bar = charts.bar_chart(
        chart_id="c",
        title=evil("title"),
        desc=evil("desc"),
        categories=[evil("category")],
        series=[charts.Series(evil("series"), [3], css="met")],
    )
    line = charts.line_chart(
        chart_id="l",
        title=evil("title"),
        desc=evil("desc"),
        labels=["2026-11-20", "2026-11-21"],
        series=[charts.Series(evil("series"), [1.5, None])],
    )
    for svg in (str(bar), str(line)):
        assert_escaped(svg, "title", "desc", "series")
        # Attributes hold the labels whole, quotes escaped: no attribute can be closed early.
        assert re.search(r'data-series="[^"]*&quot; onmouseover=&quot;alert\(1\)"', svg)
    assert escape(evil("category")) in str(bar)
