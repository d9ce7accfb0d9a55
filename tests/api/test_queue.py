"""The API's queue: search, views, saved views and bulk changes."""

from __future__ import annotations

import pytest

from socialitsm.models import Incident, IncidentEvent, SavedView

from ..factories import AuthorFactory, IncidentFactory, PostFactory, UserFactory

pytestmark = pytest.mark.django_db


def numbers(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["number"] for row in response.json()["results"]]


@pytest.fixture
def world(agent):
    author = AuthorFactory(handle="@mika", name="Mika Kallio")
    vpn = IncidentFactory(number="INC0000101", short_description="Cannot connect", author=author, assignee=agent)
    PostFactory(incident=vpn, author=author, text="The VPN gateway times out")
    printer = IncidentFactory(number="INC0000102", short_description="Printer jammed")
    done = IncidentFactory(number="INC0000103", short_description="VPN slow", state=Incident.State.RESOLVED)
    return {"vpn": vpn, "printer": printer, "done": done}


@pytest.mark.parametrize(
    "query, expected",
    [
        ("search=gateway", ["INC0000101"]),
        ("search=kallio", ["INC0000101"]),
        ("search=vpn", ["INC0000101", "INC0000103"]),
        ("search=vpn&open=true", ["INC0000101"]),
        ("search=printer jam", ["INC0000102"]),
        ("search=nothing", []),
        ("view=done", ["INC0000103"]),
        ("view=mine", ["INC0000101"]),
        ("view=unassigned", ["INC0000102"]),
        ("view=all", ["INC0000101", "INC0000102", "INC0000103"]),
    ],
)
def test_incident_search_and_views(agent_api, world, query, expected):
    assert numbers(agent_api.get(f"/api/v1/incidents/?{query}&ordering=opened_at")) == expected


@pytest.mark.parametrize(
    "query, expected",
    [("search=vpn", ["INC0000101", "INC0000103", "INC0000104"]), ("q=vpn", ["INC0000103", "INC0000104"])],
)
def test_a_searched_list_is_counted_up_to_the_cap(agent_api, world, monkeypatch, query, expected):
    IncidentFactory(number="INC0000104", short_description="VPN again")
    monkeypatch.setattr("socialitsm.selectors.SEARCH_COUNT_CAP", 1)

    body = agent_api.get(f"/api/v1/incidents/?{query}&ordering=opened_at").json()
    second = agent_api.get(f"/api/v1/incidents/?{query}&ordering=opened_at&page=2").json()

    # Exact up to the cap, the cap and one beyond it.
    assert body["count"] == 2
    assert [row["number"] for row in body["results"]] == expected
    assert body["next"] is None
    assert second.get("results") is None


def test_unknown_view_is_a_400(agent_api, world):
    response = agent_api.get("/api/v1/incidents/?view=everything")
    assert response.status_code == 400
    assert "view" in response.json()


def test_post_search(agent_api, world):
    PostFactory(text="Printer on fire")
    response = agent_api.get("/api/v1/posts/?search=printer")
    assert [row["text"] for row in response.json()["results"]] == ["Printer on fire"]
    response = agent_api.get("/api/v1/posts/?search=mika")
    assert [row["text"] for row in response.json()["results"]] == ["The VPN gateway times out"]


# Saved views


