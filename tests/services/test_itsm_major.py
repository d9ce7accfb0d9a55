"""Major incidents in the ITSM sync, against the in-memory suite: the parent's record first and
marked, children linked to it, links moved and removed, retries that send nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Incident, ItsmConnection, ItsmDelivery, ItsmLink
from socialitsm.services.itsm_sync import (
    incident_links_changed,
    itsm_link_sync,
    itsm_links_due,
    itsm_ref,
)

from ..factories import IncidentFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _incident(number: str, **fields) -> Incident:
    return IncidentFactory(number=number, short_description=f"{number} mail down", **fields)


def _link(connection: ItsmConnection, incident: Incident) -> ItsmLink:
    return ItsmLink.objects.create(connection=connection, incident=incident, external_ref=itsm_ref(incident))


def _under(child: Incident, parent: Incident | None) -> None:
    """What the major-incident services do: set the parent and announce the change."""
    previous = child.parent
    with transaction.atomic():
        child.parent = parent
        child.save(update_fields=["parent"])
        incident_links_changed(incident=child, previous_parent=previous)


def _calls(fake_suite, *names: str) -> list[tuple[str, str]]:
    return [call for call in fake_suite.calls if call[0] in names]


def test_a_childs_sync_brings_its_major_incident_first_and_links_to_it(connection, fake_suite, clock):
    major = _incident("INC0000100", is_major=True)
    child = _incident("INC0000101", parent=major)
    link = _link(connection, child)

    itsm_link_sync(link=link)

    link.refresh_from_db()
    parent_link = ItsmLink.objects.get(incident=major)
    assert (link.status, parent_link.status) == ("ok", "ok")
    assert (parent_link.external_ref, parent_link.remote_id, link.remote_id) == (itsm_ref(major), "2", "1")
    # The child's record, then the parent's, marked, and only then the link.
    assert [name for name, _ in fake_suite.calls] == [
        "find",
        "create",
        "find",
        "create",
        "major_mark",
        "parent_link",
    ]
    assert (fake_suite.tickets["2"].major, fake_suite.tickets["1"].parent) == (True, "2")
    assert (link.pushed["parent"], parent_link.pushed["major"]) == ("2", True)
    steps = ItsmDelivery.objects.filter(link=link, detail__startswith="parent").values_list("detail", flat=True)
    assert list(steps) == ["parent linked: 2"]

    # Synced again: nothing more reaches the suite.
    fake_suite.calls.clear()
    itsm_link_sync(link=link)
    itsm_link_sync(link=parent_link)
    assert fake_suite.calls == []


def test_a_parent_with_children_is_marked_even_if_not_flagged_major(connection, fake_suite, clock):
    parent = _incident("INC0000100")
    child = _incident("INC0000101", parent=parent)
    itsm_link_sync(link=_link(connection, child))
    assert fake_suite.tickets["2"].major is True
    assert fake_suite.tickets["1"].parent == "2"


def test_linking_and_unlinking_after_both_were_synced_is_pushed(
    connection, fake_suite, clock, django_capture_on_commit_callbacks
):
    major = _incident("INC0000100", is_major=True)
    child = _incident("INC0000101")
    child_link, major_link = _link(connection, child), _link(connection, major)
    itsm_link_sync(link=child_link)
    itsm_link_sync(link=major_link)
    assert fake_suite.tickets["1"].parent == ""
    fake_suite.calls.clear()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _under(child, major)
    assert len(callbacks) == 2  # the child's link and the major incident's
    assert fake_suite.tickets["1"].parent == "2"
    assert _calls(fake_suite, "parent_link", "parent_unlink") == [("parent_link", "1")]

    fake_suite.calls.clear()
    with django_capture_on_commit_callbacks(execute=True):
        _under(child, None)
    assert fake_suite.tickets["1"].parent == ""
    assert _calls(fake_suite, "parent_link", "parent_unlink") == [("parent_unlink", "1")]
    # Still flagged major: it stays a parent in the suite.
    assert fake_suite.tickets["2"].major is True
    child_link.refresh_from_db()
    assert child_link.pushed["parent"] == ""


def test_a_child_moved_to_another_major_incident_is_unlinked_then_linked(
    connection, fake_suite, clock, django_capture_on_commit_callbacks
):
    first = _incident("INC0000100")
    second = _incident("INC0000200", is_major=True)
    child = _incident("INC0000101", parent=first)
    child_link = _link(connection, child)
    itsm_link_sync(link=child_link)
    assert (fake_suite.tickets["1"].parent, fake_suite.tickets["2"].major) == ("2", True)
    fake_suite.calls.clear()

    with django_capture_on_commit_callbacks(execute=True):
        _under(child, second)

    assert fake_suite.tickets["1"].parent == "3"
    assert _calls(fake_suite, "parent_link", "parent_unlink", "major_mark") == [
        ("major_mark", "3"),  # the new parent reaches the suite, marked, before the move
        ("parent_unlink", "1"),
        ("parent_link", "1"),
        ("major_mark", "2"),  # the first parent has no child left and was never flagged major
    ]
    assert (fake_suite.tickets["2"].major, fake_suite.tickets["3"].major) == (False, True)


def test_a_transient_error_on_the_link_call_links_once_on_retry(connection, fake_suite, clock):
    major = _incident("INC0000100", is_major=True)
    child = _incident("INC0000101", parent=major)
    major_link = _link(connection, major)
    itsm_link_sync(link=major_link)
    link = _link(connection, child)
    fake_suite.calls.clear()

    original = fake_suite._fail

    def fail_on_link(when: str) -> None:
        if fake_suite.calls and fake_suite.calls[-1][0] == "parent_link" and when == "before" and not done:
            done.append(True)
            raise TransientError("answer lost")
        original(when)

    done: list[bool] = []
    fake_suite._fail = fail_on_link
    try:
        itsm_link_sync(link=link)
        link.refresh_from_db()
        assert (link.status, link.attempts, link.pushed.get("parent", "")) == ("pending", 1, "")
        assert ItsmDelivery.objects.get(link=link, status="retrying").detail == "answer lost"
        clock.shift(timedelta(minutes=5))
        itsm_link_sync(link=link)
    finally:
        fake_suite._fail = original
    link.refresh_from_db()
    assert (link.status, link.pushed["parent"]) == ("ok", "1")
    assert fake_suite.tickets["2"].parent == "1"
    assert _calls(fake_suite, "parent_link") == [("parent_link", "2"), ("parent_link", "2")]


def test_a_child_waits_while_its_major_incident_cannot_reach_the_suite(connection, fake_suite, clock):
    major = _incident("INC0000100", is_major=True)
    child = _incident("INC0000101", parent=major)
    major_link = _link(connection, major)
    major_link.status, major_link.last_error = ItsmLink.Status.FAILED, "the suite refused the record"
    major_link.save()
    link = _link(connection, child)

    itsm_link_sync(link=link)

    link.refresh_from_db()
    assert (link.status, link.attempts, link.remote_id) == ("pending", 0, "1")
    assert link.last_error == (
        "waiting for the major incident INC0000100 to reach Suite before linking to it: the suite refused the record"
    )
    assert link.next_attempt_at == NOW + timedelta(seconds=30)
    assert _calls(fake_suite, "parent_link") == []
    # Due again once the wait is over.
    clock.shift(timedelta(seconds=31))
    assert link.pk in itsm_links_due()


def test_a_permanent_refusal_to_link_fails_the_childs_link(connection, fake_suite, clock):
    major = _incident("INC0000100", is_major=True)
    child = _incident("INC0000101", parent=major)
    itsm_link_sync(link=_link(connection, major))
    link = _link(connection, child)
    # find, create, then the link call is refused.
    fake_suite.errors = []
    calls_before = len(fake_suite.calls)

    def refuse(when: str) -> None:
        if fake_suite.calls[-1][0] == "parent_link" and when == "before":
            raise PermanentError("links are not allowed here")

    original = fake_suite._fail
    fake_suite._fail = refuse
    try:
        itsm_link_sync(link=link)
    finally:
        fake_suite._fail = original
    link.refresh_from_db()
    assert (link.status, link.last_error) == ("failed", "links are not allowed here")
    assert len(fake_suite.calls) == calls_before + 3


def test_a_change_during_a_running_sync_keeps_the_link_due(connection, fake_suite, clock):
    major = _incident("INC0000100", is_major=True)
    child = _incident("INC0000101")
    link, major_link = _link(connection, child), _link(connection, major)
    for _ in range(2):  # again, once the audit events the creates wrote have settled
        itsm_link_sync(link=link)
        itsm_link_sync(link=major_link)
        clock.shift(timedelta(minutes=5))
    assert itsm_links_due() == []
    Incident.objects.filter(pk=child.pk).update(short_description="Mail down for everyone")
    original = fake_suite._fail

    def change_meanwhile(when: str) -> None:
        # The parent is set and announced while the sync pushes the new description.
        if when == "before" and fake_suite.calls[-1][0] == "update":
            Incident.objects.filter(pk=child.pk).update(parent=major)
            incident_links_changed(incident=Incident.objects.get(pk=child.pk))
        original(when)

    fake_suite._fail = change_meanwhile
    try:
        itsm_link_sync(link=link)
    finally:
        fake_suite._fail = original
    assert fake_suite.tickets["1"].parent == ""
    # The sync read the incident before the change: the link stays due, and the next sync links.
    assert link.pk in itsm_links_due()
    itsm_link_sync(link=link)
    assert fake_suite.tickets["1"].parent == "2"


def test_an_incident_made_its_own_parent_fails_its_link_with_a_reason(connection, fake_suite, clock):
    incident = _incident("INC0000100", is_major=True)
    Incident.objects.filter(pk=incident.pk).update(parent=incident)
    link = itsm_link_sync(link=_link(connection, incident))
    assert (link.status, link.last_error) == ("failed", "INC0000100 has no major incident other than itself")
    assert _calls(fake_suite, "parent_link") == []
