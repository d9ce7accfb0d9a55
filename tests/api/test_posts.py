from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from socialitsm.connectors import InboundAuthor, InboundPost
from socialitsm.connectors.base import DetailKind, PostDetail
from socialitsm.models import Incident, IncidentEvent, Post, Service
from socialitsm.services.edits import EditOutcome, post_edit

from ..factories import (
    AuthorFactory,
    ChannelFactory,
    IncidentFactory,
    PostFactory,
    WatchRuleFactory,
)

LIST = "/api/v1/posts/"


def at(hour: int) -> datetime:
    return datetime(2026, 11, 26, hour, 0, tzinfo=UTC)


@pytest.fixture
def feed(db) -> dict[str, Post]:
    desk = WatchRuleFactory(channel=ChannelFactory(slug="desk-replay"))
    hook = WatchRuleFactory(channel=ChannelFactory(slug="desk-webhook", network="webhook", config={}))
    maria = AuthorFactory(
        external_id="u-maria", handle="@maria", name="Maria", profile_url="https://example.com/@maria"
    )
    return {
        "ignored": PostFactory(
            external_id="p-1",
            rule=desk,
            text="Lovely weather today",
            posted_at=at(8),
            triage_state=Post.Triage.IGNORED,
            is_complaint=False,
            complaint_score=0.1,
            sentiment=0.6,
            reasons=["below the complaint threshold"],
        ),
        "linked": PostFactory(
            external_id="p-2",
            rule=desk,
            author=maria,
            text="<b>VPN</b> down & again",
            posted_at=at(9),
            url="https://example.com/@maria/p-2",
            details=[
                {"kind": "quote", "text": "<i>VPN</i> down for everyone", "url": "https://example.com/@ops/7"},
                {"kind": "alt_text", "text": "Screenshot: error 809", "url": ""},
                {"kind": "unknown", "text": "dropped", "url": ""},
                "not an object",
            ],
            in_reply_to="p-0",
            conversation_id="c-5",
            language="en",
            triage_state=Post.Triage.INCIDENT,
            is_complaint=True,
            complaint_score=0.92,
            sentiment=-0.7,
            detected_service=Service.objects.get(slug="vpn"),
            urgency_hint=2,
            reasons=["outage word", "repeat"],
            incident=IncidentFactory(number="INC0000801"),
        ),
        "queued": PostFactory(
            external_id="p-3",
            rule=hook,
            text="Mail is slow",
            posted_at=at(10),
            triage_state=Post.Triage.QUEUED,
            is_complaint=True,
            complaint_score=0.55,
            detected_service=Service.objects.get(slug="email"),
            is_direct=True,
        ),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["p-1", "p-2", "p-3"]),
        ("triage_state=ignored", ["p-1"]),
        ("triage_state=queued&triage_state=incident", ["p-2", "p-3"]),
        ("network=webhook", ["p-3"]),
        ("network=replay", ["p-1", "p-2"]),
        ("channel=desk-replay", ["p-1", "p-2"]),
        ("is_complaint=true", ["p-2", "p-3"]),
        ("is_complaint=false", ["p-1"]),
        ("service=vpn", ["p-2"]),
        ("incident=INC0000801", ["p-2"]),
        ("ordering=-posted_at", ["p-3", "p-2", "p-1"]),
    ],
)
def test_post_list_filters(agent_api, feed, query, expected):
    response = agent_api.get(f"{LIST}?{query}")

    assert response.status_code == 200
    assert [p["external_id"] for p in response.json()["results"]] == expected


