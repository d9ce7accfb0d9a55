"""Notifications: who is told about what, in the app and by e-mail.

Incident events (announced once committed, see events.py) and channel alerts fan out to the
people concerned, each of whom chooses per kind whether they want it in the app and by
e-mail. A person is told about one thing once, and never about their own change. E-mail goes
out from a task, never inside the change that caused it."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from socialitsm.conf import conf
from socialitsm.exceptions import TransientError
from socialitsm.models import (
    Channel,
    Incident,
    IncidentEvent,
    Notification,
    NotificationKind,
    NotificationPreference,
    Post,
    SlaClock,
)
from socialitsm.roles import AGENT_GROUP, LEAD_GROUP
from socialitsm.text import shorten

logger = logging.getLogger(__name__)

# (in the app, by e-mail) for a kind the person has not chosen for.
DEFAULT_CHOICE: dict[str, tuple[bool, bool]] = {
    NotificationKind.ASSIGNED: (True, True),
    NotificationKind.POSTER_ANSWERED: (True, False),
    NotificationKind.SLA_WARNING: (True, False),
    NotificationKind.SLA_BREACHED: (True, True),
    NotificationKind.MAJOR_OPENED: (True, True),
    NotificationKind.CHANNEL_ALERT: (True, True),
}

# The event kinds that may notify anyone; the rest are never looked at twice.
EVENT_KINDS = frozenset(
    {
        IncidentEvent.Kind.OPENED,
        IncidentEvent.Kind.CHANGED,
        IncidentEvent.Kind.POST_LINKED,
        IncidentEvent.Kind.SLA_WARNING,
        IncidentEvent.Kind.SLA_BREACHED,
    }
)


@dataclass(frozen=True)
class Choice:
    kind: str
    label: str
    in_app: bool
    email: bool


def notification_choices(user: Any) -> list[Choice]:
    """The person's choice for every kind, their own where they made one, else the default."""
    stored = {p.kind: (p.in_app, p.email) for p in NotificationPreference.objects.filter(user=user)}
    return [
        Choice(kind.value, kind.label, *stored.get(kind.value, DEFAULT_CHOICE[kind.value])) for kind in NotificationKind
    ]


def notification_choices_set(*, user: Any, choices: dict[str, tuple[bool, bool]]) -> None:
    """Store the person's choice per kind; kinds not given keep theirs."""
    unknown = set(choices) - set(NotificationKind.values)
    if unknown:
        from socialitsm.exceptions import ApplicationError

        raise ApplicationError(f"unknown notification kind {sorted(unknown)[0]!r}", field="kind")
    with transaction.atomic():
        for kind, (in_app, email) in choices.items():
            NotificationPreference.objects.update_or_create(
                user=user, kind=kind, defaults={"in_app": in_app, "email": email}
            )


def agents() -> QuerySet:
    """Active people who may open the agents' pages (where a notification leads)."""
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__name__in=(AGENT_GROUP, LEAD_GROUP)))
        .distinct()
    )


def leads() -> QuerySet:
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__name=LEAD_GROUP))
        .distinct()
    )


def event_may_notify(event: IncidentEvent) -> bool:
    """A cheap look at an announced event, before any query: could it notify anyone?"""
    if event.kind not in EVENT_KINDS:
        return False
    if event.kind == IncidentEvent.Kind.CHANGED:
        return event.field == "assignee" and bool(event.new_value)
    return True


def notifications_for_event(event: IncidentEvent) -> list[Notification]:
    """Tell the people an incident event concerns; safe to run again (nobody is told twice).
    Returns the notifications created by this call."""
    return notifications_for_events([event])


def notifications_for_events(events: Sequence[IncidentEvent]) -> list[Notification]:
    """`notifications_for_event` for each of `events`, their incidents loaded in one query: an
    event that concerns nobody (a post linked to an incident no one is assigned to, an ordinary
    incident opened) costs no query of its own."""
    wanted = [event for event in events if event_may_notify(event)]
    if not wanted:
        return []
    incidents = Incident.objects.select_related("assignee", "assignment_group").in_bulk(
        {event.incident_id for event in wanted}
    )
    created: list[Notification] = []
    for event in wanted:
        incident = incidents.get(event.incident_id)
        if incident is not None:
            created += _event_notify(event, incident)
    return created


