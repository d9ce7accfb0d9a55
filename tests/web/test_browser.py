from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction

from socialitsm.models import Incident, Post, Reply, Service
from socialitsm.roles import AGENT_GROUP
from socialitsm.services.incidents import incident_open_from_post
from socialitsm.services.replies import reply_send

from ..factories import (
    PASSWORD,
    ChannelFactory,
    PostFactory,
    ReplyFactory,
    UserFactory,
    WatchRuleFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOT = Path(settings.BASE_DIR) / "var" / "test" / "ticket.png"


@pytest.fixture
def page(live_server, monkeypatch) -> Iterator:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; the ORM calls made by
    # the test itself are still plain synchronous calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=live_server.url)
        context.set_default_timeout(10_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


@pytest.fixture
def agent_user():
    user = UserFactory(username="agent.anna", first_name="Anna", last_name="Agent")
    user.groups.add(Group.objects.get(name=AGENT_GROUP))
    return user


def incident_from_post(**post_fields) -> tuple[Incident, Post]:
    channel = ChannelFactory(name="IT Support", slug="it-support")
    post = PostFactory(
        rule=WatchRuleFactory(channel=channel),
        text="VPN down again, third time this week.\nCan't reach the file shares <b>at all</b>.",
        url="https://social.example.com/@mika/1",
        author__handle="@mika",
        author__name="Mika Example",
        complaint_score=0.91,
        urgency_hint=2,
        reasons=["'down' outage", "service vpn", "repeat: third time"],
        **post_fields,
    )
    with transaction.atomic():
        incident = incident_open_from_post(
            post=post, rule=post.rule, service=Service.objects.get(slug="vpn"), urgency=2
        )
    return incident, post


def log_in(page, next_path: str = "/") -> None:
    page.goto(next_path)
    page.wait_for_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", "agent.anna")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_agent_answers_a_poster_publicly_and_by_direct_message(page, agent_user, fake_network):
    from playwright.sync_api import expect

    incident, post = incident_from_post()
    log_in(page)

    expect(page.get_by_role("heading", name="Open incidents")).to_be_visible()
    row = page.locator("table.queue tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("VPN down again")
    page.get_by_role("link", name=incident.number).click()

    expect(page.locator("h1")).to_contain_text(incident.number)
    expect(page.locator(".post-text")).to_contain_text("<b>at all</b>")
    expect(page.get_by_label("Public reply")).to_be_checked()
    text = page.locator("#reply-text")
    count = page.locator("#reply-counter [data-count]")
    expect(page.locator("#reply-counter")).to_have_text("0 / 500 characters on Replay")
    text.press_sequentially("Sorry")
    expect(count).to_have_text("5")
    text.press_sequentially(", Mika! We are on it.")
    expect(count).to_have_text("26")
    page.get_by_role("button", name="Send").click()

    expect(page.locator(".message-success")).to_have_text("Public reply queued.")
    expect(page.locator("#replies .status-sent")).to_have_count(1)
    expect(count).to_have_text("0")

    page.get_by_label("Direct message").check()
    text.fill("Could you send us your employee id?")
    expect(count).to_have_text("35")
    page.get_by_role("button", name="Send").click()

    expect(page.locator(".message-success")).to_have_text("Direct message queued.")
    sent = page.locator("#replies .status-sent")
    expect(sent).to_have_count(2)
    expect(page.locator("#replies .reply")).to_have_text(
        [
            re.compile(r"Public reply.*Sorry, Mika! We are on it\.", re.DOTALL),
            re.compile(r"Direct message.*employee id\?", re.DOTALL),
        ]
    )
    assert [(m["to"], m["text"], m["visibility"]) for m in fake_network.sent] == [
        (post.external_id, "Sorry, Mika! We are on it.", "public"),
        (post.external_id, "Could you send us your employee id?", "direct"),
    ]
    assert list(Reply.objects.order_by("id").values_list("status", "visibility")) == [
        ("sent", "public"),
        ("sent", "direct"),
    ]

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_replies_update_in_place_and_stop_polling(page, agent_user):
    from playwright.sync_api import expect

    incident, post = incident_from_post()
    reply = ReplyFactory(incident=incident, post=post, visibility="public", text="On it!", agent=agent_user)
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if request.url.endswith("/replies/") else None)
    log_in(page, f"/incidents/{incident.number}/")

    expect(page.locator("#replies .status-queued")).to_have_count(1)
    expect(page.locator("#replies")).to_have_attribute("hx-trigger", "every 2s")

    reply_send(reply=reply)
    expect(page.locator("#replies .status-sent")).to_have_count(1)
    expect(page.locator("#replies")).not_to_have_attribute("hx-trigger", "every 2s")
    seen = len(polls)
    assert seen >= 1
    page.wait_for_timeout(2500)
    assert len(polls) == seen


def test_agent_retries_a_waiting_reply_and_cancels_a_failed_one(page, agent_user, fake_network):
    from django.utils import timezone
    from playwright.sync_api import expect

    incident, post = incident_from_post()
    waiting = ReplyFactory(
        incident=incident,
        post=post,
        text="On it!",
        agent=agent_user,
        attempts=3,
        error="mastodon.example is failing (HTTP 503)",
        retry_after=timezone.now() + timedelta(minutes=5),
        retry_until=timezone.now() + timedelta(hours=20),
    )
    failed = ReplyFactory(
        incident=incident, post=post, text="Fixed now.", agent=agent_user, status="failed", error="blocked"
    )
    log_in(page, f"/incidents/{incident.number}/")

    card = page.locator(f"#reply-{waiting.pk}")
    expect(card.locator(".reply-retry")).to_contain_text("Will retry at")
    expect(card.locator(".reply-error")).to_have_text("Last attempt: mastodon.example is failing (HTTP 503)")
    expect(page.locator("#replies")).to_have_attribute("hx-trigger", "every 15s")
    card.get_by_role("button", name="Retry now").click()
    expect(page.locator(f"#reply-{waiting.pk} .status-sent")).to_have_count(1)

    page.locator(f"#reply-{failed.pk}").get_by_role("button", name="Cancel").click()
    expect(page.locator(f"#reply-{failed.pk} .status-canceled")).to_have_count(1)
    expect(page.locator(f"#reply-{failed.pk} button")).to_have_count(0)
    assert [m["text"] for m in fake_network.sent] == ["On it!"]
    assert list(Reply.objects.order_by("id").values_list("status", flat=True)) == ["sent", "canceled"]


def test_reply_box_counts_graphemes_and_explains_a_refused_public_reply(page, agent_user, fake_network):
    from playwright.sync_api import expect

    fake_network.max_reply_chars = 300
    fake_network.reply_unit = "graphemes"
    fake_network.refusals["public"] = "the author neither mentioned nor quoted us"
    incident, _ = incident_from_post()
    log_in(page, f"/incidents/{incident.number}/")

    expect(page.locator("#reply-counter")).to_have_text("0 / 300 graphemes on Replay")
    expect(page.get_by_label("Direct message")).to_be_checked()
    expect(page.locator("#reply-refusal")).to_have_text("No public reply: the author neither mentioned nor quoted us")
    # A family emoji and a flag are one grapheme each, though 7 and 2 code points.
    page.locator("#reply-text").fill("👨‍👩‍👧‍👦 🇫🇷 ok")
    expect(page.locator("#reply-counter [data-count]")).to_have_text("6")
    assert page.locator("#reply-text").get_attribute("maxlength") is None


def test_reply_box_says_who_will_see_the_reply_and_the_post_shows_its_details(page, agent_user, fake_network):
    from playwright.sync_api import expect

    fake_network.audiences = {
        "public": "Followers only: @mika and our account's followers see it.",
        "direct": "Direct message: only @mika sees it.",
    }
    details = [
        {"kind": "quote", "text": "VPN <i>down</i> for everyone", "url": "https://social.example.com/@ops/7"},
        {"kind": "poll", "text": "Down for me too", "url": ""},
        {"kind": "poll", "text": "Works here", "url": ""},
    ]
    incident, post = incident_from_post(details=details)
    log_in(page, f"/incidents/{incident.number}/")

    shown = page.locator(f"#post-{post.pk} .post-details li")
    expect(shown).to_have_text(["Quoted post: VPN <i>down</i> for everyone open", "Poll: Down for me too / Works here"])
    audience = page.locator("#reply-audience")
    expect(audience).to_have_text("Followers only: @mika and our account's followers see it.")
    page.get_by_label("Direct message").check()
    expect(audience).to_have_text("Direct message: only @mika sees it.")
    page.get_by_label("Public reply").check()
    expect(audience).to_have_text("Followers only: @mika and our account's followers see it.")


def test_reply_box_counts_x_weighted_characters(page, agent_user, fake_network):
    from playwright.sync_api import expect

    fake_network.max_reply_chars = 280
    fake_network.reply_unit = "weighted characters"
    incident, _ = incident_from_post()
    log_in(page, f"/incidents/{incident.number}/")

    expect(page.locator("#reply-counter")).to_have_text("0 / 280 weighted characters on Replay")
    # A link weighs 23 whatever its length; Latin letters 1; CJK ideographs 2.
    page.locator("#reply-text").fill("https://status.example.com/incidents/2026/11/26 héllo 日本")
    expect(page.locator("#reply-counter [data-count]")).to_have_text(str(23 + len(" héllo ") + 4))


def test_agent_labels_a_post_from_the_incident_page(page, agent_user):
    from playwright.sync_api import expect

    incident, post = incident_from_post()
    log_in(page, f"/incidents/{incident.number}/")

    verdict = page.locator(f"#post-{post.pk} .label-form")
    expect(verdict).to_contain_text("Is this a complaint?")
    verdict.get_by_role("button", name="Not a complaint").click()

    expect(page.locator(".message-success")).to_have_text("Post labelled not a complaint; retraining learns from it.")
    expect(verdict).to_contain_text("Labelled not a complaint by agent.anna")
    expect(verdict.get_by_role("button", name="Not a complaint")).to_have_attribute("aria-pressed", "true")
    post.refresh_from_db()
    assert (post.label, post.labelled_by) == ("not_complaint", agent_user)
