from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from socialitsm.models import ChannelAlert, ChatWebhook
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"


def test_channel_health_is_for_leads(client, agent, lead):
    channel = ChannelFactory(name="<b>Support</b>")
    ChannelAlert.objects.create(channel=channel, kind="quiet", message="no post for 600 minutes")
    client.force_login(agent)
    assert client.get("/channels/health/").status_code == 403
    client.force_login(lead)
    response = client.get("/channels/health/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-alert="quiet"' in body
    assert "no post for 600 minutes" in body
    assert "&lt;b&gt;Support&lt;/b&gt;" in body


def test_lead_adds_and_removes_a_webhook_for_their_group(client, lead, public_dns):
    mine, other = Group.objects.create(name="Network"), Group.objects.create(name="Desk")
    lead.groups.add(mine)
    client.force_login(lead)
    refused = client.post(
        "/chat/", {"group": other.pk, "name": "x", "kind": "slack", "url": SLACK_URL, "events": ["sla_breach"]}
    )
    assert refused.status_code == 400
    response = client.post(
        "/chat/", {"group": mine.pk, "name": "ops", "kind": "slack", "url": SLACK_URL, "events": ["sla_breach"]}
    )
    assert response.status_code == 302
    webhook = ChatWebhook.objects.get()
    assert (webhook.group, webhook.events, webhook.credentials) == (mine, ["sla_breach"], {"url": SLACK_URL})
    page = client.get("/chat/").content.decode()
    assert "ops" in page and SLACK_URL not in page
    other_hook = ChatWebhook.objects.create(group=other, name="theirs", kind="slack", credentials={"url": SLACK_URL})
    assert client.post(f"/chat/{other_hook.pk}/delete/").status_code == 404
    assert client.post(f"/chat/{webhook.pk}/delete/").status_code == 302
    assert list(ChatWebhook.objects.values_list("name", flat=True)) == ["theirs"]


def test_bad_webhook_url_is_refused(client, lead):
    group = Group.objects.create(name="Network")
    lead.groups.add(group)
    client.force_login(lead)
    response = client.post(
        "/chat/",
        {"group": group.pk, "name": "x", "kind": "teams", "url": "https://example.com/hook", "events": ["sla_breach"]},
    )
    assert response.status_code == 400
    assert "not a Microsoft Teams incoming webhook URL" in response.content.decode()
    assert not ChatWebhook.objects.exists()


def test_chat_page_is_for_leads(client, agent):
    client.force_login(agent)
    assert client.get("/chat/").status_code == 403


def test_admin_lists_webhooks_without_their_url(admin_client):
    group = Group.objects.create(name="Network")
    webhook = ChatWebhook.objects.create(group=group, name="ops", kind="slack", credentials={"url": SLACK_URL})
    page = admin_client.get(f"/admin/socialitsm/chatwebhook/{webhook.pk}/change/")
    assert page.status_code == 200
    assert SLACK_URL not in page.content.decode()
    assert admin_client.get("/admin/socialitsm/chatwebhook/add/").status_code == 403
    assert admin_client.get("/admin/socialitsm/channelalert/").status_code == 200
