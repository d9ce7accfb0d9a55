from __future__ import annotations

import smtplib
from datetime import UTC, datetime
from unittest import mock

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core import mail
from django.db import transaction

from socialitsm.exceptions import TransientError
from socialitsm.models import IncidentEvent, Notification, NotificationKind, NotificationPreference, Post
from socialitsm.roles import AGENT_GROUP
from socialitsm.services.events import event_build, event_record, events_record
from socialitsm.services.incidents import incident_assign, incident_open_from_post, post_link
from socialitsm.services.major import major_open
from socialitsm.services.notifications import notification_email_send, notifications_for_event
from socialitsm.signals import channel_alert, incident_event

from ..factories import ChannelFactory, IncidentFactory, PostFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _agent(name: str, **fields):
    user = UserFactory(username=name, **fields)
    user.groups.add(Group.objects.get(name=AGENT_GROUP))
    return user


def _opened(post=None):
    post = post or PostFactory(triage_state=Post.Triage.QUEUED)
    with transaction.atomic():
        return incident_open_from_post(post=post, rule=post.rule, service=None, urgency=2), post


def test_assigning_notifies_the_assignee_in_the_app_and_by_email(agent, lead, django_capture_on_commit_callbacks):
    incident, _ = _opened()

    with django_capture_on_commit_callbacks(execute=True):
        incident_assign(incident=incident, actor=lead, assignee=agent)

    [notification] = Notification.objects.all()
    assert (notification.user, notification.kind, notification.incident, notification.in_app) == (
        agent,
        NotificationKind.ASSIGNED,
        incident,
        True,
    )
    assert notification.title == f"{incident.number} assigned to you by lead.lars"
    assert notification.email_status == Notification.Email.SENT
    [email] = mail.outbox
    assert (email.to, email.subject) == (["agent.anna@example.com"], f"{incident.number} assigned to you by lead.lars")
    assert f"/incidents/{incident.number}/" in email.body


def test_taking_an_incident_oneself_notifies_nobody(agent, django_capture_on_commit_callbacks):
    incident, _ = _opened()

    with django_capture_on_commit_callbacks(execute=True):
        incident_assign(incident=incident, actor=agent, assignee=agent)

    assert Notification.objects.count() == 0
    assert mail.outbox == []


def test_an_event_is_notified_once_however_often_it_is_handled(agent, lead, django_capture_on_commit_callbacks):
    incident, _ = _opened()
    with django_capture_on_commit_callbacks(execute=True):
        incident_assign(incident=incident, actor=lead, assignee=agent)
    event = IncidentEvent.objects.get(incident=incident, field="assignee")

    with django_capture_on_commit_callbacks(execute=True):
        again = notifications_for_event(event)

    assert again == []
    assert Notification.objects.count() == 1
    assert len(mail.outbox) == 1


def test_every_committed_event_is_announced_once_and_a_rolled_back_one_never(agent, django_capture_on_commit_callbacks):
    incident = IncidentFactory()
    seen: list[int] = []

    def listen(sender, event, **kwargs):
        seen.append(event.pk)

    incident_event.connect(listen, dispatch_uid="test-listen")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            one = event_record(incident, IncidentEvent.Kind.CHANGED, field="category", new="x")
            many = events_record(
                [event_build(incident, IncidentEvent.Kind.CHANGED, field="category", new=str(n)) for n in range(3)]
            )
        with (
            django_capture_on_commit_callbacks(execute=True),
            pytest.raises(RuntimeError),
            transaction.atomic(),
        ):
            event_record(incident, IncidentEvent.Kind.CHANGED, field="category", new="gone")
            raise RuntimeError
    finally:
        incident_event.disconnect(dispatch_uid="test-listen")

    assert seen == [one.pk, *[e.pk for e in many]]


def test_a_failing_receiver_does_not_break_the_change(agent, django_capture_on_commit_callbacks):
    incident = IncidentFactory()

    def broken(sender, event, **kwargs):
        raise ValueError("boom")

    incident_event.connect(broken, dispatch_uid="test-broken")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            event_record(incident, IncidentEvent.Kind.CHANGED, field="category", new="x")
    finally:
        incident_event.disconnect(dispatch_uid="test-broken")

    assert IncidentEvent.objects.filter(incident=incident, new_value="x").count() == 1


