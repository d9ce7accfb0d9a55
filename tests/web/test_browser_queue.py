"""The queue in Chromium: layout without sideways scrolling, search, views and saved views, live
rows, bulk actions and keyboard shortcuts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from socialitsm.models import Incident, SavedView
from socialitsm.services.incidents import incident_assign

from ..factories import AuthorFactory, ChannelFactory, IncidentFactory, PostFactory
from .test_browser import agent_user, incident_from_post, log_in, page  # noqa: F401  (fixtures and steps)

SCREENSHOTS = Path(settings.BASE_DIR) / "test-results"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def busy_queue(count: int = 60) -> list[Incident]:
    """Incidents with the longest texts a row can carry, to see that nothing pushes the page wide."""
    channel = ChannelFactory(name="Customer care on Mastodon (EU region, second account)", slug="care-eu")
    group = Group.objects.create(name="Network and remote access, second line")
    made = []
    for n in range(count):
        author = AuthorFactory(
            handle=f"@someone_with_a_really_long_handle_{n}@mastodon.example.com",
            name=f"Maximiliane Alexandra von Habsburg-Lothringen {n}",
        )
        made.append(
            IncidentFactory(
                number=f"INC{1000 + n:07d}",
                short_description=(
                    f"VPN gateway drops every connection after exactly five minutes since Monday ({n}) " * 2
                )[:160],
                author=author,
                channel=channel,
                assignment_group=group,
                impact=1 + n % 3,
                urgency=1 + (n // 3) % 3,
            )
        )
    return made


def test_queue_fits_the_window_without_scrolling_sideways(page, agent_user):  # noqa: F811
    from playwright.sync_api import expect

    busy_queue()
    log_in(page)
    for width in (1280, 1440, 1920):
        page.set_viewport_size({"width": width, "height": 900})
        page.reload()
        expect(page.locator("#queue-rows tr")).to_have_count(50)
        sizes = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
            " document.querySelector('.table-wrap').scrollWidth, document.querySelector('.table-wrap').clientWidth]"
        )
        page_scroll, page_client, table_scroll, table_client = sizes
        assert page_scroll <= page_client, (width, sizes)
        assert table_scroll <= table_client, (width, sizes)
        # Every column is on screen: the last one ends inside the window.
        breach = page.locator("table.queue thead th").last.bounding_box()
        assert breach is not None and breach["x"] + breach["width"] <= width
        if width in (1280, 1920):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"queue-{width}.png"))


def test_search_box_finds_post_text_and_posters(page, agent_user):  # noqa: F811
    from playwright.sync_api import expect

    incident, _ = incident_from_post()
    other = IncidentFactory(short_description="Printer jammed")
    log_in(page)
    expect(page.locator("#queue-rows tr[data-number]")).to_have_count(2)
    # The rows are drawn before the deferred shortcuts script runs; keys wait for the page's load.
    page.wait_for_load_state("load")
    page.keyboard.press("/")
    expect(page.locator("#queue-search")).to_be_focused()
    page.keyboard.type("file shares")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=file\+shares"))
    expect(page.locator("#queue-rows tr[data-number]")).to_have_count(1)
    expect(page.locator("#queue-rows")).to_contain_text(incident.number)
    page.fill("#queue-search", "mika example")
    page.keyboard.press("Enter")
    expect(page.locator("#queue-rows")).to_contain_text("Mika Example")
    expect(page.locator("#queue-rows")).not_to_contain_text(other.number)


def test_views_and_a_saved_view(page, agent_user):  # noqa: F811
    from playwright.sync_api import expect

    IncidentFactory(short_description="Still open")
    IncidentFactory(short_description="Fixed yesterday", state=Incident.State.RESOLVED)
    log_in(page)
    expect(page.locator("#queue-rows")).not_to_contain_text("Fixed yesterday")
    page.locator("#queue-views").get_by_role("link", name=re.compile("Resolved and closed")).click()
    expect(page.get_by_role("heading", name="Resolved and closed")).to_be_visible()
    expect(page.locator("#queue-rows tr[data-number]")).to_have_count(1)
    expect(page.locator("#queue-rows")).to_contain_text("Fixed yesterday")

    page.get_by_label("Name of the view").fill("Done lately")
    page.get_by_role("button", name="Save view").click()
    expect(page.locator(".message-success")).to_have_text("View “Done lately” saved.")
    assert SavedView.objects.get().query == {"view": "done"}

    page.goto("/")
    expect(page.locator("#queue-rows")).to_contain_text("Still open")
    page.locator(".saved-list").get_by_role("link", name="Done lately").click()
    expect(page.locator("#queue-rows")).to_contain_text("Fixed yesterday")
    expect(page.locator("#queue-rows")).not_to_contain_text("Still open")

    page.get_by_role("button", name="Delete view Done lately").click()
    expect(page.locator(".message-success")).to_have_text("View “Done lately” deleted.")
    assert not SavedView.objects.exists()


def test_new_incidents_and_assignments_appear_without_a_reload(page, agent_user, settings):  # noqa: F811
    from playwright.sync_api import expect

    settings.SOCIALITSM_QUEUE_POLL_SECONDS = 1
    first = IncidentFactory(short_description="Printer jammed")
    log_in(page)
    page.evaluate("window.notReloaded = true")
    expect(page.locator("#queue-rows tr[data-number]")).to_have_count(1)
    page.get_by_label(f"Select {first.number}").check()

    incident, _ = incident_from_post()
    expect(page.locator("#queue-rows tr[data-number]")).to_have_count(2, timeout=5000)
    expect(page.locator("#queue-rows")).to_contain_text(incident.number)
    incident_assign(incident=first, actor=agent_user, assignee=agent_user)
    row = page.locator(f"#queue-rows tr[data-number='{first.number}']")
    expect(row).to_contain_text("Anna Agent", timeout=5000)
    expect(page.locator("#queue-views a[data-view='mine'] .count")).to_have_text("1")
    # The same page all along, and what the agent ticked is still ticked.
    assert page.evaluate("window.notReloaded") is True
    expect(page.get_by_label(f"Select {first.number}")).to_be_checked()


def test_bulk_actions_report_each_incident(page, agent_user):  # noqa: F811
    from playwright.sync_api import expect

    open_ones = [IncidentFactory(short_description=f"Open {n}") for n in range(3)]
    closed = IncidentFactory(short_description="Closed one", state=Incident.State.CLOSED)
    log_in(page, "/?view=all")
    page.get_by_label("Select all on this page").check()
    page.locator("#selection select[name=state]").select_option("on_hold")
    page.get_by_role("button", name="Set state").click()
    expect(page.locator(".message-success")).to_have_text("3 incidents changed.")
    expect(page.locator(".message-error")).to_have_text(
        f"{closed.number}: an incident cannot move from Closed to On hold"
    )
    assert set(Incident.objects.filter(state=Incident.State.ON_HOLD).values_list("number", flat=True)) == {
        i.number for i in open_ones
    }
    assert "view=all" in page.url

    page.get_by_label(f"Select {open_ones[0].number}").check()
    page.get_by_label(f"Select {open_ones[1].number}").check()
    page.get_by_label("Assign to").select_option("me")
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(page.locator(".message-success")).to_have_text("2 incidents changed.")
    assert set(Incident.objects.filter(assignee=agent_user).values_list("number", flat=True)) == {
        open_ones[0].number,
        open_ones[1].number,
    }

    # The same in triage.
    posts = [PostFactory(triage_state="queued", text=f"Thanks, all good now {n}") for n in range(2)]
    page.goto("/posts/")
    page.get_by_label("Select all posts on this page").check()
    page.get_by_role("button", name="Label: not a complaint").click()
    expect(page.locator(".message-success")).to_have_text("2 posts changed.")
    for post in posts:
        post.refresh_from_db()
        assert post.label == "not_complaint"


def test_keyboard_shortcuts(page, agent_user):  # noqa: F811
    from playwright.sync_api import expect

    incident, _ = incident_from_post()
    second = IncidentFactory(short_description="Printer jammed", impact=3, urgency=3)
    log_in(page)
    rows = page.locator("#queue-rows tr[data-number]")
    expect(rows).to_have_count(2)
    page.wait_for_load_state("load")

    page.keyboard.press("?")
    expect(page.locator("#shortcuts-help")).to_be_visible()
    expect(page.locator("#shortcuts-help")).to_contain_text("Assign the incident to me")
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts-help")).to_be_hidden()

    page.keyboard.press("j")
    expect(rows.nth(0)).to_have_class(re.compile("is-current"))
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(re.compile("is-current"))
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_class(re.compile("is-current"))
    page.keyboard.press("x")
    expect(page.get_by_label(f"Select {incident.number}")).to_be_checked()

    # Keys typed into a field are text, not shortcuts.
    page.keyboard.press("/")
    page.keyboard.type("jk")
    expect(page.locator("#queue-search")).to_have_value("jk")
    expect(rows.nth(0)).to_have_class(re.compile("is-current"))
    page.keyboard.press("Escape")

    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(re.compile("is-current"))
    page.keyboard.press("a")
    expect(page.locator(".message-success")).to_have_text("1 incident changed.")
    second.refresh_from_db()
    assert second.assignee == agent_user

    page.keyboard.press("j")
    page.keyboard.press("o")
    page.wait_for_url(re.compile(rf"/incidents/{incident.number}/$"))
    page.keyboard.press("r")
    expect(page.locator("#reply-text")).to_be_focused()
