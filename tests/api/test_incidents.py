from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from socialitsm.models import Incident, IncidentEvent, Post, Service
from socialitsm.roles import AGENT_GROUP

from ..factories import AuthorFactory, IncidentFactory, PostFactory, UserFactory

LIST = "/api/v1/incidents/"


def at(day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def numbers(response) -> list[str]:
    return [row["number"] for row in response.json()["results"]]


def events(incident: Incident) -> list[tuple[str, str, str, str, str | None]]:
    return [
        (e.kind, e.field, e.old_value, e.new_value, e.actor.username if e.actor else None)
        for e in IncidentEvent.objects.filter(incident=incident).order_by("id")
    ]


@pytest.fixture
def colleague(db):
    user = UserFactory(username="agent.ben")
    user.groups.add(Group.objects.get(name=AGENT_GROUP))
    return user


@pytest.fixture
def network_team(db) -> Group:
    return Group.objects.create(name="Network team")


@pytest.fixture
def queue(agent, colleague, network_team) -> dict[str, Incident]:
    desk = Group.objects.create(name="Desk")
    incidents = {
        "101": IncidentFactory(
            number="INC0000101",
            short_description="VPN down in Lyon",
            state=Incident.State.NEW,
            impact=1,
            urgency=1,
            service=Service.objects.get(slug="vpn"),
            assignee=agent,
            assignment_group=network_team,
            opened_at=at(20),
            response_due_at=at(20, 12),
        ),
        "102": IncidentFactory(
            number="INC0000102",
            short_description="Mail bounces",
            state=Incident.State.IN_PROGRESS,
            impact=2,
            urgency=2,
            service=Service.objects.get(slug="email"),
            opened_at=at(22),
            response_due_at=at(20, 10),
        ),
        "103": IncidentFactory(
            number="INC0000103",
            short_description="Printer jams on floor 3",
            state=Incident.State.RESOLVED,
            impact=3,
            urgency=3,
            service=Service.objects.get(slug="printer"),
            assignee=colleague,
            assignment_group=desk,
            opened_at=at(24),
            response_due_at=at(25),
        ),
    }
    for number, updated in (("INC0000101", at(26, 12)), ("INC0000102", at(26, 10)), ("INC0000103", at(26, 11))):
        Incident.objects.filter(number=number).update(updated_at=updated)
    return incidents


def test_list_orders_by_priority_then_opening(agent_api, queue):
    response = agent_api.get(LIST)

    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert numbers(response) == ["INC0000101", "INC0000102", "INC0000103"]
    assert [row["priority"] for row in response.json()["results"]] == [1, 3, 5]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=new", ["INC0000101"]),
        ("state=new&state=in_progress", ["INC0000101", "INC0000102"]),
        ("open=true", ["INC0000101", "INC0000102"]),
        ("open=false", ["INC0000103"]),
        ("priority=3", ["INC0000102"]),
        ("priority=1&priority=5", ["INC0000101", "INC0000103"]),
        ("service=vpn", ["INC0000101"]),
        ("service=wifi", []),
        ("assignee=me", ["INC0000101"]),
        ("assignee=unassigned", ["INC0000102"]),
        ("assignee={colleague}", ["INC0000103"]),
        ("assignment_group={network_team}", ["INC0000101"]),
        ("opened_after=2026-11-21T00:00:00Z", ["INC0000102", "INC0000103"]),
        ("opened_before=2026-11-21T00:00:00Z", ["INC0000101"]),
        ("opened_after=2026-11-21T00:00:00Z&opened_before=2026-11-23T00:00:00Z", ["INC0000102"]),
        ("q=printer", ["INC0000103"]),
        ("q=INC0000102", ["INC0000102"]),
        ("q=lyon vpn", ["INC0000101"]),
    ],
)
def test_list_filters(agent_api, queue, colleague, network_team, query, expected):
    query = query.format(colleague=colleague.pk, network_team=network_team.pk)

    response = agent_api.get(f"{LIST}?{query}")

    assert response.status_code == 200
    assert numbers(response) == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=bogus", "state"),
        ("assignee=someone", "assignee"),
        ("priority=9", "priority"),
        ("opened_after=yesterday", "opened_after"),
    ],
)
def test_list_refuses_bad_filter_values(agent_api, queue, query, field):
    response = agent_api.get(f"{LIST}?{query}")

    assert response.status_code == 400
    assert list(response.json()) == [field]


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("-priority", ["INC0000103", "INC0000102", "INC0000101"]),
        ("opened_at", ["INC0000101", "INC0000102", "INC0000103"]),
        ("-opened_at", ["INC0000103", "INC0000102", "INC0000101"]),
        ("response_due_at", ["INC0000102", "INC0000101", "INC0000103"]),
        ("-updated_at", ["INC0000101", "INC0000103", "INC0000102"]),
    ],
)
def test_list_ordering(agent_api, queue, ordering, expected):
    response = agent_api.get(f"{LIST}?ordering={ordering}")

    assert response.status_code == 200
    assert numbers(response) == expected


