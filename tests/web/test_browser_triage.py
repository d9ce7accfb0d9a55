"""Triage in a real browser: dismissing a post that is no complaint, promoting one with the
proposed service and a chosen priority."""

from __future__ import annotations

import re

import pytest

from socialitsm.models import Post, Service

from ..factories import PostFactory
from .test_browser import agent_user, log_in, page  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_agent_dismisses_one_post_and_promotes_another(page, agent_user):  # noqa: F811
    from playwright.sync_api import expect

    vpn = Service.objects.get(slug="vpn")
    lunch = PostFactory(text="Anyone up for lunch?", triage_state=Post.Triage.QUEUED, is_complaint=False)
    slow = PostFactory(
        text="VPN is slow since this morning",
        triage_state=Post.Triage.QUEUED,
        is_complaint=False,
        urgency_hint=3,
        detected_service=vpn,
    )

    log_in(page, "/posts/")
    page.wait_for_url(re.compile(r"/posts/$"))
    expect(page.locator(".triage-item")).to_have_count(2)

    page.locator(f"#triage-{lunch.pk}").get_by_role("button", name="Not a complaint").click()
    expect(page.get_by_text("It left the list: find it under Dismissed.")).to_be_visible()
    expect(page.locator(".triage-item")).to_have_count(1)
    page.get_by_role("link", name=re.compile(r"^Dismissed")).click()
    expect(page.locator(f"#triage-{lunch.pk}")).to_be_visible()
    expect(page.locator(".triage-item")).to_have_count(1)

    page.get_by_role("link", name=re.compile(r"^To triage")).click()
    item = page.locator(f"#triage-{slow.pk}")
    expect(item.get_by_label("Service")).to_have_value(str(vpn.pk))
    expect(item.get_by_label("Priority")).to_have_value("4")
    item.get_by_label("Priority").select_option("2")
    item.get_by_role("button", name="Promote to incident").click()

    page.wait_for_url(re.compile(r"/incidents/INC\d+/$"))
    slow.refresh_from_db()
    assert (slow.incident.service, slow.incident.priority) == (vpn, 2)
    expect(page.get_by_text(f"Post promoted to {slow.incident.number} (P2).")).to_be_visible()
