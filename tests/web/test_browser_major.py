from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from socialitsm.models import Incident, Post
from socialitsm.services.routing import posts_process

from ..factories import AuthorFactory, PostFactory, WatchRuleFactory
from .test_browser import agent_user, log_in, page  # noqa: F401  (fixtures and the login step)

SCREENSHOT = Path(settings.BASE_DIR) / "var" / "test" / "major.png"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _routed(author, text: str) -> Incident:
    post = PostFactory(author=author, text=text, rule=WatchRuleFactory())
    posts_process(post_ids=[post.pk])
    return Incident.objects.get(posts=post)


def test_agent_links_incidents_to_a_new_major_incident_and_unlinks_one(page, agent_user):  # noqa: F811
    from playwright.sync_api import expect

    first = _routed(AuthorFactory(handle="@ana"), "VPN down again, cannot connect")
    second = _routed(AuthorFactory(handle="@bo"), "VPN gateway is down for me too")
    log_in(page)
    expect(page.get_by_role("heading", name="Open incidents")).to_be_visible()
    page.get_by_label(f"Select {first.number}").check()
    page.get_by_label(f"Select {second.number}").check()
    page.get_by_label("Major incident", exact=True).select_option("new")
    page.get_by_label("Title of a new major incident").fill("VPN gateway down")
    page.get_by_role("button", name="Link to a major incident").click()

    major = Incident.objects.get(is_major=True)
    page.wait_for_url(re.compile(rf"/incidents/{major.number}/$"))
    expect(page.locator("h1")).to_contain_text("VPN gateway down")
    rows = page.locator("table.affected tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("@ana")
    expect(page.locator("#spike-growth")).to_be_visible()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.get_by_role("button", name=f"Unlink {first.number}").click()
    expect(page.get_by_role("status")).to_contain_text(f"{first.number} is no longer part of {major.number}")
    expect(page.locator("table.affected tbody tr")).to_have_count(1)
    first.refresh_from_db()
    assert first.parent is None


def test_agent_merges_a_duplicate_and_undoes_it(page, agent_user):  # noqa: F811
    from playwright.sync_api import expect

    author = AuthorFactory(handle="@mika")
    oldest = _routed(author, "VPN down again, third time this week")
    duplicate = _routed(author, "VPN still down, anyone there?")
    log_in(page)
    page.get_by_label(f"Select {oldest.number}").check()
    page.get_by_label(f"Select {duplicate.number}").check()
    page.get_by_role("button", name="Merge into the oldest").click()

    page.wait_for_url(re.compile(rf"/incidents/{oldest.number}/$"))
    expect(page.get_by_role("status")).to_contain_text(f"{duplicate.number} merged into {oldest.number}")
    expect(page.locator(".post-text")).to_have_count(2)
    assert Post.objects.filter(incident=oldest).count() == 2

    page.get_by_role("button", name=f"Unmerge {duplicate.number}").click()
    expect(page.get_by_role("status")).to_contain_text(f"The merge of {duplicate.number} is undone")
    duplicate.refresh_from_db()
    assert (duplicate.state, duplicate.merged_into_id) == ("new", None)
    assert Post.objects.filter(incident=oldest).count() == 1
