"""Notifications in a real browser: the bell counts, the list opens the incident, choices are kept."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from socialitsm.models import Notification, NotificationPreference
from socialitsm.roles import LEAD_GROUP
from socialitsm.services.incidents import incident_assign

from ..factories import UserFactory
from .test_browser import agent_user, incident_from_post, log_in, page  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_agent_follows_the_bell_chooses_what_to_be_told_and_clears_it(page, agent_user):  # noqa: F811
    from playwright.sync_api import expect

    lead = UserFactory(username="lead.lars")
    lead.groups.add(Group.objects.get(name=LEAD_GROUP))
    incident, _ = incident_from_post()
    # Committed (transactional test): the event is announced and the notification made.
    incident_assign(incident=incident, actor=lead, assignee=agent_user)
    assert [m.subject for m in mail.outbox] == [f"{incident.number} assigned to you by lead.lars"]

    log_in(page)
    page.wait_for_url(re.compile(r"/$"))
    bell = page.locator("#notification-bell")
    expect(bell).to_have_attribute("aria-label", "Notifications, 1 unread")
    expect(bell.locator(".count")).to_have_text("1")

    bell.click()
    item = page.locator("#notification-list li.unread")
    expect(item).to_have_count(1)
    expect(item.locator(".title")).to_have_text(f"{incident.number} assigned to you by lead.lars")
    item.get_by_role("button", name=f"Open {incident.number}").click()
    page.wait_for_url(re.compile(rf"/incidents/{incident.number}/$"))
    expect(page.locator("#notification-bell")).to_have_attribute("aria-label", "Notifications, 0 unread")
    expect(page.locator("#notification-bell .count")).to_have_count(0)

    page.goto("/notifications/preferences/")
    page.get_by_label("Assigned to me in the app").uncheck()
    expect(page.get_by_label("Assigned to me by e-mail")).to_be_checked()
    page.get_by_label("SLA warning on my or my group's incidents by e-mail").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your notification choices are saved.")).to_be_visible()
    expect(page.get_by_label("Assigned to me in the app")).not_to_be_checked()

    chosen = {p.kind: (p.in_app, p.email) for p in NotificationPreference.objects.filter(user=agent_user)}
    assert chosen["assigned"] == (False, True)
    assert chosen["sla_warning"] == (True, True)
    assert Notification.objects.get(user=agent_user).read_at is not None

    for key in ("a", "b"):
        Notification.objects.create(user=agent_user, kind="major_opened", key=key, title=f"Major incident {key}")
    page.goto("/notifications/")
    expect(page.locator("#notification-bell .count")).to_have_text("2")
    page.get_by_role("button", name="Mark all read").click()
    expect(page.get_by_text("2 notifications marked read.")).to_be_visible()
    expect(page.locator("#notification-list li.unread")).to_have_count(0)
    expect(page.locator("#notification-bell .count")).to_have_count(0)