def test_post_detail_returns_text_as_posted(agent_api, feed):
    post = feed["linked"]

    response = agent_api.get(f"{LIST}{post.pk}/")

    assert response.status_code == 200
    assert response.json() == {
        "id": post.pk,
        "network": "replay",
        "external_id": "p-2",
        "channel": "desk-replay",
        "author": {"handle": "@maria", "name": "Maria", "profile_url": "https://example.com/@maria"},
        "text": "<b>VPN</b> down & again",
        "details": [
            {"kind": "quote", "text": "<i>VPN</i> down for everyone", "url": "https://example.com/@ops/7"},
            {"kind": "alt_text", "text": "Screenshot: error 809", "url": ""},
        ],
        "url": "https://example.com/@maria/p-2",
        "posted_at": "2026-11-26T09:00:00Z",
        "posted_at_reported": "",
        "ingested_at": post.ingested_at.isoformat().replace("+00:00", "Z"),
        "in_reply_to": "p-0",
        "conversation_id": "c-5",
        "language": "en",
        "is_direct": False,
        "is_complaint": True,
        "complaint_score": 0.92,
        "sentiment": -0.7,
        "detected_service": "vpn",
        "urgency_hint": 2,
        "reasons": ["outage word", "repeat"],
        "triage_state": "incident",
        "routing_error": "",
        "routing_failed_at": None,
        "incident": "INC0000801",
        "label": "",
        "labelled_by": None,
        "labelled_at": None,
        "edited_at": None,
        "revisions": [],
    }


def test_an_edited_post_shows_its_earlier_versions(agent_api, feed, time_machine):
    time_machine.move_to(datetime(2026, 11, 26, 11, 0, tzinfo=UTC), tick=False)
    post = feed["linked"]
    for minutes, text in ((5, "VPN down & again, since 8"), (20, "VPN down & again, since 8. Still!")):
        edit = InboundPost(
            external_id="p-2",
            author=InboundAuthor("u-maria"),
            text=text,
            posted_at=at(9),
            edited_at=at(9) + timedelta(minutes=minutes),
            details=(PostDetail(kind=DetailKind.POLL, text=f"Option {minutes}"),),
        )
        assert post_edit(post=post, edit=edit) == EditOutcome.RECORDED

    response = agent_api.get(f"{LIST}{post.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert (body["text"], body["edited_at"]) == ("VPN down & again, since 8. Still!", "2026-11-26T09:20:00Z")
    assert body["revisions"] == [
        {
            "text": "<b>VPN</b> down & again",
            "details": [
                {"kind": "quote", "text": "<i>VPN</i> down for everyone", "url": "https://example.com/@ops/7"},
                {"kind": "alt_text", "text": "Screenshot: error 809", "url": ""},
            ],
            "edited_at": "2026-11-26T09:05:00Z",
            "recorded_at": "2026-11-26T11:00:00Z",
        },
        {
            "text": "VPN down & again, since 8",
            "details": [{"kind": "poll", "text": "Option 5", "url": ""}],
            "edited_at": "2026-11-26T09:20:00Z",
            "recorded_at": "2026-11-26T11:00:00Z",
        },
    ]
    listed = agent_api.get(f"{LIST}?incident=INC0000801").json()["results"]
    assert [len(p["revisions"]) for p in listed] == [2]


def test_the_schema_documents_edits_as_read_only(agent_api):
    schema = agent_api.get("/api/schema/?format=json").json()["components"]["schemas"]
    post = schema["Post"]["properties"]
    assert post["edited_at"] == {
        "type": "string",
        "format": "date-time",
        "readOnly": True,
        "nullable": True,
        "description": "When the author last edited the post, per the network; null if never.",
    }
    assert post["revisions"]["readOnly"] is True
    assert post["revisions"]["items"] == {"$ref": "#/components/schemas/PostRevision"}
    assert set(schema["PostRevision"]["properties"]) == {"text", "details", "edited_at", "recorded_at"}
    assert all(field.get("readOnly") for field in schema["PostRevision"]["properties"].values())


def test_promote_an_ignored_post_opens_an_incident(agent_api, feed):
    post = feed["ignored"]
    Post.objects.filter(pk=post.pk).update(detected_service=Service.objects.get(slug="wifi"), urgency_hint=2)

    response = agent_api.post(f"{LIST}{post.pk}/promote/")

    assert response.status_code == 201
    body = response.json()
    assert (
        body["number"],
        body["state"],
        body["service"],
        body["impact"],
        body["urgency"],
        body["priority"],
        body["post_count"],
    ) == (
        "INC0001001",
        "new",
        "wifi",
        3,
        2,
        4,
        1,
    )
    incident = Incident.objects.get(number="INC0001001")
    post.refresh_from_db()
    assert (post.incident, post.triage_state) == (incident, "incident")
    assert list(
        IncidentEvent.objects.filter(incident=incident).order_by("id").values_list("kind", "actor__username")
    ) == [
        ("opened", "agent.anna"),
        ("post_linked", "agent.anna"),
        ("promoted", "agent.anna"),
    ]


def test_promote_twice_is_refused(agent_api, feed):
    post = feed["ignored"]
    agent_api.post(f"{LIST}{post.pk}/promote/")

    response = agent_api.post(f"{LIST}{post.pk}/promote/")

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["post is already linked to INC0001001"]}
    assert Incident.objects.filter(posts=post).count() == 1
    assert Incident.objects.count() == 2


