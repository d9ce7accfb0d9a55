from __future__ import annotations

from datetime import UTC, datetime

import pytest

from socialitsm.models import Incident, IncidentEvent, Post, Reply, Service
from socialitsm.services.routing import posts_process

from ..factories import AuthorFactory, IncidentFactory, PostFactory, ReplyFactory, WatchRuleFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
INCIDENTS = "/api/v1/incidents/"


def _routed(author=None, text: str = "Email is down again, nothing arrives", **extra) -> Post:
    post = PostFactory(author=author or AuthorFactory(), text=text, **extra)
    posts_process(post_ids=[post.pk])
    post.refresh_from_db()
    return post


def test_open_a_major_incident_from_selected_incidents(agent_api, agent):
    first, second = IncidentFactory(), IncidentFactory()
    response = agent_api.post(
        f"{INCIDENTS}major/",
        {"incidents": [first.number, second.number], "short_description": "VPN gateway down", "impact": 1},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["is_major"] is True
    assert body["short_description"] == "VPN gateway down"
    assert body["service"] == "vpn"
    assert body["priority"] == 2
    major = Incident.objects.get(number=body["number"])
    assert set(major.children.values_list("number", flat=True)) == {first.number, second.number}
    first.refresh_from_db()
    assert first.events.get(kind=IncidentEvent.Kind.MAJOR_LINKED).actor == agent
    detail = agent_api.get(f"{INCIDENTS}{first.number}/").json()
    assert detail["parent"] == major.number


def test_open_refuses_unknown_numbers_and_creates_nothing(agent_api):
    response = agent_api.post(f"{INCIDENTS}major/", {"incidents": ["INC404"]}, format="json")
    assert response.status_code == 400
    assert response.json() == {"incidents": ["no incident INC404"]}
    assert Incident.objects.filter(is_major=True).count() == 0


def test_link_unlink_and_errors(agent_api):
    major = Incident.objects.get(
        number=agent_api.post(f"{INCIDENTS}major/", {"incidents": [IncidentFactory().number]}, format="json").json()[
            "number"
        ]
    )
    child = IncidentFactory()
    response = agent_api.post(f"{INCIDENTS}{major.number}/link/", {"incidents": [child.number]}, format="json")
    assert response.status_code == 200
    child.refresh_from_db()
    assert child.parent == major

    again = agent_api.post(f"{INCIDENTS}{child.number}/link/", {"incidents": [IncidentFactory().number]}, format="json")
    assert again.status_code == 400
    assert again.json() == {"major": [f"{child.number} is not a major incident"]}

    as_child = agent_api.post(f"{INCIDENTS}{major.number}/link/", {"incidents": [major.number]}, format="json")
    assert as_child.status_code == 400

    assert agent_api.post(f"{INCIDENTS}{child.number}/unlink/").status_code == 200
    child.refresh_from_db()
    assert child.parent is None
    conflict = agent_api.post(f"{INCIDENTS}{child.number}/unlink/")
    assert conflict.status_code == 409
    assert conflict.json() == {"detail": f"{child.number} is not linked to a major incident"}


def test_link_to_a_resolved_major_is_a_conflict(agent_api):
    major = agent_api.post(f"{INCIDENTS}major/", {"incidents": [IncidentFactory().number]}, format="json").json()
    assert agent_api.post(f"{INCIDENTS}{major['number']}/resolve/").status_code == 200
    response = agent_api.post(
        f"{INCIDENTS}{major['number']}/link/", {"incidents": [IncidentFactory().number]}, format="json"
    )
    assert response.status_code == 409


def test_resolve_through_the_api_resolves_children(agent_api):
    children = [IncidentFactory(), IncidentFactory()]
    major = agent_api.post(f"{INCIDENTS}major/", {"incidents": [c.number for c in children]}, format="json").json()
    agent_api.post(f"{INCIDENTS}{major['number']}/resolve/")
    assert sorted(Incident.objects.filter(pk__in=[c.pk for c in children]).values_list("state", flat=True)) == [
        "resolved",
        "resolved",
    ]


def test_merge_and_unmerge(agent_api):
    author = AuthorFactory()
    target = _routed(author, "VPN down again").incident
    duplicate = _routed(author, "VPN still down").incident
    response = agent_api.post(f"{INCIDENTS}{duplicate.number}/merge/", {"into": target.number}, format="json")
    assert response.status_code == 200
    assert response.json()["number"] == target.number
    assert response.json()["post_count"] == 2
    merged = agent_api.get(f"{INCIDENTS}{duplicate.number}/").json()
    assert (merged["state"], merged["merged_into"]) == ("canceled", target.number)

    response = agent_api.post(f"{INCIDENTS}{duplicate.number}/unmerge/")
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["merged_into"], response.json()["post_count"]) == ("new", None, 1)
    assert agent_api.post(f"{INCIDENTS}{duplicate.number}/unmerge/").status_code == 409


