"""Channel health and chat webhooks in a real browser, as a lead uses them."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group

from socialitsm.models import ChannelAlert, ChatWebhook

from ..factories import ChannelFactory
from .test_browser import page  # noqa: F401 - the Playwright page fixture
from .test_browser_sla import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"


def test_a_lead_sees_listening_problems_and_adds_a_chat_webhook(page, lead):  # noqa: F811
    from playwright.sync_api import expect

    channel = ChannelFactory(name="Support on X", network="x")
    ChannelAlert.objects.create(channel=channel, kind="quiet", message="no post for 600 minutes")
    group = Group.objects.create(name="Network")
    lead.groups.add(group)

    log_in(page, lead.username, "/")
    page.wait_for_url(re.compile(r"/$"))
    page.get_by_role("link", name="Channel health").click()
    row = page.locator(f'tr[data-channel="{channel.slug}"]')
    expect(row.locator('[data-alert="quiet"]')).to_contain_text("no post for 600 minutes")

    page.get_by_role("link", name="Chat", exact=True).click()
    page.locator("#id_group").select_option(label="Network")
    page.locator("#id_name").fill("network-ops")
    page.locator("#id_kind").select_option("slack")
    page.locator("#id_url").fill(SLACK_URL)
    page.get_by_label("SLA breached").check()
    page.get_by_label("Channel gone quiet").check()
    page.get_by_role("button", name="Add").click()

    expect(page.locator("#chat-webhooks")).to_contain_text("network-ops")
    assert SLACK_URL not in page.content()
    webhook = ChatWebhook.objects.get()
    assert (webhook.group_id, sorted(webhook.events)) == (group.pk, ["channel_quiet", "sla_breach"])