def test_detail_by_number(agent_api, agent, network_team, queue):
    author = AuthorFactory(handle="@maria")
    incident = IncidentFactory(
        number="INC0000201",
        short_description="VPN down again",
        description="Maria on Replay",
        category="vpn",
        assignee=agent,
        assignment_group=network_team,
        parent=queue["101"],
        author=author,
        opened_at=at(26, 8, 5),
        response_due_at=at(26, 9, 5),
        resolution_due_at=at(26, 16, 5),
    )
    PostFactory(incident=incident, author=author, triage_state=Post.Triage.INCIDENT)
    PostFactory(incident=incident, author=author, triage_state=Post.Triage.INCIDENT)

    response = agent_api.get(f"{LIST}INC0000201/")

    assert response.status_code == 200
    assert response.json() == {
        "number": "INC0000201",
        "short_description": "VPN down again",
        "description": "Maria on Replay",
        "state": "new",
        "impact": 3,
        "urgency": 2,
        "priority": 4,
        "service": "vpn",
        "category": "vpn",
        "assignment_group": {"id": network_team.pk, "name": "Network team"},
        "assignee": {"id": agent.pk, "username": "agent.anna"},
        "is_major": False,
        "parent": "INC0000101",
        "merged_into": None,
        "opened_at": "2026-11-26T08:05:00Z",
        "first_response_at": None,
        "resolved_at": None,
        "closed_at": None,
        "response_due_at": "2026-11-26T09:05:00Z",
        "resolution_due_at": "2026-11-26T16:05:00Z",
        "breach_due_at": None,
        "sla": {"policy": None, "started_at": None, "ingest_lag_seconds": None, "clocks": []},
        "post_count": 2,
        "url": "http://testserver/incidents/INC0000201/",
        "links": {
            "self": "http://testserver/api/v1/incidents/INC0000201/",
            "posts": "http://testserver/api/v1/incidents/INC0000201/posts/",
            "events": "http://testserver/api/v1/incidents/INC0000201/events/",
            "replies": "http://testserver/api/v1/incidents/INC0000201/replies/",
        },
        "itsm_links": [],
        "version": 1,
    }
    assert response["ETag"] == '"1"'


def test_detail_of_unknown_number_is_404(agent_api, queue):
    response = agent_api.get(f"{LIST}INC9999999/")

    assert response.status_code == 404


def test_list_query_count_is_bounded(agent_api, agent, network_team, django_assert_max_num_queries):
    vpn = Service.objects.get(slug="vpn")
    parent = IncidentFactory(number="INC0000100")
    for _ in range(20):
        incident = IncidentFactory(service=vpn, assignee=agent, assignment_group=network_team, parent=parent)
        PostFactory(incident=incident, triage_state=Post.Triage.INCIDENT)

    # The page's keys in order, then its rows; its SLA clocks, ITSM links and the major incident
    # they belong to in one prefetch query each.
    with django_assert_max_num_queries(7):
        response = agent_api.get(LIST)

    assert response.status_code == 200
    assert response.json()["count"] == 21
    assert [row["post_count"] for row in response.json()["results"]].count(1) == 20


