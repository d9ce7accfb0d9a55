"""The incident page as agents work it all day, in Chromium: internal notes, canned replies with
the signature counted, the public-reply guard, who else is viewing, refused stale changes, legal
state moves only, the poster's history, images, the default reply target and times in the
browser's time zone."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from socialitsm.models import AgentProfile, Incident, IncidentNote, Post, Reply, ReplyTemplate
from socialitsm.roles import AGENT_GROUP, LEAD_GROUP

from ..factories import PASSWORD, AuthorFactory, IncidentFactory, PostFactory, UserFactory
from .test_browser import CHROMIUM_ARGS, incident_from_post

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

# A 1x1 PNG, served for the posts' image URLs so the browser never leaves the machine.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4bb0000000049454e44ae426082"
)


@pytest.fixture
def agent_user():
    user = UserFactory(username="agent.anna", first_name="Anna", last_name="Agent")
    user.groups.add(Group.objects.get(name=AGENT_GROUP))
    return user


@pytest.fixture
def chromium() -> Iterator[object]:
    """One Chromium per test, started after the test's database is set up: Playwright's sync API
    runs an event loop in this thread, and a database connection looked up while it runs is not
    the one the serialized rollback reloads the migrations' rows into."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; the ORM calls made by
    # the tests themselves are still plain synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS
            )
            try:
                yield browser
            finally:
                browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def browser(live_server, chromium) -> Iterator[Callable[..., object]]:
    """Opens pages, each in a context of its own (its own cookies; UTC unless a time zone is given)."""
    contexts = []

    def open_page(**options):
        options.setdefault("timezone_id", "UTC")
        context = chromium.new_context(viewport={"width": 1366, "height": 900}, base_url=live_server.url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()


def log_in(page, username: str, next_path: str) -> None:
    page.goto(next_path)
    page.wait_for_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(re.escape(next_path) + "$"))


def test_agent_adds_an_internal_note_that_shows_in_the_timeline(browser, agent_user, fake_network):
    from playwright.sync_api import expect

    incident, _ = incident_from_post()
    page = browser()
    log_in(page, "agent.anna", f"/incidents/{incident.number}/")

    page.get_by_role("textbox", name="Internal note").fill("Caller is on the Berlin site; <b>VPN pool B</b>.")
    page.get_by_role("button", name="Add note").click()

    expect(page.locator(".message-success")).to_have_text("Internal note added.")
    expect(page.locator("#notes .note-text")).to_have_text("Caller is on the Berlin site; <b>VPN pool B</b>.")
    expect(page.locator(".timeline .event-note_added")).to_contain_text("Internal note")
    expect(page.locator(".timeline .event-note_added .event-message")).to_have_text(
        "Caller is on the Berlin site; <b>VPN pool B</b>."
    )
    assert IncidentNote.objects.get().author == agent_user
    assert fake_network.sent == []