def test_the_poster_answering_notifies_the_assignee_and_someone_else_does_not(
    agent, lead, django_capture_on_commit_callbacks
):
    incident, first = _opened()
    with django_capture_on_commit_callbacks(execute=True):
        incident_assign(incident=incident, actor=agent, assignee=agent)
    answer = PostFactory(author=first.author, rule=first.rule, text="still broken, now email too")
    stranger = PostFactory(rule=first.rule, text="me too")

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        post_link(post=answer, incident=incident)
        post_link(post=stranger, incident=incident)

    [notification] = Notification.objects.all()
    assert (notification.user, notification.kind) == (agent, NotificationKind.POSTER_ANSWERED)
    assert notification.title == f"{incident.number}: the poster answered"
    assert notification.body == "still broken, now email too"
    # Not wanted by e-mail unless chosen.
    assert (notification.email_status, mail.outbox) == (Notification.Email.NONE, [])


def test_sla_breach_notifies_the_assignee_and_the_group_agents(agent, django_capture_on_commit_callbacks):
    team = Group.objects.create(name="Network Team")
    colleague = _agent("colleague.carl")
    outsider = UserFactory(username="not.an.agent")
    for user in (agent, colleague, outsider):
        user.groups.add(team)
    elsewhere = _agent("other.otto")
    assignee = _agent("assignee.ada")
    incident = IncidentFactory(assignee=assignee, assignment_group=team)

    with django_capture_on_commit_callbacks(execute=True):
        events_record(
            [event_build(incident, IncidentEvent.Kind.SLA_BREACHED, field="first_response", new="2026-11-25T12:00:00")]
        )

    told = Notification.objects.order_by("user__username")
    assert [(n.user.username, n.kind) for n in told] == [
        ("agent.anna", "sla_breached"),
        ("assignee.ada", "sla_breached"),
        ("colleague.carl", "sla_breached"),
    ]
    assert told[0].title == f"{incident.number}: First response SLA breached"
    assert elsewhere.socialitsm_notifications.count() == 0
    assert sorted(m.to[0] for m in mail.outbox) == [
        "agent.anna@example.com",
        "assignee.ada@example.com",
        "colleague.carl@example.com",
    ]


def test_major_incident_opened_notifies_every_agent_but_its_opener(agent, lead, django_capture_on_commit_callbacks):
    child = IncidentFactory()

    with django_capture_on_commit_callbacks(execute=True):
        major = major_open(incidents=[child], actor=lead, short_description="VPN outage")

    told = Notification.objects.filter(kind=NotificationKind.MAJOR_OPENED)
    assert [(n.user, n.incident) for n in told] == [(agent, major)]
    assert told[0].title == f"Major incident {major.number} opened"


@pytest.mark.parametrize(
    ("in_app", "email", "stored", "mails"),
    [(False, True, 1, 1), (True, False, 1, 0), (False, False, 0, 0)],
)
def test_each_person_chooses_per_kind(agent, lead, in_app, email, stored, mails, django_capture_on_commit_callbacks):
    NotificationPreference.objects.create(user=agent, kind=NotificationKind.ASSIGNED, in_app=in_app, email=email)
    incident, _ = _opened()

    with django_capture_on_commit_callbacks(execute=True):
        incident_assign(incident=incident, actor=lead, assignee=agent)

    assert Notification.objects.count() == stored
    assert Notification.objects.filter(in_app=True).count() == (1 if in_app else 0)
    assert len(mail.outbox) == mails


def test_channel_alert_notifies_leads_and_administrators_once_a_day(agent, lead, django_capture_on_commit_callbacks):
    admin = UserFactory(username="root", is_superuser=True)
    channel = ChannelFactory(name="Support on Mastodon")

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            channel_alert.send(
                sender=type(channel), channel=channel, kind="token_expiring", message="expires in 3 days", raised=True
            )

    told = Notification.objects.order_by("user__username")
    assert [(n.user, n.kind, n.title, n.body) for n in told] == [
        (lead, "channel_alert", "Channel Support on Mastodon: token expiring", "expires in 3 days"),
        (admin, "channel_alert", "Channel Support on Mastodon: token expiring", "expires in 3 days"),
    ]
    assert not agent.socialitsm_notifications.exists()
    assert len(mail.outbox) == 2