def test_list_rows_link_to_their_own_incident_as_reverse_would(agent_api, queue):
    from django.urls import reverse

    IncidentFactory(number="INC0000401")
    IncidentFactory(number="EXT 7:8@ü")
    merged = IncidentFactory(number="INC0000402")
    IncidentFactory(number="INC0000403", merged_into=merged)

    rows = {row["number"]: row for row in agent_api.get(LIST).json()["results"]}

    for number in ("INC0000401", "EXT 7:8@ü", "INC0000402"):
        kwargs = {"number": number}
        assert rows[number]["url"] == "http://testserver" + reverse("socialitsm:incident", kwargs=kwargs)
        assert rows[number]["links"] == {
            name: "http://testserver" + reverse(f"socialitsm-api:incident-{view}", kwargs=kwargs)
            for name, view in (("self", "detail"), ("posts", "posts"), ("events", "events"), ("replies", "replies"))
        }
    assert rows["INC0000403"]["merged_into"] == "INC0000402"


def test_patch_writes_one_event_per_changed_field_and_recomputes_priority(agent_api, agent):
    incident = IncidentFactory(number="INC0000301", category="vpn")

    response = agent_api.patch(f"{LIST}INC0000301/", {"impact": 1, "urgency": 1, "category": "vpn"}, format="json")

    assert response.status_code == 200
    assert (response.json()["impact"], response.json()["urgency"], response.json()["priority"]) == (1, 1, 1)
    incident.refresh_from_db()
    assert (incident.impact, incident.urgency, incident.priority) == (1, 1, 1)
    assert events(incident) == [
        ("changed", "impact", "3", "1", "agent.anna"),
        ("changed", "urgency", "2", "1", "agent.anna"),
        ("changed", "priority", "4", "1", "agent.anna"),
    ]


@pytest.mark.parametrize(
    ("impact", "urgency", "priority"),
    [(1, 1, 1), (1, 2, 2), (1, 3, 3), (2, 1, 2), (2, 2, 3), (2, 3, 4), (3, 1, 3), (3, 2, 4), (3, 3, 5)],
)
def test_patch_priority_follows_the_itil_matrix(agent_api, impact, urgency, priority):
    IncidentFactory(number="INC0000302", impact=2, urgency=2)

    response = agent_api.patch(f"{LIST}INC0000302/", {"impact": impact, "urgency": urgency}, format="json")

    assert response.status_code == 200
    assert response.json()["priority"] == priority
    assert Incident.objects.get(number="INC0000302").priority == priority


def test_patch_changes_every_editable_field(agent_api, agent, network_team):
    incident = IncidentFactory(number="INC0000303", category="vpn")

    response = agent_api.patch(
        f"{LIST}INC0000303/",
        {
            "state": "in_progress",
            "assignee": agent.pk,
            "assignment_group": network_team.pk,
            "service": "email",
            "short_description": "Mail down",
            "category": "email",
        },
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (
        body["state"],
        body["assignee"],
        body["assignment_group"],
        body["service"],
        body["short_description"],
        body["category"],
    ) == (
        "in_progress",
        {"id": agent.pk, "username": "agent.anna"},
        {"id": network_team.pk, "name": "Network team"},
        "email",
        "Mail down",
        "email",
    )
    assert events(incident) == [
        ("changed", "state", "new", "in_progress", "agent.anna"),
        ("changed", "assignee", "", "agent.anna", "agent.anna"),
        ("changed", "assignment_group", "", "Network team", "agent.anna"),
        ("changed", "service", "VPN", "Email", "agent.anna"),
        ("changed", "short_description", "VPN down again", "Mail down", "agent.anna"),
        ("changed", "category", "vpn", "email", "agent.anna"),
    ]


def test_patch_refused_transition_names_state_and_changes_nothing(agent_api):
    incident = IncidentFactory(number="INC0000304", state=Incident.State.CLOSED, closed_at=at(25))

    response = agent_api.patch(f"{LIST}INC0000304/", {"impact": 1, "state": "new"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"state": ["an incident cannot move from Closed to New"]}
    incident.refresh_from_db()
    assert (incident.state, incident.impact, incident.priority) == ("closed", 3, 4)
    assert events(incident) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"priority": 1}, {"priority": ["This field cannot be changed."]}),
        ({"impact": 4}, {"impact": ["Ensure this value is less than or equal to 3."]}),
        ({"state": "done"}, {"state": ['"done" is not a valid choice.']}),
        ({"service": "teleport"}, {"service": ["Object with slug=teleport does not exist."]}),
        ({"assignee": 999999}, {"assignee": ['Invalid pk "999999" - object does not exist.']}),
    ],
)
def test_patch_refuses_invalid_input(agent_api, body, expected):
    incident = IncidentFactory(number="INC0000305")

    response = agent_api.patch(f"{LIST}INC0000305/", body, format="json")

    assert response.status_code == 400
    assert response.json() == expected
    assert events(incident) == []