def test_lead_writes_a_canned_reply_and_an_agent_sends_it_signed(browser, agent_user, fake_network):
    from playwright.sync_api import expect

    lead = UserFactory(username="lead.lars", first_name="Lars", last_name="Lead")
    lead.groups.add(Group.objects.get(name=LEAD_GROUP))
    incident, _ = incident_from_post()

    lead_page = browser()
    log_in(lead_page, "lead.lars", "/reply-templates/")
    lead_page.get_by_role("link", name="New template").click()
    lead_page.get_by_label("Name").fill("On it")
    lead_page.get_by_label("Text").fill("Hi {nmae}")
    lead_page.get_by_role("button", name="Save").click()
    expect(lead_page.locator(".field-error")).to_contain_text("unknown variable {nmae}")
    lead_page.get_by_label("Text").fill("Hi {name}, we are on {incident} ({service}).")
    lead_page.get_by_role("button", name="Save").click()
    expect(lead_page.locator("table.reply-templates tbody tr")).to_have_count(1)
    expect(lead_page.locator("table.reply-templates")).to_contain_text("On it")

    page = browser()
    log_in(page, "agent.anna", "/profile/")
    page.get_by_label("Signature").fill("^AA")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".message-success")).to_have_text("Profile saved.")
    assert page.goto("/reply-templates/").status == 403

    page.goto(f"/incidents/{incident.number}/")
    page.get_by_label("Canned reply").select_option(label="On it")
    expected = f"Hi Mika Example, we are on {incident.number} (VPN)."
    expect(page.locator("#reply-text")).to_have_value(expected)
    # The signature is counted: "\n^AA" is four more characters.
    expect(page.locator("#reply-counter [data-count]")).to_have_text(str(len(expected) + 4))
    page.get_by_label("Direct message").check()
    expect(page.locator("#reply-counter [data-count]")).to_have_text(str(len(expected)))
    page.get_by_label("Public reply").check()
    page.get_by_role("button", name="Send").click()

    expect(page.locator(".message-success")).to_have_text("Public reply queued.")
    expect(page.locator("#replies .reply-text")).to_contain_text("(VPN).^AA")
    assert [m["text"] for m in fake_network.sent] == [f"{expected}\n^AA"]
    assert ReplyTemplate.objects.get().created_by == lead


def test_public_reply_with_an_email_address_needs_confirmation(browser, agent_user, fake_network):
    from playwright.sync_api import expect

    incident, _ = incident_from_post()
    page = browser()
    log_in(page, "agent.anna", f"/incidents/{incident.number}/")

    page.locator("#reply-text").fill("Write to vpn-team@example.com with your id.")
    page.get_by_role("button", name="Send").click()

    warning = page.locator("#reply-warning")
    expect(warning).to_contain_text("contains an e-mail address")
    expect(warning).to_contain_text("Send it as a direct message instead")
    expect(warning.locator("code")).to_have_text("vpn-team@example.com")
    expect(page.locator("#reply-text")).to_have_value("Write to vpn-team@example.com with your id.")
    assert Reply.objects.count() == 0

    page.get_by_label("Send it publicly anyway").check()
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".message-success")).to_have_text("Public reply queued.")
    assert [m["text"] for m in fake_network.sent] == ["Write to vpn-team@example.com with your id."]


def test_agents_see_each_other_and_a_stale_change_is_refused(browser, agent_user, settings):
    from playwright.sync_api import expect

    settings.SOCIALITSM_PRESENCE_POLL_SECONDS = 1
    ben = UserFactory(username="ben.agent", first_name="Ben", last_name="Berg")
    ben.groups.add(Group.objects.get(name=AGENT_GROUP))
    incident, _ = incident_from_post()
    url = f"/incidents/{incident.number}/"

    anna = browser()
    log_in(anna, "agent.anna", url)
    ben_page = browser()
    log_in(ben_page, "ben.agent", url)
    expect(ben_page.locator("#presence")).to_have_text(re.compile(r"AA\s+is viewing this incident"))
    expect(anna.locator("#presence")).to_have_text(re.compile(r"BB\s+is viewing this incident"))
    expect(anna.locator("#presence abbr")).to_have_attribute("title", "Ben Berg")

    # Only the moves the life cycle allows from "New".
    options = anna.locator("#id_state option")
    expect(options).to_have_text(["New", "In progress", "On hold", "Resolved", "Canceled"])

    ben_page.locator("#id_state").select_option("on_hold")
    ben_page.get_by_role("button", name="Save changes").click()
    expect(ben_page.locator(".message-success")).to_contain_text("updated: state")

    anna.locator("#id_state").select_option("resolved")
    anna.get_by_role("button", name="Save changes").click()
    expect(anna.locator(".message-error")).to_contain_text(
        "was changed by someone else since you loaded it: state is now On hold (changed by Ben Berg)"
    )
    incident.refresh_from_db()
    assert (incident.state, incident.version) == ("on_hold", 2)
    # A field nobody else touched still saves from a page that has gone stale.
    expect(anna.locator("#id_state option")).to_have_text(["On hold", "In progress", "Resolved", "Canceled"])
    ben_page.reload()
    ben_page.locator("#id_impact").select_option("1")
    ben_page.get_by_role("button", name="Save changes").click()
    expect(ben_page.locator(".message-success")).to_contain_text("updated: impact")
    anna.locator("#id_urgency").select_option("1")
    anna.get_by_role("button", name="Save changes").click()
    expect(anna.locator(".message-success")).to_have_text(f"{incident.number} updated: urgency.")
    incident.refresh_from_db()
    assert (incident.state, incident.impact, incident.urgency, incident.version) == ("on_hold", 1, 1, 4)