def test_promote_an_unclassified_post_is_refused(agent_api, feed):
    post = PostFactory(external_id="p-4")

    response = agent_api.post(f"{LIST}{post.pk}/promote/")

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["post has not been classified yet"]}
    post.refresh_from_db()
    assert (post.incident, post.triage_state) == (None, "pending")
    assert Incident.objects.count() == 1


def test_service_catalogue(agent_api):
    response = agent_api.get("/api/v1/services/")

    assert response.status_code == 200
    assert response.json()["count"] == 15
    vpn = next(s for s in response.json()["results"] if s["slug"] == "vpn")
    aliases = vpn.pop("aliases")
    # The English names first; migration 0024 adds French, German and Spanish ones after them
    # (tests/test_migrations.py).
    assert aliases[:4] == ["GlobalProtect", "AnyConnect", "remote access", "Cisco VPN"]
    assert vpn == {
        "slug": "vpn",
        "name": "VPN",
        "description": (
            "VPN remote access to the company network from home or while travelling "
            "(accès à distance, télétravail, Fernzugriff, Homeoffice, acceso remoto, teletrabajo)."
        ),
        "owner_group": None,
        "spike_authors": None,
        "spike_window_minutes": None,
        "spike_threshold": {"authors": 5, "window_minutes": 15},
    }


@pytest.mark.parametrize("label", ["complaint", "not_complaint"])
def test_label_a_post(agent_api, agent, feed, label, time_machine):
    time_machine.move_to(at(12), tick=False)
    post = feed["ignored"]

    response = agent_api.post(f"{LIST}{post.pk}/label/", {"label": label}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["label"], body["labelled_by"], body["labelled_at"]) == (
        post.pk,
        label,
        {"id": agent.pk, "username": "agent.anna"},
        "2026-11-26T12:00:00Z",
    )
    post.refresh_from_db()
    assert (post.label, post.labelled_by, post.labelled_at) == (label, agent, at(12))
    # Labelling is feedback only: the routing outcome stays as it was.
    assert (post.triage_state, post.is_complaint, post.incident) == ("ignored", False, None)


def test_relabel_replaces_the_label_and_the_filter_finds_it(agent_api, feed):
    post = feed["linked"]
    agent_api.post(f"{LIST}{post.pk}/label/", {"label": "complaint"}, format="json")

    agent_api.post(f"{LIST}{post.pk}/label/", {"label": "not_complaint"}, format="json")

    response = agent_api.get(f"{LIST}?label=not_complaint")
    assert [p["external_id"] for p in response.json()["results"]] == ["p-2"]
    assert agent_api.get(f"{LIST}?label=complaint").json()["results"] == []


@pytest.mark.parametrize("payload", [{"label": "spam"}, {"label": ""}, {}])
def test_label_refuses_unknown_labels(agent_api, feed, payload):
    post = feed["ignored"]

    response = agent_api.post(f"{LIST}{post.pk}/label/", payload, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["label"]
    post.refresh_from_db()
    assert (post.label, post.labelled_by, post.labelled_at) == ("", None, None)


def test_label_needs_an_agent(api, outsider, feed):
    post = feed["ignored"]

    assert api.post(f"{LIST}{post.pk}/label/", {"label": "complaint"}, format="json").status_code == 401
    api.force_authenticate(outsider)
    assert api.post(f"{LIST}{post.pk}/label/", {"label": "complaint"}, format="json").status_code == 403
    post.refresh_from_db()
    assert post.label == ""


def test_label_of_a_missing_post_is_404(agent_api, db):
    assert agent_api.post(f"{LIST}999999/label/", {"label": "complaint"}, format="json").status_code == 404
