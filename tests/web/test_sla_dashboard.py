"""The lead's SLA dashboard, its CSV export, queue sorting by time to breach and the incident's clocks."""

from __future__ import annotations

import csv
import io
import re
from html import unescape

import pytest
import time_machine
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from socialitsm.models import Incident, SlaCalendar, SlaPolicy

from .. import sla_data
from ..test_selectors import EXPECTED

pytestmark = pytest.mark.django_db

PAGE = "/sla/"
CSV = "/sla/export.csv"


@pytest.fixture
def lead_client(client, lead):
    client.force_login(lead)
    return client


def test_dashboard_needs_a_login(client):
    response = client.get(PAGE)
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/sla/")


@pytest.mark.parametrize("url", [PAGE, CSV])
def test_dashboard_is_for_leads_only(client, agent, url):
    client.force_login(agent)
    assert client.get(url).status_code == 403


def flatten(report: dict) -> dict[str, str]:
    """The API report keyed as the page's data-figure attributes, values as the page prints them."""

    def shown(value) -> str:
        return "—" if value is None else str(value)

    out = {f"incidents.{k}": shown(v) for k, v in report["incidents"].items()}
    for section in ("first_response", "ingest_lag"):
        out |= {f"{section}.{k}": shown(v) for k, v in report[section].items()}
    for row in report["targets"]:
        for metric in ("met", "breached", "open", "canceled", "met_percent"):
            out[f"targets.{row['target']}.P{row['priority']}.{metric}"] = shown(row[metric])
    out |= {f"breaches_by_agent.{r['agent']}": shown(r["breached"]) for r in report["breaches_by_agent"]}
    out |= {f"breaches_by_group.{r['group']}": shown(r["breached"]) for r in report["breaches_by_group"]}
    out |= {f"at_risk.{r['number']}.{r['target']}": r["due_at"] for r in report["at_risk"]}
    for section, key in (("by_service", "service"), ("by_agent", "agent")):
        for row in report[section]:
            for metric in ("incidents", "met", "breached", "met_percent", "median_first_response_minutes"):
                out[f"{section}.{row[key]}.{metric}"] = shown(row[metric])
    for row in report["sentiment"]:
        for metric in ("negative", "positive", "ratio"):
            value = "∞ only negative" if metric == "ratio" and row["only_negative"] else shown(row[metric])
            out[f"sentiment.{row['date']}.{row['network']}.{metric}"] = value
    return out


def page_figures(html: str) -> dict[str, str]:
    figures = {}
    # A figure may be a link to the incidents behind it.
    for key, attributes, value in re.findall(
        r'data-figure="([^"]+)"([^>]*)>(?:<a [^>]*>)?(?:<span [^>]*>)?([^<]*)<', html
    ):
        # Times show for people; their exact value is in the title.
        exact = re.search(r'title="([^"]+)"', attributes)
        figures[unescape(key)] = unescape(exact.group(1) if exact else value.strip())
    return figures


def test_the_page_shows_the_same_figures_as_the_api(lead_client, lead):
    sla_data.build()
    api = APIClient()
    api.force_authenticate(lead)

    with time_machine.travel(sla_data.NOW, tick=False):
        page = lead_client.get(PAGE, sla_data.QUERY)
        report = api.get("/api/v1/reports/sla/", sla_data.QUERY).json()

    assert page.status_code == 200
    assert report == EXPECTED
    assert page_figures(page.content.decode()) == flatten(report)


