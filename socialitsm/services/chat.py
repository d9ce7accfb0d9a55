"""Chat: post major incidents, SLA breaches and listening problems to the Slack or Microsoft Teams
channels that groups configured (`ChatWebhook`), through their incoming webhooks.

Incoming webhooks of both platforms carry no signature: the URL is the secret, so it is stored
encrypted and never shown again. Each event becomes one `ChatMessage` per webhook (unique per
webhook and event, so announcing an event twice posts it once), sent by a Celery task through
`http.py` (SSRF guard, timeout), retried with backoff on 429 and 5xx.
"""

from __future__ import annotations

import logging
import re
from functools import partial
from typing import Any, cast

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from socialitsm import http
from socialitsm.backoff import backoff_delay
from socialitsm.conf import conf
from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Channel, ChannelAlert, ChatMessage, ChatWebhook, Incident, IncidentEvent

logger = logging.getLogger(__name__)

Event = ChatWebhook.Event

# Where each platform's incoming webhooks live; a URL elsewhere is refused when a lead saves it.
WEBHOOK_HOSTS: dict[str, tuple[str, ...]] = {
    ChatWebhook.Kind.SLACK: ("hooks.slack.com", "hooks.slack-gov.com"),
    # Teams: Workflows (Power Automate) URLs, and the retiring Office 365 connector URLs.
    ChatWebhook.Kind.TEAMS: (".logic.azure.com", ".webhook.office.com", ".powerplatform.com"),
}
CHAT_MAX_BACKOFF_SECONDS = 600.0
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


# -- configuration ---------------------------------------------------------------------------------


def chat_url_check(kind: str, url: str) -> None:
    """Refuse a webhook URL that is not https on the platform's webhook hosts (ValidationError)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    hosts = WEBHOOK_HOSTS.get(kind, ())
    allowed = any(host == h or (h.startswith(".") and host.endswith(h)) for h in hosts)
    if parts.scheme != "https" or not allowed:
        where = ", ".join(h.lstrip(".") for h in hosts)
        label = ChatWebhook.Kind(kind).label
        raise ValidationError({"url": [f"not a {label} incoming webhook URL (https on {where})"]})


def chat_webhook_create(*, group: Group, name: str, kind: str, url: str, events: list[str], actor: Any) -> ChatWebhook:
    """Add a chat webhook for `group`. Raises ValidationError on a bad kind, URL or event."""
    if kind not in ChatWebhook.Kind.values:
        raise ValidationError({"kind": ["choose Slack or Microsoft Teams"]})
    chat_url_check(kind, url)
    unknown = [e for e in events if e not in Event.values]
    if unknown or not events:
        raise ValidationError({"events": ["choose at least one of the listed events"]})
    webhook = ChatWebhook(
        group=group,
        name=name,
        kind=kind,
        credentials=cast(Any, {"url": url}),
        events=sorted(set(events)),
        created_by=actor,
    )
    webhook.full_clean(exclude=["credentials", "created_by"])
    webhook.save()
    return webhook


def chat_groups_for(user: Any) -> list[Group]:
    """The groups whose chat webhooks `user` (a lead) may configure: all for a superuser, else
    the groups they belong to."""
    from socialitsm.roles import AGENT_GROUP, LEAD_GROUP

    groups = Group.objects.all() if user.is_superuser else user.groups.all()
    return list(groups.exclude(name__in=(AGENT_GROUP, LEAD_GROUP)).order_by("name"))


# -- what is posted --------------------------------------------------------------------------------

_SLACK_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Emphasis, code and link brackets: what turns text into formatting or a link in a TextBlock.
_MARKDOWN = re.compile(r"([\\`*_\[\]~])")


def slack_escape(text: str) -> str:
    """Slack's mrkdwn takes &, < and > as control characters (links, mentions): escape them."""
    return "".join(_SLACK_ESCAPES.get(c, c) for c in text)


def teams_escape(text: str) -> str:
    """Adaptive Card TextBlocks render a Markdown subset: escape it so untrusted text stays text."""
    return _MARKDOWN.sub(r"\\\1", text)