def _event_notify(event: IncidentEvent, incident: Incident) -> list[Notification]:
    kind, recipients = _audience(event, incident)
    if kind is None:
        return []
    title, body = _describe(kind, event, incident)
    return _notify(
        kind=kind,
        key=f"event:{event.pk}",
        users=[u for u in recipients if u.pk != event.actor_id],
        title=title,
        body=body,
        incident=incident,
        event=event,
    )


def _audience(event: IncidentEvent, incident: Incident) -> tuple[str | None, list[Any]]:
    Kind = IncidentEvent.Kind
    if event.kind == Kind.OPENED:
        if not incident.is_major:
            return None, []
        return NotificationKind.MAJOR_OPENED, list(agents())
    if event.kind == Kind.CHANGED:
        # The incident may have moved on since: only the person it is still assigned to.
        assignee = incident.assignee
        if assignee is None or str(assignee) != event.new_value:
            return None, []
        return NotificationKind.ASSIGNED, _only_agents([assignee])
    if event.kind == Kind.POST_LINKED:
        if incident.assignee is None or incident.author_id is None:
            return None, []
        network, _, external_id = event.new_value.partition(":")
        from_poster = Post.objects.filter(
            incident=incident, network=network, external_id=external_id, author_id=incident.author_id
        ).exclude(pk=_first_post_id(incident))
        if not from_poster.exists():
            return None, []
        return NotificationKind.POSTER_ANSWERED, _only_agents([incident.assignee])
    if event.kind in (Kind.SLA_WARNING, Kind.SLA_BREACHED):
        people: list[Any] = []
        if incident.assignee is not None:
            people.append(incident.assignee)
        if incident.assignment_group is not None:
            people += list(agents().filter(groups=incident.assignment_group))
        kind = NotificationKind.SLA_WARNING if event.kind == Kind.SLA_WARNING else NotificationKind.SLA_BREACHED
        return kind, _only_agents(people)
    return None, []


def _first_post_id(incident: Incident) -> int | None:
    return Post.objects.filter(incident=incident).order_by("posted_at", "pk").values_list("pk", flat=True).first()


def _only_agents(users: Iterable[Any]) -> list[Any]:
    wanted = {u.pk for u in users}
    return list(agents().filter(pk__in=wanted)) if wanted else []


def _describe(kind: str, event: IncidentEvent, incident: Incident) -> tuple[str, str]:
    what = shorten(incident.short_description, 120)
    if kind == NotificationKind.ASSIGNED:
        by = f" by {event.actor}" if event.actor_id else ""
        return f"{incident.number} assigned to you{by}", what
    if kind == NotificationKind.POSTER_ANSWERED:
        return f"{incident.number}: the poster answered", shorten(event.message, 300)
    if kind == NotificationKind.MAJOR_OPENED:
        return f"Major incident {incident.number} opened", f"{what}\n{event.message}".strip()
    target = dict(SlaClock.Target.choices).get(event.field, event.field.replace("_", " "))
    if kind == NotificationKind.SLA_WARNING:
        return f"{incident.number}: {target} SLA at risk", f"{what}\n{event.message}".strip()
    return f"{incident.number}: {target} SLA breached", f"{what}\n{event.message}".strip()


def notifications_for_channel_alert(*, channel: Channel, kind: str, message: str, raised: bool) -> list[Notification]:
    """Tell the leads and administrators that a channel's health changed. One notification per
    person, channel, problem and day however often it is reported."""
    day = timezone.now().date().isoformat()
    state = "raised" if raised else "cleared"
    title = f"Channel {channel.name}: {kind.replace('_', ' ')}" + ("" if raised else " cleared")
    return _notify(
        kind=NotificationKind.CHANNEL_ALERT,
        key=f"channel:{channel.pk}:{shorten(kind, 40)}:{state}:{day}",
        users=list(leads()),
        title=title,
        body=message,
        channel=channel,
    )