def test_patch_refuses_a_non_agent_assignee(agent_api, outsider):
    incident = IncidentFactory(number="INC0000306")

    response = agent_api.patch(f"{LIST}INC0000306/", {"assignee": outsider.pk}, format="json")

    assert response.status_code == 400
    assert response.json() == {"assignee": [f'Invalid pk "{outsider.pk}" - object does not exist.']}
    incident.refresh_from_db()
    assert incident.assignee is None


def test_assign_sets_assignee_group_and_starts_work(agent_api, agent, network_team):
    incident = IncidentFactory(number="INC0000401")

    response = agent_api.post(
        f"{LIST}INC0000401/assign/", {"assignee": agent.pk, "group": network_team.pk}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["state"], response.json()["assignee"], response.json()["assignment_group"]) == (
        "in_progress",
        {"id": agent.pk, "username": "agent.anna"},
        {"id": network_team.pk, "name": "Network team"},
    )
    incident.refresh_from_db()
    assert (incident.state, incident.assignee, incident.assignment_group) == ("in_progress", agent, network_team)
    assert events(incident) == [
        ("changed", "assignee", "", "agent.anna", "agent.anna"),
        ("changed", "assignment_group", "", "Network team", "agent.anna"),
        ("changed", "state", "new", "in_progress", "agent.anna"),
    ]


def test_assign_null_unassigns_and_keeps_state(agent_api, agent):
    incident = IncidentFactory(number="INC0000402", state=Incident.State.IN_PROGRESS, assignee=agent)

    response = agent_api.post(f"{LIST}INC0000402/assign/", {"assignee": None}, format="json")

    assert response.status_code == 200
    assert (response.json()["state"], response.json()["assignee"]) == ("in_progress", None)
    incident.refresh_from_db()
    assert incident.assignee is None
    assert events(incident) == [("changed", "assignee", "agent.anna", "", "agent.anna")]


def test_assign_requires_the_assignee_key(agent_api):
    incident = IncidentFactory(number="INC0000403")

    response = agent_api.post(f"{LIST}INC0000403/assign/", {}, format="json")

    assert response.status_code == 400
    assert response.json() == {"assignee": ["This field is required."]}
    assert events(incident) == []


def test_resolve_stamps_resolution(agent_api):
    incident = IncidentFactory(number="INC0000501", state=Incident.State.IN_PROGRESS)
    before = timezone.now()

    response = agent_api.post(f"{LIST}INC0000501/resolve/")

    assert response.status_code == 200
    assert response.json()["state"] == "resolved"
    incident.refresh_from_db()
    assert incident.state == "resolved"
    assert before <= incident.resolved_at <= timezone.now()
    assert response.json()["resolved_at"] == incident.resolved_at.isoformat().replace("+00:00", "Z")
    assert events(incident) == [("changed", "state", "in_progress", "resolved", "agent.anna")]


def test_resolve_a_closed_incident_is_refused(agent_api):
    incident = IncidentFactory(number="INC0000502", state=Incident.State.CLOSED)

    response = agent_api.post(f"{LIST}INC0000502/resolve/")

    assert response.status_code == 400
    assert response.json() == {"state": ["an incident cannot move from Closed to Resolved"]}
    incident.refresh_from_db()
    assert (incident.state, incident.resolved_at) == ("closed", None)


def test_posts_of_an_incident_oldest_first(agent_api):
    incident = IncidentFactory(number="INC0000601")
    late = PostFactory(incident=incident, triage_state=Post.Triage.INCIDENT, posted_at=at(26, 10), text="still down")
    early = PostFactory(incident=incident, triage_state=Post.Triage.INCIDENT, posted_at=at(26, 8), text="VPN down")
    PostFactory(text="unrelated")

    response = agent_api.get(f"{LIST}INC0000601/posts/")

    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert [(p["id"], p["text"], p["incident"]) for p in response.json()["results"]] == [
        (early.pk, "VPN down", "INC0000601"),
        (late.pk, "still down", "INC0000601"),
    ]


