from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import responses
import time_machine
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from socialitsm.models import ChannelAlert, ChatMessage, ChatWebhook, IncidentEvent
from socialitsm.services.chat import chat_message_send, chat_webhook_create, incident_event_announce
from socialitsm.signals import channel_alert, incident_event
from tests.factories import ChannelFactory, IncidentFactory

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"
TEAMS_URL = "https://prod-01.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=x"

pytestmark = pytest.mark.django_db


@pytest.fixture
def network_group(db):
    return Group.objects.create(name="Network")


@pytest.fixture
def hooks(network_group, public_dns):
    events = list(ChatWebhook.Event.values)
    return (
        chat_webhook_create(group=network_group, name="ops", kind="slack", url=SLACK_URL, events=events, actor=None),
        chat_webhook_create(group=network_group, name="team", kind="teams", url=TEAMS_URL, events=events, actor=None),
    )


def _sent(http_mock) -> dict[str, dict]:
    return {call.request.url.split("/")[2]: json.loads(call.request.body) for call in http_mock.calls}


@time_machine.travel(NOW, tick=False)
def test_major_incident_opened_posts_to_slack_and_teams(
    hooks, network_group, http_mock, settings, django_capture_on_commit_callbacks
):
    settings.SOCIALITSM_SITE_URL = "https://social.example.com"
    http_mock.add(responses.POST, SLACK_URL, body="ok")
    http_mock.add(responses.POST, TEAMS_URL.split("?")[0], status=202)
    incident = IncidentFactory(is_major=True, assignment_group=network_group, short_description="VPN <down> for *all*")
    event = IncidentEvent.objects.create(incident=incident, kind=IncidentEvent.Kind.OPENED)
    with django_capture_on_commit_callbacks(execute=True):
        incident_event.send(sender=IncidentEvent, event=event)
    sent = _sent(http_mock)
    link = f"https://social.example.com/incidents/{incident.number}/"
    # Slack incoming webhook: {text, blocks}; &, < and > escaped in mrkdwn.
    assert sent["hooks.slack.com"] == {
        "text": f"Major incident {incident.number} opened",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": f"Major incident {incident.number} opened", "emoji": False},
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "VPN &lt;down&gt; for *all*\nPriority 4 - Low · VPN · Network"},
            },
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": link}],
            },
        ],
    }
    # Teams: a message with one Adaptive Card attachment.
    teams = sent["prod-01.westeurope.logic.azure.com"]
    assert teams["type"] == "message"
    (attachment,) = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert [block["text"] for block in card["body"]] == [
        f"Major incident {incident.number} opened",
        r"VPN <down> for \*all\*",
        "Priority 4 - Low · VPN · Network",
    ]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open", "url": link}]
    assert set(ChatMessage.objects.values_list("status", flat=True)) == {"sent"}


def test_ordinary_incident_and_other_groups_post_nothing(hooks, network_group, http_mock):
    other = Group.objects.create(name="Desk")
    ordinary = IncidentFactory(assignment_group=network_group)
    assert incident_event_announce(event=IncidentEvent.objects.create(incident=ordinary, kind="opened")) == []
    major_elsewhere = IncidentFactory(is_major=True, assignment_group=other)
    assert incident_event_announce(event=IncidentEvent.objects.create(incident=major_elsewhere, kind="opened")) == []
    assert len(http_mock.calls) == 0


def test_sla_breach_is_posted_once_however_often_announced(hooks, network_group, http_mock):
    incident = IncidentFactory(assignment_group=network_group)
    event = IncidentEvent.objects.create(incident=incident, kind="sla_breached", message="resolution target missed")
    first = incident_event_announce(event=event)
    assert len(first) == 2
    assert incident_event_announce(event=event) == []
    payload = ChatMessage.objects.get(webhook__kind="slack").payload
    assert payload["text"] == f"SLA breached on {incident.number}"
    assert payload["blocks"][1]["text"]["text"].endswith("resolution target missed")


