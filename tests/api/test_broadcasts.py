from __future__ import annotations

from datetime import UTC, datetime

import pytest

from socialitsm.models import Broadcast, Network, Reply, StatusPost

from ..factories import (
    ChannelFactory,
    IncidentFactory,
    WatchRuleFactory,
    major_child,
    major_incident,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def major():
    major = major_incident(number="INC0000900")
    rule = WatchRuleFactory(channel=ChannelFactory(slug="support", network=Network.MASTODON))
    for n, handle in enumerate(["@ana", "@bo"]):
        major_child(major, rule, handle=handle, name=handle[1:].title(), number=f"INC000091{n}")
    return major


URL = "/api/v1/incidents/INC0000900/broadcasts/"


def test_draft_answers_the_preview_and_sends_nothing(
    agent_api, major, fake_network, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_api.post(URL, {"text": "Hi {name}, {service} is down ({incident})"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["kind"], body["visibility"], body["replies"]) == ("draft", "update", "public", [])
    assert [(r["handle"], r["incident"], r["text"], r["visibility"], r["reason"]) for r in body["recipients"]] == [
        ("@ana", "INC0000910", "Hi Ana, Email is down (INC0000910)", "public", ""),
        ("@bo", "INC0000911", "Hi Bo, Email is down (INC0000911)", "public", ""),
    ]
    assert fake_network.sent == []
    assert Reply.objects.count() == 0


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"text": "Hi {name.__dict__}"}, "text", "unknown variable {name.__dict__}"),
        ({"text": "  "}, "text", "This field may not be blank."),
        ({"text": "Hi", "visibility": "shout"}, "visibility", '"shout" is not a valid choice.'),
    ],
)
def test_bad_draft_is_a_400_naming_the_field(agent_api, major, body, field, message):
    response = agent_api.post(URL, body, format="json")
    assert response.status_code == 400
    assert message in response.json()[field][0]
    assert Broadcast.objects.count() == 0


def test_confirm_sends_and_a_second_confirm_sends_nothing(
    agent_api, major, fake_network, django_capture_on_commit_callbacks
):
    draft = agent_api.post(URL, {"text": "Hi {name}"}, format="json").json()
    bo = next(r["author"] for r in draft["recipients"] if r["handle"] == "@bo")
    confirm = f"{URL}{draft['id']}/confirm/"

    with django_capture_on_commit_callbacks(execute=True):
        first = agent_api.post(confirm, {"exclude": [bo]}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        second = agent_api.post(confirm, {"exclude": []}, format="json")

    assert first.status_code == second.status_code == 200
    body = second.json()
    assert (body["status"], body["recipient_count"], body["skipped_count"], body["excluded"]) == (
        "confirmed",
        1,
        1,
        [bo],
    )
    assert [(r["handle"], r["status"], r["text"], r["incident"]) for r in body["replies"]] == [
        ("@ana", "sent", "Hi Ana", "INC0000910")
    ]
    assert body["recipients"] == []
    assert [m["text"] for m in fake_network.sent] == ["Hi Ana"]


def test_paced_replies_show_when_they_go(agent_api, major, django_capture_on_commit_callbacks):
    draft = agent_api.post(URL, {"text": "Hi {name}"}, format="json").json()
    with django_capture_on_commit_callbacks(execute=True):
        body = agent_api.post(f"{URL}{draft['id']}/confirm/", {}, format="json").json()
    # Answered as it stood when confirmed; the first reply leaves once the confirmation is committed.
    assert [(r["status"], r["scheduled_at"]) for r in body["replies"]] == [
        ("queued", "2026-11-26T09:00:00Z"),
        ("queued", "2026-11-26T09:00:30Z"),
    ]
    later = agent_api.get(f"{URL}{draft['id']}/").json()
    assert [(r["status"], r["scheduled_at"]) for r in later["replies"]] == [
        ("sent", None),
        ("queued", "2026-11-26T09:00:30Z"),
    ]
    listed = agent_api.get(URL).json()["results"]
    assert [(b["id"], b["sent"], b["pending"]) for b in listed] == [(draft["id"], 1, 1)]
    assert [(r["handle"], r["status"]) for r in listed[0]["replies"]] == [("@ana", "sent"), ("@bo", "queued")]
    assert "recipients" not in listed[0]


def test_edit_and_discard_a_draft(agent_api, major):
    draft = agent_api.post(URL, {"text": "Hi"}, format="json").json()
    detail = f"{URL}{draft['id']}/"
    changed = agent_api.patch(detail, {"text": "Hello {handle}", "visibility": "direct"}, format="json")
    assert changed.status_code == 200
    assert [(r["text"], r["visibility"]) for r in changed.json()["recipients"]] == [
        ("Hello @ana", "direct"),
        ("Hello @bo", "direct"),
    ]
    assert agent_api.post(f"{detail}discard/").json()["status"] == "discarded"
    refused = agent_api.post(f"{detail}confirm/", {}, format="json")
    assert refused.status_code == 409
    assert refused.json() == {"detail": "this broadcast is discarded; write a new one"}
    assert Reply.objects.count() == 0


def test_broadcast_of_another_incident_is_a_404(agent_api, major):
    other = IncidentFactory(number="INC0000999", is_major=True)
    draft = agent_api.post(URL, {"text": "Hi"}, format="json").json()
    assert agent_api.get(f"/api/v1/incidents/{other.number}/broadcasts/{draft['id']}/").status_code == 404
    assert agent_api.get(f"{URL}999999999/").status_code == 404


def test_broadcast_on_an_ordinary_incident_is_refused(agent_api, major):
    response = agent_api.post("/api/v1/incidents/INC0000910/broadcasts/", {"text": "Hi"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": ["INC0000910 is not a major incident; broadcasts go to a major incident's posters"]
    }


@pytest.mark.parametrize("method", ["get", "post"])
def test_broadcasts_need_an_agent(api, outsider, major, method):
    assert getattr(api, method)(URL).status_code == 401
    api.force_authenticate(outsider)
    assert getattr(api, method)(URL, {"text": "Hi"}, format="json").status_code == 403
    assert Broadcast.objects.count() == 0


def test_status_post_endpoint(agent_api, major, fake_network, django_capture_on_commit_callbacks):
    url = "/api/v1/incidents/INC0000900/status-posts/"
    with django_capture_on_commit_callbacks(execute=True):
        created = agent_api.post(url, {"channel": "support", "text": "We know e-mail is down"}, format="json")
    assert created.status_code == 201
    status_post = StatusPost.objects.get()
    assert created.json()["channel"] == "support"
    status_post.refresh_from_db()
    assert (status_post.status, fake_network.statuses[0]["text"]) == ("sent", "We know e-mail is down")
    again = agent_api.post(url, {"channel": "support", "text": "Again"}, format="json")
    assert again.status_code == 409
    assert [p["status"] for p in agent_api.get(url).json()["results"]] == ["sent"]
    unknown = agent_api.post(url, {"channel": "nope", "text": "x"}, format="json")
    assert unknown.status_code == 400
    assert "channel" in unknown.json()