def test_the_charts_draw_the_figures(lead_client):
    sla_data.build()

    with time_machine.travel(sla_data.NOW, tick=False):
        html = lead_client.get(PAGE, sla_data.QUERY).content.decode()

    bars = re.findall(r'<rect class="bar (\w+)" data-series="(\w+)" data-category="(P\d)" data-value="(\d+)"', html)
    first_response = bars[:10]
    assert first_response == [
        ("met", "Met", "P1", "1"), ("breached", "Breached", "P1", "1"),
        ("met", "Met", "P2", "0"), ("breached", "Breached", "P2", "0"),
        ("met", "Met", "P3", "0"), ("breached", "Breached", "P3", "0"),
        ("met", "Met", "P4", "0"), ("breached", "Breached", "P4", "1"),
        ("met", "Met", "P5", "0"), ("breached", "Breached", "P5", "0"),
    ]  # fmt: skip
    # No policy sets a next-response target: that chart says so instead of drawing zeros.
    assert len(bars) == 20
    assert (
        '<p class="empty chart-empty" id="chart-next_response-empty">No SLA policy sets a next response target, '
        "so no clock of it runs.</p>"
    ) in html
    dots = re.findall(r'<circle class="dot" data-series="(\w+)" data-category="([\d-]+)" data-value="([\d.]+)"', html)
    assert dots == [("Mastodon", "2026-11-20", "0"), ("Replay", "2026-11-20", "2")]
    assert '<title id="chart-first_response-title">First response: met and breached by priority</title>' in html


def test_csv_export_has_the_same_figures(lead_client):
    sla_data.build()

    with time_machine.travel(sla_data.NOW, tick=False):
        response = lead_client.get(CSV, sla_data.QUERY)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="sla-2026-11-19-2026-11-20.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[:10] == [
        ["section", "key", "metric", "value"],
        ["period", "", "from", "2026-11-19"],
        ["period", "", "to", "2026-11-20"],
        ["period", "", "group", ""],
        ["period", "", "network", ""],
        ["period", "", "calendar", ""],
        ["period", "", "timezone", "UTC"],
        ["incidents", "", "in", "4"],
        ["incidents", "", "out", "1"],
        ["sla", "first_response P1", "met", "1"],
    ]
    for row in (
        ["sla", "first_response P1", "met_percent", "50.0"],
        ["sla", "resolution P4", "breached", "1"],
        ["first_response", "", "median_minutes", "20.0"],
        ["first_response", "", "p90_minutes", "30.0"],
        ["ingest_lag", "", "median_minutes", "0.5"],
        ["breaches_by_agent", "bob", "breached", "2"],
        ["breaches_by_group", "Network Team", "breached", "2"],
        ["at_risk", "INC0001004 first_response", "due_at", "2026-11-20T11:59:00+00:00"],
        ["sentiment", "2026-11-20 replay", "ratio", "2.0"],
        ["sentiment", "2026-11-19 replay", "ratio", ""],
    ):
        assert row in rows
    assert ["by_agent", "anna", "met_percent", "66.7"] in rows
    assert ["by_service", "(no service)", "median_first_response_minutes", "20.0"] in rows
    # header, period, flow, targets, two duration sections, breaches by agent and group, at
    # risk, per service and per agent, sentiment
    assert len(rows) == 1 + 6 + 2 + 15 * 5 + 3 + 3 + 2 + 2 + 1 + 1 * 5 + 3 * 5 + 3 * 4


def test_csv_cells_cannot_become_spreadsheet_formulas(lead_client):
    sla_data.build()
    Group.objects.filter(name="Network Team").update(name="=HYPERLINK(1)")

    with time_machine.travel(sla_data.NOW, tick=False):
        rows = list(csv.reader(io.StringIO(lead_client.get(CSV, sla_data.QUERY).content.decode())))

    assert ["breaches_by_group", "'=HYPERLINK(1)", "breached", "2"] in rows


def test_names_are_escaped_on_the_page(lead_client):
    sla_data.build()
    Group.objects.filter(name="Network Team").update(name="<b>Ops</b>")

    with time_machine.travel(sla_data.NOW, tick=False):
        html = lead_client.get(PAGE, sla_data.QUERY).content.decode()

    assert "<b>Ops</b>" not in html
    assert "&lt;b&gt;Ops&lt;/b&gt;" in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "2026-11-21", "to": "2026-11-20"}, "the period starts after it ends"),
        ({"from": "not a date"}, "Enter a valid date."),
    ],
)
@pytest.mark.usefixtures("any_clock")
def test_bad_filters_are_explained(lead_client, query, message):
    page = lead_client.get(PAGE, query)
    export = lead_client.get(CSV, query)
    assert (page.status_code, export.status_code) == (400, 400)
    assert message in page.content.decode()
    assert export.content.decode() == message