def test_only_subscribed_events_are_posted(network_group, public_dns):
    chat_webhook_create(
        group=network_group, name="q", kind="slack", url=SLACK_URL, events=["channel_quiet"], actor=None
    )
    incident = IncidentFactory(is_major=True, assignment_group=network_group)
    assert incident_event_announce(event=IncidentEvent.objects.create(incident=incident, kind="opened")) == []


def test_channel_quiet_and_recovered(hooks, http_mock, django_capture_on_commit_callbacks):
    http_mock.add(responses.POST, SLACK_URL, body="ok")
    http_mock.add(responses.POST, TEAMS_URL.split("?")[0], status=202)
    channel = ChannelFactory(name="Support X", network="x")
    ChannelAlert.objects.create(channel=channel, kind="quiet", message="no post for 600 minutes", raised_at=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        channel_alert.send(
            sender=ChannelAlert, channel=channel, kind="quiet", message="no post for 600 minutes", raised=True
        )
        channel_alert.send(sender=ChannelAlert, channel=channel, kind="quiet", message="cleared", raised=False)
    titles = [json.loads(c.request.body).get("text") for c in http_mock.calls if "slack" in c.request.url]
    assert titles == ["Quiet for far longer than usual: Support X (X)", "Recovered: Support X (X)"]


@pytest.mark.parametrize("status", [429, 503])
def test_transient_failure_waits_and_retries(hooks, http_mock, status):
    http_mock.add(responses.POST, SLACK_URL, status=status, headers={"Retry-After": "120"})
    message = ChatMessage.objects.create(webhook=hooks[0], event_key="k", payload={"text": "hi"})
    wait = chat_message_send(message=message)
    assert wait is not None and wait >= 119
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("queued", 1)
    assert chat_message_send(message=message, final=True) is None
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("failed", 2)


def test_permanent_failure_is_not_retried(hooks, http_mock):
    http_mock.add(responses.POST, SLACK_URL, status=404, body="no_service")
    message = ChatMessage.objects.create(webhook=hooks[0], event_key="k", payload={"text": "hi"})
    assert chat_message_send(message=message) is None
    message.refresh_from_db()
    hooks[0].refresh_from_db()
    assert (message.status, len(http_mock.calls)) == ("failed", 1)
    assert hooks[0].last_error.startswith("HTTP 404")
    assert chat_message_send(message=message) is None
    assert len(http_mock.calls) == 1


def test_task_schedules_a_retry_on_a_transient_failure(hooks, http_mock):
    from celery.exceptions import Retry

    from socialitsm.tasks import chat_message_send_task

    http_mock.add(responses.POST, SLACK_URL, status=503)
    message = ChatMessage.objects.create(webhook=hooks[0], event_key="k", payload={"text": "hi"})
    with pytest.raises(Retry):
        chat_message_send_task.delay(message.pk)
    message.refresh_from_db()
    assert (message.status, message.attempts, message.error) == ("queued", 1, "HTTP 503")


def test_task_for_a_vanished_message_does_nothing(http_mock):
    from socialitsm.tasks import chat_message_send_task

    chat_message_send_task.delay(999_999)
    assert len(http_mock.calls) == 0


def test_ssrf_guard_refuses_private_addresses(hooks, monkeypatch):
    import socket

    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 443))]
    )
    message = ChatMessage.objects.create(webhook=hooks[0], event_key="k", payload={"text": "hi"})
    chat_message_send(message=message)
    message.refresh_from_db()
    assert message.status == "failed"
    assert "non-public address" in message.error


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("slack", "http://hooks.slack.com/services/x"),
        ("slack", "https://hooks.slack.com.evil.example/x"),
        ("teams", "https://example.com/workflows/x"),
        ("slack", TEAMS_URL),
    ],
)
def test_webhook_url_must_be_the_platforms(network_group, kind, url):
    with pytest.raises(ValidationError):
        chat_webhook_create(group=network_group, name="x", kind=kind, url=url, events=["sla_breach"], actor=None)
    assert not ChatWebhook.objects.exists()


def test_webhook_url_is_encrypted_at_rest(hooks):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM socialitsm_chatwebhook")
        stored = [row[0] for row in cursor.fetchall()]
    assert all("hooks.slack.com" not in value and "logic.azure" not in value for value in stored)