def test_merge_of_other_posters_needs_a_lead(agent_api, lead_api):
    target = _routed(text="VPN down again").incident
    duplicate = _routed(text="VPN down for me too").incident
    url = f"{INCIDENTS}{duplicate.number}/merge/"
    refused = agent_api.post(url, {"into": target.number}, format="json")
    assert refused.status_code == 409
    assert "different posters" in refused.json()["detail"]
    forbidden = agent_api.post(url, {"into": target.number, "other_author": True}, format="json")
    assert forbidden.status_code == 403
    assert Post.objects.filter(incident=target).count() == 1
    assert lead_api.post(url, {"into": target.number, "other_author": True}, format="json").status_code == 200
    assert Post.objects.filter(incident=target).count() == 2


@pytest.mark.parametrize(
    ("body", "code", "expected"),
    [
        ({}, 400, {"into": ["This field is required."]}),
        ({"into": "INC404"}, 400, {"into": ["no incident INC404"]}),
    ],
)
def test_merge_bad_input(agent_api, body, code, expected):
    duplicate = _routed(text="VPN still down").incident
    response = agent_api.post(f"{INCIDENTS}{duplicate.number}/merge/", body, format="json")
    assert (response.status_code, response.json()) == (code, expected)


def test_merge_into_itself_is_a_400(agent_api):
    incident = _routed(text="VPN still down").incident
    response = agent_api.post(f"{INCIDENTS}{incident.number}/merge/", {"into": incident.number}, format="json")
    assert response.status_code == 400
    assert response.json() == {"into": ["an incident cannot be merged into itself"]}


def test_affected_posters_and_spike_growth(agent_api, clock):
    rule = WatchRuleFactory()
    posts = [
        PostFactory(
            rule=rule,
            author=AuthorFactory(handle=f"@mail{n}"),
            text=f"Email is down again, nothing arrives ({n})",
            posted_at=datetime(2026, 11, 26, 8, 50 + n // 2, 10, tzinfo=UTC),
        )
        for n in range(5)
    ]
    posts_process(post_ids=[p.pk for p in posts])
    major = Incident.objects.get(is_major=True)
    answered = Post.objects.get(pk=posts[0].pk)
    ReplyFactory(post=answered, incident=answered.incident, status=Reply.Status.SENT, sent_at=NOW)

    rows = agent_api.get(f"{INCIDENTS}{major.number}/affected/").json()
    assert rows["count"] == 5
    first = rows["results"][0]
    assert first == {
        "incident": answered.incident.number,
        "state": "new",
        "handle": "@mail0",
        "network": "replay",
        "post_text": "Email is down again, nothing arrives (0)",
        "post_url": "",
        "posted_at": "2026-11-26T08:50:10Z",
        "answered": True,
    }
    assert [r["answered"] for r in rows["results"]] == [True, False, False, False, False]

    growth = agent_api.get(f"{INCIDENTS}{major.number}/spike/").json()
    assert growth["bucket_minutes"] == 1
    assert growth["first_post_at"] == "2026-11-26T08:50:10Z"
    assert [(p["start"][11:16], p["posts"], p["total"]) for p in growth["points"]] == [
        ("08:50", 2, 2),
        ("08:51", 2, 4),
        ("08:52", 1, 5),
    ]
    assert (growth["peak"], growth["total"]) == (2, 5)

    plain = answered.incident.number
    assert agent_api.get(f"{INCIDENTS}{plain}/spike/").status_code == 400


def test_outsiders_get_nothing(outsider_api, api):
    incident = IncidentFactory()
    for client, code in ((outsider_api, 403), (api, 401)):
        assert client.post(f"{INCIDENTS}major/", {"incidents": [incident.number]}, format="json").status_code == code
        assert client.post(f"{INCIDENTS}{incident.number}/unlink/").status_code == code
        assert client.get(f"{INCIDENTS}{incident.number}/affected/").status_code == code
    assert Incident.objects.filter(is_major=True).count() == 0


def test_leads_set_a_service_spike_threshold_agents_cannot(agent_api, lead_api):
    url = "/api/v1/services/email/"
    assert agent_api.get(url).json()["spike_threshold"] == {"authors": 5, "window_minutes": 15}
    assert agent_api.patch(url, {"spike_authors": 3}, format="json").status_code == 403
    response = lead_api.patch(url, {"spike_authors": 3, "spike_window_minutes": 5, "name": "Mail"}, format="json")
    assert response.status_code == 200
    assert response.json()["spike_threshold"] == {"authors": 3, "window_minutes": 5}
    email = Service.objects.get(slug="email")
    assert (email.spike_authors, email.spike_window_minutes, email.name) == (3, 5, "Email")
    bad = lead_api.patch(url, {"spike_authors": 1}, format="json")
    assert bad.status_code == 400
    assert lead_api.put(url, {"spike_authors": 3}, format="json").status_code == 405