def test_events_of_an_incident(agent_api, agent):
    incident = IncidentFactory(number="INC0000602")
    agent_api.patch(f"{LIST}INC0000602/", {"state": "on_hold"}, format="json")

    response = agent_api.get(f"{LIST}INC0000602/events/")

    assert response.status_code == 200
    event = IncidentEvent.objects.get(incident=incident)
    assert response.json()["results"] == [
        {
            "id": event.pk,
            "kind": "changed",
            "actor": {"id": agent.pk, "username": "agent.anna"},
            "field": "state",
            "old_value": "new",
            "new_value": "on_hold",
            "message": "",
            "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        }
    ]


@pytest.mark.parametrize(
    ("query", "states_only"),
    [
        ("", True),
        ("?state=new&state=resolved", True),
        ("?open=true", True),
        ("?open=false&ordering=-priority", True),
        ("?view=done&page=1", True),
        ("?view=on_hold", True),
        ("?view=all&state=closed", True),
        ("?state=new&open=false", True),
        ("?view=mine", False),
        ("?view=breaching", False),
        ("?priority=4", False),
        ("?state=new&q=vpn", False),
    ],
)
def test_list_count_by_state_alone_comes_from_the_state_counts(agent_api, query, states_only):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for state, n in (("new", 3), ("in_progress", 2), ("on_hold", 1), ("resolved", 2), ("closed", 1), ("canceled", 1)):
        for _ in range(n):
            IncidentFactory(state=state)

    with CaptureQueriesContext(connection) as captured:
        response = agent_api.get(LIST + query)

    assert response.status_code == 200
    rows = response.json()["results"]
    assert response.json()["count"] == len(rows)
    # Counted in full, or up to the cap for a searched list.
    counted = any(
        q["sql"].startswith(
            (
                'SELECT COUNT(*) AS "__count" FROM "socialitsm_incident"',
                'SELECT COUNT(*) FROM (SELECT "socialitsm_incident"',
            )
        )
        for q in captured.captured_queries
    )
    assert counted is not (states_only and connection.vendor == "postgresql")


def test_an_incident_read_any_way_serialises_as_the_list_does(sla_defaults):
    """The list prefetches clocks and ITSM links into plain lists; an incident read without them
    (a service's own query) gives the same representation, its clocks in target order."""
    from rest_framework.test import APIRequestFactory

    from socialitsm import selectors
    from socialitsm.api.serializers import IncidentSerializer
    from socialitsm.models import ItsmConnection, ItsmLink
    from socialitsm.services.incidents import incident_open_from_post

    post = PostFactory()
    incident = incident_open_from_post(post=post, rule=post.rule, service=Service.objects.get(slug="vpn"), urgency=2)
    connection = ItsmConnection.objects.create(name="Suite", slug="suite", kind="fake", base_url="https://s.example")
    ItsmLink.objects.create(connection=connection, incident=incident, external_ref=f"socialitsm:{incident.number}")
    context = {"request": APIRequestFactory().get(LIST), "now": timezone.now()}

    listed = IncidentSerializer(selectors.incident_list().get(pk=incident.pk), context=context).data
    plain = IncidentSerializer(Incident.objects.get(pk=incident.pk), context=context).data

    assert listed == plain
    assert [c["target"] for c in listed["sla"]["clocks"]] == ["first_response", "resolution"]
    assert [link["connection"] for link in listed["itsm_links"]] == ["suite"]


@pytest.mark.parametrize("query", ["", "?state=new", "?search=vpn&priority=2"])
def test_a_list_request_builds_its_filters_once(agent_api, monkeypatch, query):
    """The filter backend, the count and the paging read one filterset of the request."""
    from socialitsm.api import views
    from socialitsm.api.filters import IncidentFilter

    built = []

    class Counted(IncidentFilter):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(views, "IncidentFilter", Counted)
    monkeypatch.setattr(views.IncidentViewSet, "filterset_class", Counted)
    IncidentFactory(short_description="vpn down", priority=2)
    response = agent_api.get(LIST + query)
    assert response.status_code == 200
    assert len(built) == 1
