from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from socialitsm.models import Post, Service
from socialitsm.services.routing import post_promote, post_promote_proposal

from ..factories import PostFactory, WatchRuleFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
TRIAGE = "/posts/"


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


def listed(response) -> list[int]:
    return [post.pk for post in response.context["page"].object_list]


def test_a_post_labelled_not_a_complaint_leaves_the_list_for_dismissed(agent_client):
    keep = PostFactory(text="printer jammed", triage_state=Post.Triage.QUEUED, posted_at=T0)
    drop = PostFactory(text="lunch anyone?", triage_state=Post.Triage.QUEUED, posted_at=T0 + timedelta(minutes=1))

    response = agent_client.post(
        reverse("socialitsm:post-label", args=[drop.pk]), {"label": "not_complaint", "back": "/posts/?state=queued"}
    )

    assert response["Location"] == "/posts/?state=queued"
    assert listed(agent_client.get(TRIAGE)) == [keep.pk]
    assert listed(agent_client.get(TRIAGE, {"state": "queued"})) == [keep.pk]
    dismissed = agent_client.get(TRIAGE, {"state": "dismissed"})
    assert listed(dismissed) == [drop.pk]
    assert [(t["state"], t["count"]) for t in dismissed.context["tabs"]] == [
        ("", 1),
        ("queued", 1),
        ("ignored", 0),
        ("parked", 0),
        ("dismissed", 1),
    ]
    drop.refresh_from_db()
    assert (drop.label, drop.triage_state) == ("not_complaint", Post.Triage.QUEUED)


def test_labelling_a_dismissed_post_a_complaint_brings_it_back(agent_client):
    post = PostFactory(triage_state=Post.Triage.IGNORED, label=Post.Label.NOT_COMPLAINT)

    agent_client.post(reverse("socialitsm:post-label", args=[post.pk]), {"label": "complaint"})

    assert listed(agent_client.get(TRIAGE)) == [post.pk]
    assert listed(agent_client.get(TRIAGE, {"state": "dismissed"})) == []


def test_label_never_sends_the_agent_to_another_site(agent_client):
    post = PostFactory(triage_state=Post.Triage.QUEUED)

    response = agent_client.post(
        reverse("socialitsm:post-label", args=[post.pk]),
        {"label": "complaint", "back": "https://evil.example.com/posts/"},
    )

    assert response["Location"] == "/posts/"


@pytest.mark.parametrize(
    ("fields", "impact", "urgency", "priority"),
    [
        # The classifier's own urgency for a complaint it queued.
        ({"is_complaint": True, "urgency_hint": 1, "text": "VPN is slow"}, 3, 1, 3),
        # Not taken for a complaint (urgency 3): a complaint's urgency from its text.
        ({"is_complaint": False, "urgency_hint": 3, "text": "VPN is slow"}, 3, 2, 4),
        ({"is_complaint": False, "urgency_hint": 3, "text": "VPN outage, nobody can work"}, 3, 1, 3),
    ],
)
def test_promote_proposes_the_classifiers_service_and_a_priority_from_urgency(fields, impact, urgency, priority):
    vpn = Service.objects.get(slug="vpn")
    post = PostFactory(triage_state=Post.Triage.QUEUED, detected_service=vpn, **fields)

    proposal = post_promote_proposal(post)

    assert (proposal.service, proposal.impact, proposal.urgency, proposal.priority) == (vpn, impact, urgency, priority)


def test_promote_proposes_the_rules_service_when_the_classifier_found_none():
    email = Service.objects.get(slug="email")
    rule = WatchRuleFactory(default_service=email, default_impact=2)
    post = PostFactory(triage_state=Post.Triage.IGNORED, rule=rule, text="mail is slow today")

    proposal = post_promote_proposal(post)

    assert (proposal.service, proposal.impact, proposal.urgency, proposal.priority) == (email, 2, 2, 3)


def test_triage_form_is_prefilled_with_the_proposal(agent_client):
    vpn = Service.objects.get(slug="vpn")
    post = PostFactory(triage_state=Post.Triage.QUEUED, detected_service=vpn, is_complaint=True, urgency_hint=2)

    body = agent_client.get(TRIAGE).content.decode()

    assert f'<option value="{vpn.pk}" selected>{vpn.name}</option>' in body
    assert '<option value="4" selected>P4 - Low</option>' in body
    assert reverse("socialitsm:post-promote", args=[post.pk]) in body


def test_promote_opens_the_incident_with_the_chosen_service_and_priority(agent_client, agent):
    email = Service.objects.get(slug="email")
    post = PostFactory(
        triage_state=Post.Triage.QUEUED, detected_service=Service.objects.get(slug="vpn"), urgency_hint=3
    )

    response = agent_client.post(
        reverse("socialitsm:post-promote", args=[post.pk]), {"service": email.pk, "priority": "2"}
    )

    post.refresh_from_db()
    incident = post.incident
    assert response["Location"] == f"/incidents/{incident.number}/"
    assert (incident.service, incident.priority, incident.impact, incident.urgency) == (email, 2, 2, 1)


def test_promote_with_no_service_chosen_opens_it_without_one(agent_client):
    post = PostFactory(triage_state=Post.Triage.QUEUED, detected_service=Service.objects.get(slug="vpn"))

    agent_client.post(reverse("socialitsm:post-promote", args=[post.pk]), {"service": "", "priority": "3"})

    post.refresh_from_db()
    assert (post.incident.service, post.incident.priority) == (None, 3)


def test_promote_refuses_an_unknown_priority_and_opens_nothing(agent_client):
    post = PostFactory(triage_state=Post.Triage.QUEUED)

    response = agent_client.post(
        reverse("socialitsm:post-promote", args=[post.pk]), {"priority": "9", "back": "/posts/?state=queued"}
    )

    assert response["Location"] == "/posts/?state=queued"
    post.refresh_from_db()
    assert post.incident is None


def test_promote_without_choices_is_no_longer_a_planning_priority(agent):
    post = PostFactory(triage_state=Post.Triage.QUEUED, is_complaint=False, urgency_hint=3, text="VPN is slow")

    incident = post_promote(post=post, actor=agent)

    assert incident.priority == 4
