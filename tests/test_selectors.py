from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth.models import Group

from socialitsm.exceptions import ApplicationError
from socialitsm.selectors import report_filter, sla_report

from . import sla_data

pytestmark = pytest.mark.django_db

ZERO = {"met": 0, "breached": 0, "open": 0, "canceled": 0, "met_percent": None}


def targets(**rows: dict) -> list[dict]:
    """All 15 target x priority rows: zero unless given as e.g. first_response_1={...}."""
    out = []
    for target in ("first_response", "next_response", "resolution"):
        for priority in range(1, 6):
            out.append({"target": target, "priority": priority, **ZERO, **rows.get(f"{target}_{priority}", {})})
    return out


EXPECTED = {
    "period": {"from": "2026-11-19", "to": "2026-11-20", "group": None, "network": None},
    "incidents": {"in": 4, "out": 1},
    "targets": targets(
        first_response_1={"met": 1, "breached": 1, "met_percent": 50.0},
        first_response_4={"breached": 1, "open": 1, "met_percent": 0.0},
        resolution_1={"met": 1, "open": 1, "met_percent": 100.0},
        resolution_4={"breached": 1, "open": 1, "met_percent": 0.0},
    ),
    "first_response": {"count": 2, "median_minutes": 20.0, "p90_minutes": 30.0},
    "ingest_lag": {"count": 4, "median_minutes": 0.5, "p90_minutes": 2.0},
    "breaches_by_agent": [{"agent": "bob", "breached": 2}, {"agent": "anna", "breached": 1}],
    "breaches_by_group": [{"group": "Network Team", "breached": 2}, {"group": "Service Desk", "breached": 1}],
    "at_risk": [
        {
            "number": "INC0001004",
            "short_description": "VPN down again, third time this week",
            "priority": 4,
            "target": "first_response",
            "due_at": "2026-11-20T11:59:00+00:00",
            "minutes_left": 4,
            "assignee": None,
            "group": "Network Team",
        }
    ],
    "sentiment": [
        {"date": "2026-11-19", "network": "replay", "negative": 0, "positive": 0, "ratio": None},
        {"date": "2026-11-20", "network": "mastodon", "negative": 0, "positive": 1, "ratio": 0.0},
        {"date": "2026-11-20", "network": "replay", "negative": 2, "positive": 1, "ratio": 2.0},
    ],
}


def scope(**kwargs):
    return report_filter(
        start=kwargs.pop("start", date(2026, 11, 19)),
        end=kwargs.pop("end", date(2026, 11, 20)),
        group=kwargs.pop("group", None),
        network=kwargs.pop("network", ""),
        today=date(2026, 11, 20),
    )


def test_sla_report_figures():
    sla_data.build()

    assert sla_report(scope=scope(), now=sla_data.NOW) == EXPECTED


def test_sla_report_for_one_group_and_one_day():
    sla_data.build()
    network = Group.objects.get(name="Network Team")

    report = sla_report(scope=scope(start=date(2026, 11, 20), group=network), now=sla_data.NOW)

    assert report["incidents"] == {"in": 1, "out": 0}
    assert [r for r in report["targets"] if r["open"] or r["met"] or r["breached"]] == [
        {
            "target": "first_response",
            "priority": 4,
            "met": 0,
            "breached": 0,
            "open": 1,
            "canceled": 0,
            "met_percent": None,
        },
        {"target": "resolution", "priority": 4, "met": 0, "breached": 0, "open": 1, "canceled": 0, "met_percent": None},
    ]
    assert report["breaches_by_agent"] == report["breaches_by_group"] == []
    assert [r["number"] for r in report["at_risk"]] == ["INC0001004"]


def test_sla_report_for_another_network_counts_only_its_posts():
    sla_data.build()

    report = sla_report(scope=scope(network="mastodon"), now=sla_data.NOW)

    assert (report["incidents"], report["first_response"]["count"], report["at_risk"]) == ({"in": 0, "out": 0}, 0, [])
    assert report["sentiment"] == [
        {"date": "2026-11-20", "network": "mastodon", "negative": 0, "positive": 1, "ratio": 0.0}
    ]


@pytest.mark.usefixtures("any_clock")
def test_report_filter_defaults_to_the_last_seven_days():
    got = report_filter(start=None, end=None, group=None, network="", today=date(2026, 11, 26))
    assert (got.start, got.end, got.since.isoformat(), got.until.isoformat()) == (
        date(2026, 11, 20),
        date(2026, 11, 26),
        "2026-11-20T00:00:00+00:00",
        "2026-11-27T00:00:00+00:00",
    )


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"start": date(2026, 11, 21), "end": date(2026, 11, 20)}, "from", "the period starts after it ends"),
        ({"start": date(2025, 1, 1), "end": date(2026, 11, 20)}, "from", "the period is longer than 366 days"),
        ({"network": "myspace"}, "network", "unknown network 'myspace'"),
    ],
)
@pytest.mark.usefixtures("any_clock")
def test_report_filter_refuses_bad_scopes(kwargs, field, message):
    with pytest.raises(ApplicationError) as err:
        report_filter(
            **{"start": None, "end": None, "group": None, "network": "", "today": date(2026, 11, 26), **kwargs}
        )
    assert (err.value.field, err.value.message) == (field, message)
