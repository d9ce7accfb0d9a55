from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Group

from .. import sla_data
from ..test_selectors import EXPECTED

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/sla/"


def test_report_needs_a_login(api):
    assert api.get(URL).status_code == 401


def test_report_is_for_leads_only(agent_api):
    response = agent_api.get(URL)
    assert (response.status_code, response.json()) == (403, {"detail": "You need the team lead role for this."})


def test_report_returns_the_figures(lead_api):
    sla_data.build()

    with time_machine.travel(sla_data.NOW, tick=False):
        response = lead_api.get(URL, sla_data.QUERY)

    assert response.status_code == 200
    assert response.json() == EXPECTED


def test_report_filters_by_group_and_network(lead_api):
    sla_data.build()
    network = Group.objects.get(name="Network Team")

    with time_machine.travel(sla_data.NOW, tick=False):
        response = lead_api.get(URL, {**sla_data.QUERY, "group": network.pk, "network": "replay"})

    body = response.json()
    assert body["period"] == {
        "from": "2026-11-19",
        "to": "2026-11-20",
        "group": "Network Team",
        "network": "replay",
        "calendar": None,
        "timezone": "UTC",
    }
    assert body["incidents"] == {"in": 2, "out": 0}
    assert body["breaches_by_agent"] == [{"agent": "bob", "breached": 2}]


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ({"from": "2026-11-21", "to": "2026-11-20"}, {"from": ["the period starts after it ends"]}),
        ({"from": "yesterday"}, {"from": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."]}),
        ({"network": "myspace"}, {"network": ['"myspace" is not a valid choice.']}),
        ({"group": "999999"}, {"group": ['Invalid pk "999999" - object does not exist.']}),
    ],
)
def test_report_refuses_bad_filters(lead_api, query, errors):
    response = lead_api.get(URL, query)
    assert (response.status_code, response.json()) == (400, errors)


def test_report_has_the_major_incidents_of_the_period(lead_api, agent, fake_network):
    now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        sla_data.build_major_outage(now=now, agent=agent, fake_network=fake_network)
        response = lead_api.get(URL, {"from": "2026-11-26", "to": "2026-11-26"})
        before = lead_api.get(URL, {"from": "2026-11-20", "to": "2026-11-25"})

    assert response.status_code == 200
    assert response.json()["major_incidents"] == [
        {
            "number": "INC0000900",
            "short_description": "Mail",
            "service": "Email",
            "state": "new",
            "opened_at": "2026-11-26T08:00:00+00:00",
            "children": 3,
            "first_post_at": "2026-11-26T07:30:00+00:00",
            "minutes_to_major": 30.0,
            "minutes_to_first_broadcast": 45.0,
            "posters": 3,
            "answered": 2,
            "unanswered": 1,
        },
        {
            "number": "INC0000950",
            "short_description": "VPN down again",
            "service": "Email",
            "state": "new",
            "opened_at": "2026-11-26T08:55:00+00:00",
            "children": 0,
            "first_post_at": None,
            "minutes_to_major": None,
            "minutes_to_first_broadcast": None,
            "posters": 0,
            "answered": 0,
            "unanswered": 0,
        },
    ]
    assert before.json()["major_incidents"] == []
