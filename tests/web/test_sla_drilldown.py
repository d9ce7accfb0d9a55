"""The lead's SLA figures drill down to their incidents; days in a calendar's time zone; days with
only negative posts; empty charts explained; role groups are not teams."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from socialitsm.models import SlaCalendar, SlaPolicy
from socialitsm.roles import AGENT_GROUP, LEAD_GROUP
from socialitsm.selectors import report_filter, report_today, sla_report

from .. import sla_data
from ..factories import PostFactory

pytestmark = pytest.mark.django_db

DRILL = "/sla/incidents/"
API_DRILL = "/api/v1/reports/sla/incidents/"


@pytest.fixture
def lead_client(client, lead):
    client.force_login(lead)
    return client


@pytest.fixture
def history():
    built = sla_data.build()
    with time_machine.travel(sla_data.NOW, tick=False):
        yield built


def numbers(response) -> list[str]:
    return [row["incident"].number for row in response.context["rows"]]


DRILLS = [
    ({"target": "first_response", "priority": "1", "outcome": "breached"}, ["B"]),
    ({"target": "first_response", "outcome": "breached"}, ["D", "B"]),
    ({"target": "resolution", "priority": "1", "outcome": "met"}, ["A"]),
    ({"target": "first_response", "outcome": "open"}, ["C"]),
    ({"outcome": "breached", "agent": "bob"}, ["D"]),
    ({"outcome": "breached", "team": "Network Team"}, ["D"]),
    ({"flow": "in"}, ["D", "A", "B", "C"]),
    ({"flow": "in", "agent": "(unassigned)"}, ["C"]),
    ({"flow": "out", "service": "(no service)"}, ["A"]),
    ({"target": "first_response", "outcome": "decided", "agent": "anna"}, ["A", "B"]),
]


def test_each_figure_lists_the_incidents_behind_it(lead_client, history):
    # One history for all the figures: building it is the slow part.
    for drill, expected in DRILLS:
        response = lead_client.get(DRILL, {**sla_data.QUERY, **drill})

        assert response.status_code == 200
        assert numbers(response) == [history[name].number for name in expected], drill


def test_the_dashboard_links_its_figures_to_the_drill_down(lead_client, history):
    html = lead_client.get("/sla/", sla_data.QUERY).content.decode()

    for link in (
        "/sla/incidents/?from=2026-11-19&amp;to=2026-11-20&amp;target=first_response&amp;priority=1&amp;outcome=breached",
        "/sla/incidents/?from=2026-11-19&amp;to=2026-11-20&amp;outcome=breached&amp;agent=bob",
        "/sla/incidents/?from=2026-11-19&amp;to=2026-11-20&amp;outcome=breached&amp;team=Network%20Team",
        "/sla/incidents/?from=2026-11-19&amp;to=2026-11-20&amp;flow=in&amp;agent=%28unassigned%29",
        "/sla/incidents/?from=2026-11-19&amp;to=2026-11-20&amp;flow=in",
    ):
        assert f'href="{link}"' in html


def test_drill_down_is_for_leads_only(client, agent):
    client.force_login(agent)
    assert client.get(DRILL, sla_data.QUERY).status_code == 403


def test_drill_down_refuses_an_unknown_outcome(lead_client):
    response = lead_client.get(DRILL, {**sla_data.QUERY, "outcome": "late"})

    assert response.status_code == 400
    assert "Select a valid choice. late is not one of the available choices." in response.content.decode()


def test_api_lists_the_incidents_behind_a_figure(lead, history):
    api = APIClient()
    api.force_authenticate(lead)

    response = api.get(API_DRILL, {**sla_data.QUERY, "target": "first_response", "outcome": "breached"})

    assert response.status_code == 200
    assert [i["number"] for i in response.json()["results"]] == [history["D"].number, history["B"].number]


def test_api_drill_down_is_for_leads_only(agent):
    api = APIClient()
    api.force_authenticate(agent)
    assert api.get(API_DRILL, sla_data.QUERY).status_code == 403


def test_days_are_counted_in_the_calendars_time_zone(lead_client, history):
    pacific = SlaCalendar.objects.create(name="Pacific desk", timezone="America/Los_Angeles")

    utc = sla_report(scope=_scope(), now=sla_data.NOW)
    local = sla_report(scope=_scope(calendar=pacific), now=sla_data.NOW)
    wider = sla_report(scope=_scope(start=date(2026, 11, 18), calendar=pacific), now=sla_data.NOW)

    # D was opened at 07:00 UTC on the 19th: 23:00 on the 18th in Los Angeles.
    assert (utc["incidents"]["in"], local["incidents"]["in"], wider["incidents"]["in"]) == (4, 3, 4)
    assert [(r["date"], r["network"]) for r in local["sentiment"]] == [
        ("2026-11-20", "mastodon"),
        ("2026-11-20", "replay"),
    ]
    assert ("2026-11-18", "replay") in [(r["date"], r["network"]) for r in wider["sentiment"]]
    assert (local["period"]["calendar"], local["period"]["timezone"]) == ("Pacific desk", "America/Los_Angeles")
    page = lead_client.get("/sla/", {**sla_data.QUERY, "calendar": pacific.pk})
    assert page.context["report"]["incidents"]["in"] == 3
    assert "Days 2026-11-19 to 2026-11-20 in America/Los_Angeles (calendar Pacific desk)" in page.content.decode()


def test_the_default_end_is_today_in_the_calendars_time_zone():
    pacific = SlaCalendar(name="Pacific desk", timezone="America/Los_Angeles")
    with time_machine.travel(datetime(2026, 11, 20, 3, 0, tzinfo=UTC), tick=False):
        now = datetime.now(UTC)
        assert (report_today(None, now), report_today(pacific, now)) == (date(2026, 11, 20), date(2026, 11, 19))


def test_a_day_with_only_negative_posts_is_shown_and_drawn(lead_client):
    with time_machine.travel(datetime(2026, 11, 21, 12, 0, tzinfo=UTC), tick=False):
        for n, hour in enumerate((8, 9)):
            PostFactory(sentiment=-0.5, posted_at=datetime(2026, 11, 20, hour, 0, tzinfo=UTC), external_id=f"neg-{n}")
        PostFactory(sentiment=0.5, posted_at=datetime(2026, 11, 21, 8, 0, tzinfo=UTC), external_id="pos")
        PostFactory(sentiment=-0.5, posted_at=datetime(2026, 11, 21, 9, 0, tzinfo=UTC), external_id="neg-2")
        response = lead_client.get("/sla/", {"from": "2026-11-20", "to": "2026-11-21"})

    html = response.content.decode()
    assert [(r["date"], r["ratio"], r["only_negative"]) for r in response.context["report"]["sentiment"]] == [
        ("2026-11-20", None, True),
        ("2026-11-21", 1.0, False),
    ]
    assert 'data-figure="sentiment.2026-11-20.replay.ratio"><span class="overdue"' in html
    assert "∞ only negative" in html
    assert '<path class="dot infinite" data-series="Replay" data-category="2026-11-20" data-value="inf"' in html
    assert 'data-series="Replay" data-category="2026-11-21" data-value="1"' in html


def test_an_empty_next_response_chart_says_why(lead_client, history):
    SlaPolicy.objects.filter(priority=1).update(next_response_minutes=30)

    html = lead_client.get("/sla/", sla_data.QUERY).content.decode()

    assert "No next-response clock started in this period: one starts when a poster writes again" in html
    assert 'id="chart-next_response"' not in html


def test_role_groups_are_not_offered_as_teams(lead_client):
    for name in ("Service Desk", "Network Team"):
        Group.objects.create(name=name)
    response = lead_client.get("/sla/", sla_data.QUERY)

    offered = [group.name for group in response.context["form"].fields["group"].queryset]
    assert offered == ["Network Team", "Service Desk"]
    role = Group.objects.get(name=AGENT_GROUP)
    refused = lead_client.get("/sla/", {**sla_data.QUERY, "group": role.pk})
    assert refused.status_code == 400


def test_the_api_refuses_a_role_group(lead):
    api = APIClient()
    api.force_authenticate(lead)

    response = api.get("/api/v1/reports/sla/", {**sla_data.QUERY, "group": Group.objects.get(name=LEAD_GROUP).pk})

    assert (response.status_code, response.json()) == (400, {"group": ["socialitsm-leads is a role, not a team"]})


def _scope(start=date(2026, 11, 19), calendar=None):
    return report_filter(
        start=start, end=date(2026, 11, 20), group=None, network="", today=date(2026, 11, 20), calendar=calendar
    )
