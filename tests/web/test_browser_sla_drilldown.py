"""The lead follows a figure of the SLA dashboard to the incidents behind it."""

from __future__ import annotations

import re

import pytest
import time_machine

from .. import sla_data
from .test_browser import page  # noqa: F401 - the Playwright page fixture
from .test_browser_sla import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_lead_drills_down_from_a_breach_to_the_incident(page, lead):  # noqa: F811
    from playwright.sync_api import expect

    built = sla_data.build()
    with time_machine.travel(sla_data.NOW, tick=True):
        log_in(page, lead.username, "/sla/?from=2026-11-19&to=2026-11-20")
        page.wait_for_url(re.compile(r"/sla/\?from="))

        page.locator('[data-figure="targets.first_response.P1.breached"] a').click()
        page.wait_for_url(re.compile(r"/sla/incidents/\?.*outcome=breached"))
        expect(page.locator("#drill-described")).to_contain_text("First response clock, breached, P1")
        rows = page.locator("#drill-incidents tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-number", built["B"].number)
        expect(rows.first).to_contain_text("First response: Breached")

        page.get_by_role("link", name="Back to the SLA dashboard").click()
        page.locator('[data-figure="by_agent.bob.breached"] a').click()
        expect(page.locator("#drill-incidents tbody tr")).to_have_count(1)
        expect(page.locator("#drill-incidents tbody tr").first).to_have_attribute("data-number", built["D"].number)

        page.get_by_role("link", name=built["D"].number).click()
        page.wait_for_url(re.compile(rf"/incidents/{built['D'].number}/$"))