def test_email_without_an_address_is_recorded_and_not_sent(lead, django_capture_on_commit_callbacks):
    silent = _agent("silent.sam", email="")
    incident, _ = _opened()

    with django_capture_on_commit_callbacks(execute=True):
        incident_assign(incident=incident, actor=lead, assignee=silent)

    assert Notification.objects.get().email_status == Notification.Email.NO_ADDRESS
    assert mail.outbox == []


def test_refused_email_is_marked_failed_and_not_sent_twice(agent, lead, django_capture_on_commit_callbacks):
    incident, _ = _opened()
    NotificationPreference.objects.create(user=agent, kind=NotificationKind.ASSIGNED, in_app=True, email=False)
    with django_capture_on_commit_callbacks(execute=True):
        incident_assign(incident=incident, actor=lead, assignee=agent)
    notification = Notification.objects.get()
    Notification.objects.filter(pk=notification.pk).update(email_status=Notification.Email.QUEUED)

    with mock.patch(
        "socialitsm.services.notifications.send_mail",
        autospec=True,
        side_effect=smtplib.SMTPRecipientsRefused({"agent.anna@example.com": (550, b"no such user")}),
    ):
        notification_email_send(notification=notification)
        notification_email_send(notification=notification)

    notification.refresh_from_db()
    assert notification.email_status == Notification.Email.FAILED
    assert "no such user" in notification.email_error
    assert mail.outbox == []


def test_notification_tasks_with_vanished_rows_do_nothing(agent):
    from socialitsm.tasks import (
        notification_email_task,
        notifications_for_channel_alert_task,
        notifications_for_event_task,
    )

    notifications_for_event_task(987654)
    notifications_for_channel_alert_task(987654, "quiet", "no posts", True)
    notification_email_task(987654)

    assert (Notification.objects.count(), mail.outbox) == (0, [])


def test_email_task_sends_a_queued_notification_once(agent):
    incident = IncidentFactory()
    notification = Notification.objects.create(
        user=agent,
        kind=NotificationKind.SLA_BREACHED,
        key="event:1",
        title=f"{incident.number}: Resolution SLA breached",
        body="VPN down again",
        incident=incident,
        email_status=Notification.Email.QUEUED,
    )
    from socialitsm.tasks import notification_email_task

    notification_email_task(notification.pk)
    notification_email_task(notification.pk)

    [email] = mail.outbox
    assert (email.subject, email.to) == (f"{incident.number}: Resolution SLA breached", ["agent.anna@example.com"])
    assert email.body.startswith("VPN down again\n\n")
    notification.refresh_from_db()
    assert (notification.email_status, notification.emailed_at) == (Notification.Email.SENT, NOW)


def test_an_smtp_outage_is_retried_later(agent):
    notification = Notification.objects.create(
        user=agent, kind=NotificationKind.ASSIGNED, key="k", title="t", email_status=Notification.Email.QUEUED
    )

    with (
        mock.patch(
            "socialitsm.services.notifications.send_mail",
            autospec=True,
            side_effect=ConnectionRefusedError("connection refused"),
        ),
        pytest.raises(TransientError),
    ):
        notification_email_send(notification=notification)

    notification.refresh_from_db()
    assert (notification.email_status, notification.email_error) == (Notification.Email.QUEUED, "connection refused")
    assert mail.outbox == []


def test_the_sla_sweep_notifies_a_breach_through_the_committed_event(agent, lead, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from socialitsm.models import SlaPolicy
    from socialitsm.services.sla import sla_sweep

    SlaPolicy.objects.create(name="P4 24x7", priority=4, first_response_minutes=60, resolution_minutes=480)
    post = PostFactory(triage_state=Post.Triage.QUEUED, posted_at=NOW, ingested_at=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            incident = incident_open_from_post(post=post, rule=post.rule, service=None, urgency=2)
        incident_assign(incident=incident, actor=agent, assignee=agent)
        assert incident.priority == 4
        result = sla_sweep(now=NOW + timedelta(minutes=61))

    assert result == {"warned": 0, "breached": 1}
    [notification] = Notification.objects.filter(kind=NotificationKind.SLA_BREACHED)
    assert (notification.user, notification.incident, notification.title) == (
        agent,
        incident,
        f"{incident.number}: First response SLA breached",
    )