def _incident_url(incident: Incident) -> str:
    if not conf.SITE_URL:
        return ""
    try:
        path = reverse("socialitsm:incident", kwargs={"number": incident.number})
    except NoReverseMatch:
        return ""
    return conf.SITE_URL.rstrip("/") + path


def slack_payload(title: str, lines: list[str], url: str = "") -> dict[str, Any]:
    """An incoming-webhook message: `text` is the notification fallback, `blocks` the layout."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": False}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(slack_escape(line) for line in lines)[:3000]}},
    ]
    if url:
        blocks.append(
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": url}],
            }
        )
    return {"text": slack_escape(title), "blocks": blocks}


def teams_payload(title: str, lines: list[str], url: str = "") -> dict[str, Any]:
    """A Workflows / incoming-webhook message carrying one Adaptive Card."""
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": teams_escape(title), "weight": "Bolder", "size": "Medium", "wrap": True},
            *({"type": "TextBlock", "text": teams_escape(line), "wrap": True} for line in lines),
        ],
    }
    if url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open", "url": url}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def _payload(kind: str, title: str, lines: list[str], url: str = "") -> dict[str, Any]:
    return (slack_payload if kind == ChatWebhook.Kind.SLACK else teams_payload)(title, lines, url)


def _incident_lines(incident: Incident) -> list[str]:
    service = incident.service.name if incident.service_id and incident.service else "unknown service"
    group = incident.assignment_group.name if incident.assignment_group_id and incident.assignment_group else "no group"
    return [incident.short_description, f"Priority {incident.get_priority_display()} · {service} · {group}"]


# -- announcing ------------------------------------------------------------------------------------


def _subscribed(webhooks: list[ChatWebhook], event: str) -> list[ChatWebhook]:
    # Filtered here rather than with a JSON lookup: the embedded SQLite database has no `contains`.
    return [w for w in webhooks if event in w.events]


def _group_webhooks(incident: Incident) -> list[ChatWebhook]:
    webhooks = ChatWebhook.objects.filter(enabled=True)
    if incident.assignment_group_id:
        return list(webhooks.filter(group_id=incident.assignment_group_id))
    return list(webhooks.filter(group__name=conf.DEFAULT_GROUP)) if conf.DEFAULT_GROUP else []


def incident_event_announce(*, event: IncidentEvent) -> list[int]:
    """Queue chat messages for a committed incident event worth a chat post (a major incident
    opened, an SLA breach) to the webhooks of the incident's group. Returns the messages queued."""
    incident = Incident.objects.select_related("service", "assignment_group").filter(pk=event.incident_id).first()
    if incident is None:
        return []
    if event.kind == IncidentEvent.Kind.OPENED and incident.is_major:
        subject, title = Event.MAJOR_INCIDENT, f"Major incident {incident.number} opened"
        lines = _incident_lines(incident)
    elif event.kind == IncidentEvent.Kind.SLA_BREACHED:
        subject, title = Event.SLA_BREACH, f"SLA breached on {incident.number}"
        lines = [*_incident_lines(incident), event.message] if event.message else _incident_lines(incident)
    else:
        return []
    url = _incident_url(incident)
    return _queue(
        _subscribed(_group_webhooks(incident), subject),
        f"incident_event:{event.pk}",
        lambda kind: _payload(kind, title, lines, url),
    )


def channel_alert_announce(*, channel: Channel, kind: str, message: str, raised: bool) -> list[int]:
    """Queue chat messages for a listening problem raised or cleared, to every webhook that
    subscribed to it (quiet channels, or the other problems)."""
    alert = ChannelAlert.objects.filter(channel=channel, kind=kind).first()
    if alert is None:
        return []
    subject = Event.CHANNEL_QUIET if kind == ChannelAlert.Kind.QUIET else Event.CHANNEL_PROBLEM
    label = ChannelAlert.Kind(kind).label if kind in ChannelAlert.Kind.values else kind
    where = f"{channel.name} ({channel.get_network_display()})"
    title = f"{label}: {where}" if raised else f"Recovered: {where}"
    stamp = int(alert.raised_at.timestamp())
    key = f"channel_alert:{channel.pk}:{kind}:{stamp}:{'raised' if raised else 'cleared'}"
    webhooks = _subscribed(list(ChatWebhook.objects.filter(enabled=True)), subject)
    return _queue(webhooks, key[:64], lambda hook_kind: _payload(hook_kind, title, [message]))


