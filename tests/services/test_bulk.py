from __future__ import annotations

import pytest

from socialitsm.exceptions import ApplicationError
from socialitsm.models import Incident, IncidentEvent, Post
from socialitsm.services.bulk import (
    BULK_MAX,
    incidents_bulk_change,
    levels_for_priority,
    posts_bulk_triage,
)
from socialitsm.services.major import major_open

from ..factories import IncidentFactory, PostFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_bulk_assign_goes_through_the_assign_service_for_each(agent):
    first, second = IncidentFactory(), IncidentFactory(state=Incident.State.ON_HOLD)
    result = incidents_bulk_change(incidents=[first, second], actor=agent, action="assign", value=agent)

    assert [(o.ref, o.ok) for o in result.outcomes] == [(first.number, True), (second.number, True)]
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.assignee, first.state) == (agent, Incident.State.IN_PROGRESS)
    assert (second.assignee, second.state) == (agent, Incident.State.ON_HOLD)
    events = IncidentEvent.objects.filter(kind=IncidentEvent.Kind.CHANGED, actor=agent)
    assert sorted(events.values_list("incident__number", "field")) == sorted(
        [(first.number, "assignee"), (first.number, "state"), (second.number, "assignee")]
    )


def test_bulk_state_reports_each_refusal_and_changes_the_rest(agent):
    open_one = IncidentFactory(state=Incident.State.IN_PROGRESS)
    closed = IncidentFactory(state=Incident.State.CLOSED)
    result = incidents_bulk_change(incidents=[closed, open_one], actor=agent, action="state", value="resolved")

    assert [o.ref for o in result.done] == [open_one.number]
    assert [(o.ref, o.error) for o in result.failed] == [
        (closed.number, "an incident cannot move from Closed to Resolved")
    ]
    closed.refresh_from_db()
    open_one.refresh_from_db()
    assert (closed.state, open_one.state) == (Incident.State.CLOSED, Incident.State.RESOLVED)
    assert open_one.resolved_at is not None
    assert not IncidentEvent.objects.filter(incident=closed).exists()


@pytest.mark.parametrize(
    "impact, urgency, priority, expected",
    [
        (2, 2, 1, (1, 1)),
        (2, 2, 2, (2, 1)),
        (3, 3, 4, (3, 2)),
        (1, 3, 5, (3, 3)),
        (2, 1, 3, (2, 2)),
        (1, 1, 3, (1, 3)),
    ],
)
def test_levels_for_priority_change_as_little_as_can_be(impact, urgency, priority, expected):
    assert levels_for_priority(impact, urgency, priority) == expected


def test_bulk_priority_sets_impact_and_urgency(agent):
    incident = IncidentFactory(impact=2, urgency=2)
    result = incidents_bulk_change(incidents=[incident], actor=agent, action="priority", value=2)
    incident.refresh_from_db()
    assert result.failed == []
    assert (incident.impact, incident.urgency, incident.priority) == (2, 1, 2)
    assert set(IncidentEvent.objects.filter(incident=incident).values_list("field", flat=True)) == {
        "urgency",
        "priority",
    }


def test_bulk_link_links_each_and_reports_those_linked_elsewhere(agent):
    major = major_open(incidents=[IncidentFactory()], actor=agent, short_description="Mail outage")
    other = major_open(incidents=[IncidentFactory()], actor=agent, short_description="VPN outage")
    free, taken = IncidentFactory(), IncidentFactory()
    incidents_bulk_change(incidents=[taken], actor=agent, action="link", value=other)

    result = incidents_bulk_change(incidents=[free, taken], actor=agent, action="link", value=major)

    assert [o.ref for o in result.done] == [free.number]
    assert [(o.ref, o.error) for o in result.failed] == [
        (taken.number, f"{taken.number} is already linked to another major incident; unlink it first")
    ]
    free.refresh_from_db()
    taken.refresh_from_db()
    assert (free.parent, taken.parent) == (major, other)


@pytest.mark.parametrize(
    "action, value, message",
    [
        ("explode", None, "action must be one of assign, state, priority, link"),
        ("state", "sideways", "choose a state"),
        ("priority", 9, "priority must be 1 to 5"),
        ("link", None, "choose an open major incident"),
    ],
)
def test_bulk_refuses_bad_input_before_changing_anything(agent, action, value, message):
    incident = IncidentFactory()
    with pytest.raises(ApplicationError, match=message):
        incidents_bulk_change(incidents=[incident], actor=agent, action=action, value=value)
    assert not IncidentEvent.objects.exists()


def test_bulk_refuses_empty_and_oversized_selections(agent):
    with pytest.raises(ApplicationError, match="select at least one"):
        incidents_bulk_change(incidents=[], actor=agent, action="assign", value=agent)
    with pytest.raises(ApplicationError, match=f"at most {BULK_MAX}"):
        incidents_bulk_change(incidents=[Incident()] * (BULK_MAX + 1), actor=agent, action="assign", value=agent)


@pytest.mark.parametrize(
    "action, label",
    [("complaint", Post.Label.COMPLAINT), ("not_complaint", Post.Label.NOT_COMPLAINT), ("dismiss", "not_complaint")],
)
def test_bulk_triage_labels(agent, action, label):
    posts = [PostFactory(triage_state=Post.Triage.QUEUED) for _ in range(2)]
    result = posts_bulk_triage(posts=posts, actor=agent, action=action)
    assert len(result.done) == 2
    assert list(Post.objects.order_by("pk").values_list("label", "labelled_by")) == [(label, agent.pk)] * 2


def test_bulk_promote_opens_incidents_and_reports_posts_already_linked(agent):
    queued = PostFactory(triage_state=Post.Triage.QUEUED, is_complaint=True, complaint_score=0.7)
    linked = PostFactory(incident=IncidentFactory(number="INC0000042"), triage_state=Post.Triage.INCIDENT)

    result = posts_bulk_triage(posts=[queued, linked], actor=agent, action="promote")

    queued.refresh_from_db()
    assert [(o.ref, o.incident) for o in result.done] == [(str(queued.pk), queued.incident.number)]
    assert [(o.ref, o.error) for o in result.failed] == [(str(linked.pk), "post is already linked to INC0000042")]
    assert IncidentEvent.objects.filter(incident=queued.incident, kind=IncidentEvent.Kind.PROMOTED).count() == 1


def test_bulk_triage_refuses_unknown_actions(agent):
    with pytest.raises(ApplicationError, match="action must be one of"):
        posts_bulk_triage(posts=[PostFactory()], actor=UserFactory(), action="burn")
