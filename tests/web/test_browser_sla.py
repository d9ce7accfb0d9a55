"""The lead's dashboard in a real browser: filters, charts, CSV download; agents are refused."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
import time_machine
from django.conf import settings

from .. import sla_data
from ..factories import PASSWORD
from .test_browser import page  # noqa: F401 - the Playwright page fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SCREENSHOT = Path(settings.BASE_DIR) / "var" / "test" / "sla-dashboard.png"


def log_in(page, username: str, next_path: str) -> None:  # noqa: F811
    page.goto(next_path)
    page.wait_for_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_an_agent_who_is_not_a_lead_is_refused(page, agent):  # noqa: F811
    log_in(page, agent.username, "/")
    page.wait_for_url(re.compile(r"/$"))
    assert page.get_by_role("link", name="SLA dashboard").count() == 0

    response = page.goto("/sla/")

    assert response is not None and response.status == 403


def test_a_lead_reads_the_dashboard_and_downloads_the_csv(page, lead):  # noqa: F811
    from playwright.sync_api import expect

    sla_data.build()
    with time_machine.travel(sla_data.NOW, tick=True):
        log_in(page, lead.username, "/")
        page.get_by_role("link", name="SLA dashboard").click()
        expect(page.get_by_role("heading", name="SLA dashboard", level=1)).to_be_visible()
        page.locator("#id_from").fill("2026-11-19")
        page.locator("#id_to").fill("2026-11-20")
        page.get_by_role("button", name="Show").click()
        page.wait_for_url(re.compile(r"from=2026-11-19&to=2026-11-20"))

        expect(page.locator('[data-figure="incidents.in"]')).to_have_text("4")
        chart = page.get_by_role("img", name="First response: met and breached by priority")
        expect(chart).to_be_visible()
        bars = chart.locator("rect.bar")
        expect(bars).to_have_count(10)
        p1_met, p1_breached = bars.nth(0), bars.nth(1)
        assert (p1_met.get_attribute("data-value"), p1_breached.get_attribute("data-value")) == ("1", "1")
        # Drawn, not just present: both bars have height on screen and share the P1 group.
        met_box, breached_box = p1_met.bounding_box(), p1_breached.bounding_box()
        assert met_box is not None and breached_box is not None
        assert met_box["height"] > 30 and abs(met_box["height"] - breached_box["height"]) < 1
        assert 0 < breached_box["x"] - met_box["x"] < 60
        expect(page.get_by_role("img", name="Negative to positive posts per day")).to_be_visible()
        expect(page.locator("#at-risk tbody tr")).to_have_count(1)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        with page.expect_download() as download_info:
            page.get_by_role("link", name="Export CSV").click()
        download = download_info.value

    assert download.suggested_filename == "sla-2026-11-19-2026-11-20.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert rows[0] == ["section", "key", "metric", "value"]
    assert ["incidents", "", "in", "4"] in rows
    assert ["sla", "first_response P1", "breached", "1"] in rows
    assert ["breaches_by_agent", "bob", "breached", "2"] in rows