def _queue(webhooks: list[ChatWebhook], key: str, payload_for: Any) -> list[int]:
    from socialitsm.tasks import chat_message_send_task

    queued = []
    for webhook in webhooks:
        message, created = ChatMessage.objects.get_or_create(
            webhook=webhook, event_key=key, defaults={"payload": payload_for(webhook.kind)}
        )
        if created:
            queued.append(message.pk)
            # Robust: a broker that is down must not fail the change that announced the event.
            transaction.on_commit(partial(chat_message_send_task.delay, message.pk), robust=True)
    return queued


# -- sending ---------------------------------------------------------------------------------------


def chat_message_send(*, message: ChatMessage, final: bool = False) -> float | None:
    """Post `message` to its webhook. Returns None when done (sent, or failed for good), else the
    seconds to wait before the next attempt (429, 5xx, timeout); on the `final` attempt a
    transient error fails the message too. Only a queued message is sent."""
    claimed = ChatMessage.objects.filter(pk=message.pk, status=ChatMessage.Status.QUEUED).update(
        attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    message.refresh_from_db()
    webhook = message.webhook
    now = timezone.now()
    try:
        url = str(webhook.credentials.get("url", ""))
        if not url:
            raise PermanentError("the webhook has no URL")
        http.request("POST", url, json=message.payload)
    except TransientError as exc:
        if final or message.attempts > conf.CHAT_MAX_RETRIES:
            _failed(message, webhook, exc.message, now)
            return None
        ChatMessage.objects.filter(pk=message.pk).update(error=exc.message)
        wait = backoff_delay(message.attempts, cap=CHAT_MAX_BACKOFF_SECONDS, base=5.0, jitter=True)
        if exc.retry_at is not None:
            wait = max(wait, (exc.retry_at - now).total_seconds())
        return wait
    except PermanentError as exc:
        _failed(message, webhook, exc.message, now)
        return None
    ChatMessage.objects.filter(pk=message.pk).update(status=ChatMessage.Status.SENT, sent_at=now, error="")
    ChatWebhook.objects.filter(pk=webhook.pk).update(last_sent_at=now, last_error="")
    return None


def _failed(message: ChatMessage, webhook: ChatWebhook, error: str, now) -> None:
    logger.warning("chat webhook %s: message %s failed: %s", webhook.pk, message.pk, error)
    ChatMessage.objects.filter(pk=message.pk).update(status=ChatMessage.Status.FAILED, error=error)
    ChatWebhook.objects.filter(pk=webhook.pk).update(last_error=error, last_error_at=now)


# -- receivers of the signals in socialitsm/signals.py (connected in apps.py) ----------------------


def on_incident_event(sender: Any, event: IncidentEvent, **kwargs: Any) -> None:
    if event.kind == IncidentEvent.Kind.OPENED and _ordinary_in_memory(event):
        # Routing opens hundreds of ordinary incidents a batch: no query for each.
        return
    if event.kind in (IncidentEvent.Kind.OPENED, IncidentEvent.Kind.SLA_BREACHED):
        incident_event_announce(event=event)


def _ordinary_in_memory(event: IncidentEvent) -> bool:
    """The event was built with its incident in memory, which says it is no major incident."""
    if not IncidentEvent.incident.is_cached(event):
        return False
    incident = event.incident
    return "is_major" not in incident.get_deferred_fields() and not incident.is_major


def on_channel_alert(sender: Any, channel: Channel, kind: str, message: str, raised: bool, **kwargs: Any) -> None:
    channel_alert_announce(channel=channel, kind=kind, message=message, raised=raised)