def test_saved_views_are_per_user_unless_shared(agent_api, agent):
    other = UserFactory(username="otto")
    SavedView.objects.create(user=other, name="Otto's private", query={"view": "mine"})
    shared = SavedView.objects.create(user=other, name="Team P1", query={"priority": "1"}, shared=True)

    created = agent_api.post(
        "/api/v1/saved-views/", {"name": "My VPN", "query": {"view": "mine", "search": "vpn"}}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["query"] == {"view": "mine", "search": "vpn"}
    assert created.json()["mine"] is True

    listed = agent_api.get("/api/v1/saved-views/").json()["results"]
    assert [(v["name"], v["owner"], v["mine"]) for v in listed] == [
        ("My VPN", "agent.anna", True),
        ("Team P1", "otto", False),
    ]
    assert agent_api.delete(f"/api/v1/saved-views/{shared.pk}/").status_code == 404
    assert SavedView.objects.filter(pk=shared.pk).exists()
    assert agent_api.delete(f"/api/v1/saved-views/{created.json()['id']}/").status_code == 204
    assert list(SavedView.objects.filter(user=agent)) == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "", "query": {}}, "name"),
        ({"name": "x", "query": {"drop": "table"}}, "query"),
        ({"name": "x", "query": {"view": "everything"}}, "query"),
        ({"name": "x", "query": {"q": "a" * 201}}, "query"),
    ],
)
def test_saved_view_bad_input(agent_api, body, field):
    response = agent_api.post("/api/v1/saved-views/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not SavedView.objects.exists()


def test_saved_view_names_are_unique_per_user(agent_api):
    agent_api.post("/api/v1/saved-views/", {"name": "Mine", "query": {"view": "mine"}}, format="json")
    again = agent_api.post("/api/v1/saved-views/", {"name": "Mine", "query": {}}, format="json")
    assert again.status_code == 400
    assert again.json() == {"name": ["you already have a view named 'Mine'"]}


def test_saved_views_need_an_agent(api, outsider_api):
    assert api.get("/api/v1/saved-views/").status_code == 401
    assert outsider_api.get("/api/v1/saved-views/").status_code == 403
    assert outsider_api.post("/api/v1/saved-views/", {"name": "x", "query": {}}, format="json").status_code == 403


# Bulk


def test_bulk_assign_reports_per_incident(agent_api, agent, world):
    response = agent_api.post(
        "/api/v1/incidents/bulk/",
        {"incidents": ["INC0000102", "INC0000103"], "action": "assign", "assignee": agent.pk},
        format="json",
    )
    assert response.status_code == 200
    assert response.json() == {
        "changed": 2,
        "failed": 0,
        "results": [
            {"number": "INC0000102", "ok": True, "error": ""},
            {"number": "INC0000103", "ok": True, "error": ""},
        ],
    }
    world["printer"].refresh_from_db()
    assert (world["printer"].assignee, world["printer"].state) == (agent, Incident.State.IN_PROGRESS)


def test_bulk_state_with_one_refused(agent_api, world):
    IncidentFactory(number="INC0000104", state=Incident.State.CLOSED)
    response = agent_api.post(
        "/api/v1/incidents/bulk/",
        {"incidents": ["INC0000102", "INC0000104"], "action": "state", "state": "on_hold"},
        format="json",
    )
    assert response.json() == {
        "changed": 1,
        "failed": 1,
        "results": [
            {"number": "INC0000102", "ok": True, "error": ""},
            {"number": "INC0000104", "ok": False, "error": "an incident cannot move from Closed to On hold"},
        ],
    }


def test_bulk_priority_and_link(agent_api, agent, world):
    from socialitsm.services.major import major_open

    major = major_open(incidents=[IncidentFactory()], actor=agent, short_description="Outage")
    priority = agent_api.post(
        "/api/v1/incidents/bulk/", {"incidents": ["INC0000102"], "action": "priority", "priority": 1}, format="json"
    )
    link = agent_api.post(
        "/api/v1/incidents/bulk/",
        {"incidents": ["INC0000101", "INC0000102"], "action": "link", "major": major.number},
        format="json",
    )
    assert (priority.json()["changed"], link.json()["changed"]) == (1, 2)
    assert Incident.objects.get(number="INC0000102").priority == 1
    assert set(major.children.values_list("number", flat=True)) >= {"INC0000101", "INC0000102"}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"incidents": ["INC0000102"], "action": "state"}, "state"),
        ({"incidents": ["INC0000102"], "action": "fly"}, "action"),
        ({"incidents": [], "action": "state", "state": "on_hold"}, "incidents"),
        ({"incidents": ["INC0009999"], "action": "state", "state": "on_hold"}, "incidents"),
        ({"incidents": ["INC0000102"], "action": "link", "major": "INC0000101"}, "major"),
    ],
)
def test_bulk_bad_input_changes_nothing(agent_api, world, body, field):
    response = agent_api.post("/api/v1/incidents/bulk/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not IncidentEvent.objects.exists()


def test_bulk_needs_an_agent(api, outsider_api, world):
    body = {"incidents": ["INC0000102"], "action": "state", "state": "on_hold"}
    assert api.post("/api/v1/incidents/bulk/", body, format="json").status_code == 401
    assert outsider_api.post("/api/v1/incidents/bulk/", body, format="json").status_code == 403
    assert not IncidentEvent.objects.exists()
