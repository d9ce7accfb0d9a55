from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from socialitsm.models import Broadcast, Incident, Reply, Service
from socialitsm.services.broadcasts import broadcast_propose_fixed

from ..factories import AuthorFactory, ChannelFactory, IncidentFactory, PostFactory, WatchRuleFactory
from .test_browser import agent_user, log_in, page  # noqa: F401 - fixtures shared with the ticket's browser tests

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SCREENSHOT = Path(settings.BASE_DIR) / "var" / "test" / "broadcast.png"


def major_with_posters(*handles: str, state: str = Incident.State.IN_PROGRESS) -> Incident:
    email = Service.objects.get(slug="email")
    major = IncidentFactory(
        number="INC0000900", is_major=True, short_description="E-mail down for everyone", service=email, state=state
    )
    rule = WatchRuleFactory(channel=ChannelFactory(name="IT Support", slug="it-support"))
    for n, handle in enumerate(handles):
        child = IncidentFactory(number=f"INC000091{n}", parent=major, service=email)
        PostFactory(rule=rule, incident=child, author=AuthorFactory(handle=handle, name=handle[1:].title()))
    return major


def test_agent_previews_leaves_one_out_and_confirms_once(page, agent_user, fake_network):  # noqa: F811
    from playwright.sync_api import expect

    major_with_posters("@ana", "@bo", "@cy")
    log_in(page, "/incidents/INC0000900/")
    expect(page.locator("#major-broadcasts")).to_contain_text("3 affected posters")
    page.get_by_role("link", name="Broadcast to the affected posters").click()

    page.get_by_role("textbox", name="Message", exact=True).fill(
        "Hi {name}, e-mail is down; we are on it ({incident})."
    )
    page.get_by_role("button", name="Preview").click()
    expect(page.locator(".message-info")).to_contain_text("Draft saved")
    rows = page.locator("table.preview tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Hi Ana, e-mail is down; we are on it (INC0000910).")
    expect(rows.nth(2)).to_contain_text("Hi Cy, e-mail is down; we are on it (INC0000912).")
    assert fake_network.sent == []

    page.get_by_label("Leave out @bo").check()
    form = page.locator("[data-broadcast-confirm]")
    action, token = form.get_attribute("action"), form.locator("[name=csrfmiddlewaretoken]").input_value()
    page.get_by_role("button", name="Confirm and send").click()
    expect(page.locator(".message-success")).to_have_text(
        "Broadcast confirmed: 2 replies queued, paced per channel; 1 left out."
    )
    recipients = page.locator("table.recipients tbody tr")
    expect(recipients).to_have_count(2)
    expect(page.locator(".broadcast-confirmed .left-out")).to_contain_text("@bo: left out by the agent")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # The same form posted again (a double click, a resubmitted page) sends nothing again.
    again = page.request.post(action, form={"csrfmiddlewaretoken": token, "exclude": ""}, max_redirects=0)
    assert again.status == 302
    page.reload()
    expect(page.locator(".message-info")).to_have_text("This broadcast was confirmed already; nothing was sent again.")
    assert Reply.objects.filter(broadcast__isnull=False).count() == 2
    assert [m["text"] for m in fake_network.sent] == ["Hi Ana, e-mail is down; we are on it (INC0000910)."]
    assert list(Reply.objects.order_by("pk").values_list("status", flat=True)) == ["sent", "queued"]


def test_fixed_message_is_confirmed_from_the_incident_page(page, agent_user, fake_network, settings):  # noqa: F811
    from playwright.sync_api import expect

    settings.SOCIALITSM_BROADCAST_FIXED_TEXT = "Good news {name}: {service} works again."
    major = major_with_posters("@ana", "@bo", state=Incident.State.RESOLVED)
    draft = broadcast_propose_fixed(major=major, actor=None)
    log_in(page, "/incidents/INC0000900/")

    card = page.locator("[data-fixed-draft]")
    expect(card).to_contain_text("Good news {name}: {service} works again.")
    card.get_by_role("link", name="Review and confirm").click()
    section = page.locator(f"#broadcast-{draft.pk}")
    expect(section.locator("table.preview tbody tr")).to_have_text(
        [re.compile("Good news Ana: Email works again."), re.compile("Good news Bo: Email works again.")]
    )
    section.get_by_role("textbox", name="Message", exact=True).fill(
        "All fixed, {name}: {service} is back. Thanks for your patience!"
    )
    section.get_by_role("button", name="Update preview").click()
    section = page.locator(f"#broadcast-{draft.pk}")
    expect(section.locator("table.preview tbody tr").first).to_contain_text(
        "All fixed, Ana: Email is back. Thanks for your patience!"
    )
    section.get_by_role("button", name="Confirm and send").click()
    expect(page.locator(".message-success")).to_contain_text("2 replies queued")
    assert Broadcast.objects.get(pk=draft.pk).status == "confirmed"
    page.goto("/incidents/INC0000900/")
    expect(page.locator("[data-fixed-draft]")).to_have_count(0)
    expect(page.locator("#major-broadcasts")).to_contain_text("Fixed · Confirmed")