def test_the_queue_sorts_by_time_to_breach(client, agent):
    sla_data.build()
    client.force_login(agent)

    with time_machine.travel(sla_data.NOW, tick=False):
        by_breach = client.get("/", {"sort": "breach"})
        by_priority = client.get("/")

    numbers = {i.number: key for key, i in sla_data_numbers().items()}
    listed = [numbers[i.number] for i in by_breach.context["page"].object_list]
    # D was due on the 19th, B's resolution at 13:00, C's first response at 11:59; A is resolved.
    assert listed == ["D", "C", "B"]
    assert [numbers[i.number] for i in by_priority.context["page"].object_list] == ["B", "D", "C"]
    assert '<span class="overdue" title="due 2026-11-19 08:00 UTC">breached</span>' in by_breach.content.decode()


def sla_data_numbers() -> dict[str, Incident]:
    return {
        key: Incident.objects.get(posts__external_id=f"sla-{handle}")
        for key, handle in {"A": "@ada", "B": "@ben", "C": "@cy", "D": "@dora"}.items()
    }


def test_the_incident_page_shows_each_clock(client, agent):
    sla_data.build()
    client.force_login(agent)
    c = sla_data_numbers()["C"]

    with time_machine.travel(sla_data.NOW, tick=False):
        html = client.get(f"/incidents/{c.number}/").content.decode()

    clocks = re.search(r'<section class="card" id="sla-clocks">(.*?)</section>', html, re.S).group(1)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", clocks)).strip()
    assert text == (
        "SLA P4 24x7 "
        "First response Running · at risk due 2026-11-20 11:59 UTC 56 min of 60 min business time used "
        "Resolution Running due 2026-11-20 18:59 UTC 56 min of 480 min business time used "
        "Reached us 1 min after it was posted."
    )


DEFAULTS_NOTE = 'id="sla-defaults"'


def _edit_a_target() -> None:
    SlaPolicy.objects.filter(priority=2).update(first_response_minutes=30)


def _use_business_hours() -> None:
    office = SlaCalendar.objects.create(name="Office", hours={"mon": [["09:00", "17:00"]]})
    SlaPolicy.objects.filter(priority__gte=3).update(calendar=office)


def _add_a_policy() -> None:
    SlaPolicy.objects.create(name="VIP", priority=1, position=5, first_response_minutes=5, resolution_minutes=60)


def _deactivate_one() -> None:
    SlaPolicy.objects.filter(priority=5).update(active=False)


def _delete_one() -> None:
    SlaPolicy.objects.filter(priority=4).delete()


def test_leads_are_told_while_the_shipped_sla_policies_are_in_force(lead_client, sla_defaults):
    page = lead_client.get(PAGE).content.decode()

    assert DEFAULTS_NOTE in page
    note = unescape(re.sub(r"<[^>]+>|\s+", " ", page.split(DEFAULTS_NOTE, 1)[1].split("</p>", 1)[0]))
    assert "around the clock (24x7)" in note
    assert 'href="/admin/socialitsm/slapolicy/"' in page
    assert "/api/v1/sla/policies/" in note


@pytest.mark.parametrize("change", [_edit_a_target, _use_business_hours, _add_a_policy, _deactivate_one, _delete_one])
def test_the_defaults_note_goes_once_a_lead_changes_the_policies(lead_client, sla_defaults, change):
    change()
    assert DEFAULTS_NOTE not in lead_client.get(PAGE).content.decode()


def test_no_defaults_note_for_policies_set_up_by_hand(lead_client):
    SlaPolicy.objects.create(name="P1", priority=1, first_response_minutes=15, resolution_minutes=240)
    assert DEFAULTS_NOTE not in lead_client.get(PAGE).content.decode()