def _notify(*, kind: str, key: str, users: list[Any], title: str, body: str, **about: Any) -> list[Notification]:
    if not users:
        return []
    chosen = {p.user_id: (p.in_app, p.email) for p in NotificationPreference.objects.filter(user__in=users, kind=kind)}
    already = set(Notification.objects.filter(key=key, user__in=users).values_list("user_id", flat=True))
    rows = []
    for user in {u.pk: u for u in users}.values():
        in_app, email = chosen.get(user.pk, DEFAULT_CHOICE[kind])
        if user.pk in already or not (in_app or email):
            continue
        rows.append(
            Notification(
                user=user,
                kind=kind,
                key=key,
                title=shorten(title, 255),
                body=body,
                # Wanted by e-mail only: kept (that is what dedupes it), not shown in the app.
                in_app=in_app,
                email_status=Notification.Email.QUEUED if email else Notification.Email.NONE,
                **about,
            )
        )
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    created = list(Notification.objects.filter(key=key, user_id__in=[r.user_id for r in rows]))
    from socialitsm.tasks import notification_email_task

    for notification in created:
        if notification.email_status == Notification.Email.QUEUED:
            transaction.on_commit(partial(notification_email_task.delay, notification.pk))
    return created


def notification_url(notification: Notification) -> str:
    if notification.incident is not None:
        path = reverse("socialitsm:incident", kwargs={"number": notification.incident.number})
    else:
        path = reverse("socialitsm:notifications")
    return f"{conf.SITE_URL.rstrip('/')}{path}"


def notification_email_send(*, notification: Notification) -> None:
    """Send the notification's e-mail once: claimed by a conditional update, sent outside any
    transaction, the outcome recorded. A transient SMTP failure puts it back for a retry."""
    claimed = Notification.objects.filter(pk=notification.pk, email_status=Notification.Email.QUEUED).update(
        email_status=Notification.Email.SENDING
    )
    if not claimed:
        return
    notification.refresh_from_db()
    address = (getattr(notification.user, "email", "") or "").strip()
    if not address:
        _email_record(notification, Notification.Email.NO_ADDRESS)
        return
    subject = " ".join(notification.title.split())
    text = f"{notification.body}\n\n{notification_url(notification)}\n\nChoose what you are told about: " + (
        f"{conf.SITE_URL.rstrip('/')}{reverse('socialitsm:notification-preferences')}"
    )
    try:
        send_mail(subject, text.strip(), settings.DEFAULT_FROM_EMAIL, [address], fail_silently=False)
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, TimeoutError, ConnectionError) as exc:
        _email_record(notification, Notification.Email.QUEUED, error=str(exc))
        raise TransientError(f"mail server unavailable: {exc}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        _email_record(notification, Notification.Email.FAILED, error=str(exc))
        return
    _email_record(notification, Notification.Email.SENT, sent=True)


def notification_email_fail(*, notification_id: int, error: str) -> None:
    """Retries ran out: the e-mail is given up on (the notification stays in the app)."""
    Notification.objects.filter(
        pk=notification_id, email_status__in=(Notification.Email.QUEUED, Notification.Email.SENDING)
    ).update(email_status=Notification.Email.FAILED, email_error=error)


def _email_record(notification: Notification, status: str, *, error: str = "", sent: bool = False) -> None:
    Notification.objects.filter(pk=notification.pk).update(
        email_status=status, email_error=error, emailed_at=timezone.now() if sent else None
    )


def notifications_mark_read(*, user: Any, ids: Iterable[int] | None = None) -> int:
    """Mark the person's unread notifications read (only those of `ids` when given); how many."""
    unread = Notification.objects.filter(user=user, in_app=True, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=list(ids))
    return unread.update(read_at=timezone.now())