def test_poster_history_images_and_the_default_reply_target(browser, agent_user):
    from playwright.sync_api import expect

    incident, first = incident_from_post(
        details=[
            {"kind": "media", "text": "", "url": "https://media.example.com/screenshot.png"},
            {"kind": "alt_text", "text": "VPN error dialog", "url": "http://media.example.com/plain.png"},
            {"kind": "media", "text": "", "url": "https://media.example.com/clip.mp4"},
            {"kind": "link", "text": "status page", "url": "https://status.example.com/vpn"},
        ],
        is_complaint=True,
    )
    now = timezone.now()
    PostFactory(
        channel=first.channel,
        author=first.author,
        incident=incident,
        triage_state=Post.Triage.INCIDENT,
        text="fixed now, thanks!",
        is_complaint=False,
        posted_at=now + timedelta(minutes=5),
    )
    older = IncidentFactory(number="INC0000900", author=first.author, short_description="Printer jam on 3rd floor")
    PostFactory(channel=first.channel, author=AuthorFactory(handle="@someone-else"), incident=older)
    fetched: list[str] = []

    page = browser()
    page.route(
        "https://media.example.com/**",
        lambda route: (fetched.append(route.request.url), route.fulfill(body=PNG, content_type="image/png")),
    )
    log_in(page, "agent.anna", f"/incidents/{incident.number}/")

    images = page.locator(".post-media img")
    expect(images).to_have_count(1)
    expect(images).to_have_attribute("src", "https://media.example.com/screenshot.png")
    expect(images).to_have_attribute("referrerpolicy", "no-referrer")
    page.wait_for_function("document.querySelector('.post-media img').naturalWidth === 1")
    assert fetched == ["https://media.example.com/screenshot.png"]
    link = page.locator(".post-details a", has_text="open").last
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")

    history = page.locator("#poster-history")
    expect(history.locator("[data-poster-incident]")).to_have_count(1)
    expect(history).to_contain_text("INC0000900")
    expect(history).to_contain_text("Printer jam on 3rd floor")

    chosen = page.locator("#reply-post option:checked")
    expect(chosen).to_contain_text("VPN down again")


def test_times_show_in_the_browsers_time_zone_and_the_profile_keeps_it(browser, agent_user):
    from playwright.sync_api import expect

    incident, _ = incident_from_post()
    Incident.objects.filter(pk=incident.pk).update(opened_at=datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    page = browser(timezone_id="America/New_York")
    log_in(page, "agent.anna", f"/incidents/{incident.number}/")

    # The page gives the browser's zone to the profile and reloads in it.
    expect(page.locator(".facts time").first).to_have_text("2026-07-01 08:00 EDT")
    assert AgentProfile.objects.get(user=agent_user).time_zone == "America/New_York"

    page.goto("/profile/")
    expect(page.get_by_label("Time zone")).to_have_value("America/New_York")
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_role("button", name="Save").click()
    page.goto(f"/incidents/{incident.number}/")
    expect(page.locator(".facts time").first).to_have_text("2026-07-01 14:00 CEST")
