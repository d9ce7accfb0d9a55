from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import reverse

from socialitsm.connectors import InboundAuthor, InboundPost
from socialitsm.models import Incident, IncidentEvent, Post, Reply, Service
from socialitsm.roles import AGENT_GROUP
from socialitsm.services.edits import EditOutcome, post_edit
from socialitsm.services.incidents import incident_open_from_post
from socialitsm.services.routing import posts_process

from ..factories import (
    AuthorFactory,
    ChannelFactory,
    IncidentFactory,
    PostFactory,
    ReplyFactory,
    UserFactory,
    WatchRuleFactory,
)

pytestmark = pytest.mark.django_db

COMPLAINT = "VPN down again, third time this week"
T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def open_incident(text: str = COMPLAINT, **post_fields) -> tuple[Incident, Post]:
    post = PostFactory(text=text, **post_fields)
    with transaction.atomic():
        incident = incident_open_from_post(
            post=post, rule=post.rule, service=Service.objects.get(slug="vpn"), urgency=2
        )
    post.refresh_from_db()
    return incident, post


def update_data(incident: Incident, **changes) -> dict[str, object]:
    """The update form as the page renders it (with the values it was rendered with), plus changes."""
    shown = {
        "state": incident.state,
        "impact": incident.impact,
        "urgency": incident.urgency,
        "assignee": incident.assignee_id or "",
        "assignment_group": incident.assignment_group_id or "",
        "service": incident.service_id or "",
    }
    return {**shown, **{f"initial-{name}": value for name, value in shown.items()}, **changes}


def listed(response) -> list[str]:
    return [incident.number for incident in response.context["page"].object_list]


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


# Access


def _get_urls(incident: Incident) -> list[str]:
    return [
        reverse("socialitsm:queue"),
        reverse("socialitsm:incident", args=[incident.number]),
        reverse("socialitsm:incident-replies", args=[incident.number]),
        reverse("socialitsm:triage"),
    ]


def test_anonymous_is_sent_to_login(client):
    incident, _ = open_incident()
    for url in _get_urls(incident):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"/accounts/login/?next={url}"


def test_anonymous_post_changes_nothing(client):
    incident, _ = open_incident()
    events = IncidentEvent.objects.count()
    response = client.post(reverse("socialitsm:incident-assign", args=[incident.number]))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert IncidentEvent.objects.count() == events


def test_outsider_is_forbidden_everywhere(client, outsider, agent):
    incident, post = open_incident()
    queued = PostFactory(text=COMPLAINT, triage_state=Post.Triage.QUEUED, complaint_score=0.9)
    events = IncidentEvent.objects.count()
    client.force_login(outsider)
    for url in _get_urls(incident):
        assert client.get(url).status_code == 403, url
    posts = {
        reverse("socialitsm:incident-update", args=[incident.number]): update_data(incident, state="in_progress"),
        reverse("socialitsm:incident-assign", args=[incident.number]): {},
        reverse("socialitsm:incident-reply", args=[incident.number]): {
            "post": post.pk,
            "visibility": "public",
            "text": "Hi",
        },
        reverse("socialitsm:post-promote", args=[queued.pk]): {},
        reverse("socialitsm:post-label", args=[queued.pk]): {"label": "complaint"},
    }
    for url, data in posts.items():
        assert client.post(url, data).status_code == 403, url
    incident.refresh_from_db()
    queued.refresh_from_db()
    assert incident.state == Incident.State.NEW
    assert incident.assignee is None
    assert IncidentEvent.objects.count() == events
    assert Reply.objects.count() == 0
    assert queued.incident is None
    assert Incident.objects.count() == 1


def test_lead_may_use_the_queue(client, lead):
    client.force_login(lead)
    assert client.get(reverse("socialitsm:queue")).status_code == 200


def test_login_page_has_no_nav_for_anonymous(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="username"' in body
    assert reverse("socialitsm:triage") not in body
    assert "Log out" not in body


def test_login_form_logs_an_agent_in(client, agent):
    from ..factories import PASSWORD

    response = client.post(reverse("login"), {"username": "agent.anna", "password": PASSWORD}, follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert "Log out" in response.content.decode()


# Queue


@pytest.fixture
def queue_incidents(agent):
    other = UserFactory(username="agent.otto")
    email = Service.objects.get(slug="email")
    made = {
        "mine_p2": IncidentFactory(assignee=agent, impact=1, urgency=2, opened_at=T0),
        "unassigned_p4_email": IncidentFactory(service=email, impact=2, urgency=3, opened_at=T0),
        "unassigned_p3_early": IncidentFactory(impact=2, urgency=2, opened_at=T0 - timedelta(hours=1)),
        "others_p3": IncidentFactory(assignee=other, impact=2, urgency=2, opened_at=T0, state=Incident.State.ON_HOLD),
        "mine_closed": IncidentFactory(assignee=agent, impact=1, urgency=1, opened_at=T0, state=Incident.State.CLOSED),
    }
    return {name: incident.number for name, incident in made.items()}


def test_queue_lists_open_incidents_by_priority_then_age(agent_client, queue_incidents):
    response = agent_client.get(reverse("socialitsm:queue"))
    assert response.status_code == 200
    assert listed(response) == [
        queue_incidents["mine_p2"],
        queue_incidents["unassigned_p3_early"],
        queue_incidents["others_p3"],
        queue_incidents["unassigned_p4_email"],
    ]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("mine=on", ["mine_p2"]),
        ("unassigned=on", ["unassigned_p3_early", "unassigned_p4_email"]),
        ("service=email", ["unassigned_p4_email"]),
        ("service=vpn", ["mine_p2", "unassigned_p3_early", "others_p3"]),
        ("priority=3", ["unassigned_p3_early", "others_p3"]),
        ("state=on_hold", ["others_p3"]),
        ("unassigned=on&service=vpn", ["unassigned_p3_early"]),
    ],
)
def test_queue_filters(agent_client, queue_incidents, query, expected):
    response = agent_client.get(f"{reverse('socialitsm:queue')}?{query}")
    assert listed(response) == [queue_incidents[name] for name in expected]


def test_queue_shows_counts_per_filter(agent_client, queue_incidents):
    response = agent_client.get(reverse("socialitsm:queue"))
    counts = response.context["counts"]
    assert (counts["all"], counts["mine"], counts["unassigned"]) == (4, 1, 2)
    assert counts["service"] == {"vpn": 3, "email": 1}
    assert counts["priority"] == {2: 1, 3: 2, 4: 1}
    body = response.content.decode()
    assert '<option value="email">Email (1)</option>' in body
    assert '<option value="3">P3 (2)</option>' in body


def test_queue_rows_link_to_the_incident(agent_client, queue_incidents):
    body = agent_client.get(reverse("socialitsm:queue")).content.decode()
    number = queue_incidents["mine_p2"]
    assert f'href="/incidents/{number}/"' in body
    assert "P2</span>" in body


def test_queue_queries_do_not_grow_with_rows(agent_client, agent, django_assert_max_num_queries):
    for _ in range(3):
        IncidentFactory(assignee=agent, assignment_group=Group.objects.get(name=AGENT_GROUP))
    # Fixed cost: session, user, counts per filter and view (breaching from the clocks), live stamp,
    # saved views, agents to assign, the header's unread notifications; one query reads the page's
    # keys in order, one its rows.
    with django_assert_max_num_queries(19) as few:
        agent_client.get(reverse("socialitsm:queue"))
    for _ in range(20):
        IncidentFactory(assignee=agent, assignment_group=Group.objects.get(name=AGENT_GROUP))
    with django_assert_max_num_queries(len(few.captured_queries)):
        agent_client.get(reverse("socialitsm:queue"))


def test_queue_pages_by_fifty(agent_client):
    for _ in range(51):
        IncidentFactory()
    first = agent_client.get(reverse("socialitsm:queue"))
    second = agent_client.get(f"{reverse('socialitsm:queue')}?page=2")
    assert len(first.context["page"].object_list) == 50
    assert len(second.context["page"].object_list) == 1


# Incident page: untrusted text


def test_post_text_is_escaped_with_line_breaks(agent_client):
    incident, _ = open_incident(text="<script>alert(1)</script>\nVPN is down")
    body = agent_client.get(reverse("socialitsm:incident", args=[incident.number])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>VPN is down" in body
    assert "<script>alert(1)" not in body


def test_post_text_is_escaped_in_triage(agent_client):
    PostFactory(text="<script>alert(1)</script>", triage_state=Post.Triage.IGNORED)
    body = agent_client.get(reverse("socialitsm:triage")).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script>alert(1)" not in body


def test_javascript_url_is_not_a_link(agent_client):
    incident, _ = open_incident(url="javascript:alert(document.cookie)")
    body = agent_client.get(reverse("socialitsm:incident", args=[incident.number])).content.decode()
    assert "javascript:" not in body
    assert "post-link" not in body


def test_https_url_is_a_link(agent_client):
    incident, _ = open_incident(url="https://social.example.com/@p/1")
    body = agent_client.get(reverse("socialitsm:incident", args=[incident.number])).content.decode()
    assert 'class="post-link" href="https://social.example.com/@p/1" rel="noopener noreferrer nofollow"' in body


DETAILS = [
    {"kind": "quote", "text": "VPN down <b>for everyone</b>", "url": "https://social.example.com/@ops/7"},
    {"kind": "poll", "text": "Down for me too", "url": ""},
    {"kind": "poll", "text": "Works here", "url": ""},
    {"kind": "alt_text", "text": "Screenshot: error 809", "url": "javascript:alert(1)"},
    {"kind": "media", "text": "", "url": "https://files.example.com/2.png"},
]
SHOWN_DETAILS = (
    '<li class="detail-quote" data-detail="quote"><span class="detail-kind">Quoted post:</span> '
    'VPN down &lt;b&gt;for everyone&lt;/b&gt; <a href="https://social.example.com/@ops/7" '
    'rel="noopener noreferrer nofollow" target="_blank">open</a></li>',
    '<li class="detail-poll" data-detail="poll"><span class="detail-kind">Poll:</span> '
    "Down for me too / Works here</li>",
    '<li class="detail-alt_text" data-detail="alt_text"><span class="detail-kind">Image description:</span> '
    "Screenshot: error 809</li>",
    '<li class="detail-media" data-detail="media"><span class="detail-kind">Attachment:</span>  '
    '<a href="https://files.example.com/2.png" rel="noopener noreferrer nofollow" target="_blank">'
    "https://files.example.com/2.png</a></li>",
)


def test_post_details_are_shown_escaped_beside_the_text(agent_client):
    incident, _ = open_incident(text="this, again", details=DETAILS)
    PostFactory(text="this, again", details=DETAILS, triage_state=Post.Triage.IGNORED)
    for url in (reverse("socialitsm:incident", args=[incident.number]), reverse("socialitsm:triage")):
        body = agent_client.get(url).content.decode()
        for shown in SHOWN_DETAILS:
            assert shown in body, url
        assert "javascript:" not in body
        assert "<b>for everyone" not in body


def test_reply_box_says_a_reply_to_a_followers_only_post_goes_to_followers_only(agent_client):
    channel = ChannelFactory(network="mastodon", base_url="https://mastodon.example", config={"account_id": "1"})
    author = AuthorFactory(network="mastodon", handle="@omar@hachyderm.example")
    incident, _ = open_incident(rule=WatchRuleFactory(channel=channel), author=author, raw={"visibility": "private"})
    body = agent_client.get(reverse("socialitsm:incident", args=[incident.number])).content.decode()
    audience = (
        "Followers only: @omar@hachyderm.example and our account&#x27;s followers see it. "
        "The post answered was for followers only, and a reply reaches no further."
    )
    assert f'data-public-audience="{audience}"' in body
    assert f'<p class="audience muted" id="reply-audience" data-reply-audience>{audience}</p>' in body
    assert 'data-direct-audience="Direct message: only @omar@hachyderm.example sees it."' in body


def test_incident_page_shows_post_verdict_and_timeline(agent_client):
    incident, post = open_incident()
    Post.objects.filter(pk=post.pk).update(
        complaint_score=0.8731, urgency_hint=2, reasons=["'down' outage", "service vpn"]
    )
    response = agent_client.get(reverse("socialitsm:incident", args=[incident.number]))
    body = response.content.decode()
    assert "<strong>0.87</strong>" in body
    assert "<li>&#x27;down&#x27; outage</li><li>service vpn</li>" in body
    assert [e.kind for e in response.context["events"]] == ["opened", "post_linked"]


# Incident page: update and assign


def test_update_records_one_event_per_changed_field(agent_client, agent):
    incident, _ = open_incident()
    response = agent_client.post(
        reverse("socialitsm:incident-update", args=[incident.number]),
        update_data(incident, state="in_progress", assignee=agent.pk),
        follow=True,
    )
    assert response.redirect_chain == [(f"/incidents/{incident.number}/", 302)]
    assert messages_of(response) == [f"{incident.number} updated: state, assignee."]
    changed = list(
        IncidentEvent.objects.filter(incident=incident, kind=IncidentEvent.Kind.CHANGED)
        .order_by("id")
        .values_list("field", "old_value", "new_value", "actor__username")
    )
    assert changed == [("state", "new", "in_progress", "agent.anna"), ("assignee", "", "agent.anna", "agent.anna")]


def test_update_rejects_closed_to_new(agent_client):
    incident, _ = open_incident()
    Incident.objects.filter(pk=incident.pk).update(state=Incident.State.CLOSED)
    incident.refresh_from_db()
    events = IncidentEvent.objects.count()
    response = agent_client.post(
        reverse("socialitsm:incident-update", args=[incident.number]), update_data(incident, state="new"), follow=True
    )
    assert messages_of(response) == ["an incident cannot move from Closed to New"]
    incident.refresh_from_db()
    assert incident.state == Incident.State.CLOSED
    assert IncidentEvent.objects.count() == events


def test_update_leaves_a_colleagues_change_alone(agent_client, lead):
    incident, _ = open_incident()
    rendered = update_data(incident, state="in_progress")
    Incident.objects.filter(pk=incident.pk).update(assignee=lead)
    agent_client.post(reverse("socialitsm:incident-update", args=[incident.number]), rendered)
    incident.refresh_from_db()
    assert incident.state == Incident.State.IN_PROGRESS
    assert incident.assignee == lead


def test_update_offers_only_agents_as_assignees(agent_client, agent, lead, outsider):
    incident, _ = open_incident()
    form = agent_client.get(reverse("socialitsm:incident", args=[incident.number])).context["update_form"]
    assert [u.username for u in form.fields["assignee"].queryset] == ["agent.anna", "lead.lars"]


def test_update_with_no_change_records_nothing(agent_client):
    incident, _ = open_incident()
    events = IncidentEvent.objects.count()
    response = agent_client.post(
        reverse("socialitsm:incident-update", args=[incident.number]), update_data(incident), follow=True
    )
    assert messages_of(response) == ["Nothing changed."]
    assert IncidentEvent.objects.count() == events


def test_assign_to_me(agent_client, agent):
    incident, _ = open_incident()
    response = agent_client.post(reverse("socialitsm:incident-assign", args=[incident.number]), follow=True)
    assert messages_of(response) == [f"{incident.number} is assigned to you."]
    incident.refresh_from_db()
    assert incident.assignee == agent
    assert incident.state == Incident.State.IN_PROGRESS


# Incident page: replies


@pytest.mark.parametrize("visibility", ["public", "direct"])
def test_reply_is_queued_and_sent(agent_client, agent, fake_network, django_capture_on_commit_callbacks, visibility):
    incident, post = open_incident()
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(
            reverse("socialitsm:incident-reply", args=[incident.number]),
            {"post": post.pk, "visibility": visibility, "text": "Sorry!\r\nWe are on it."},
        )
    assert response["Location"] == f"/incidents/{incident.number}/"
    response = agent_client.get(response["Location"])
    label = {"public": "Public reply", "direct": "Direct message"}[visibility]
    assert messages_of(response) == [f"{label} queued."]
    reply = Reply.objects.get()
    assert (reply.status, reply.visibility, reply.agent, reply.attempts) == ("sent", visibility, agent, 1)
    assert fake_network.sent == [
        {
            "id": "fake-1",
            "to": post.external_id,
            "text": "Sorry!\nWe are on it.",
            "visibility": visibility,
            "key": str(reply.idempotency_key),
        }
    ]
    body = response.content.decode()
    assert '<span class="badge status status-sent">sent</span>' in body
    assert "Sorry!<br>We are on it." in body


def test_too_long_reply_is_refused_and_kept_as_draft(agent_client, fake_network):
    fake_network.max_reply_chars = 20
    incident, post = open_incident()
    text = "x" * 21
    response = agent_client.post(
        reverse("socialitsm:incident-reply", args=[incident.number]),
        {"post": post.pk, "visibility": "public", "text": text},
        follow=True,
    )
    assert messages_of(response) == ["the reply is 21 characters; Replay allows 20"]
    assert Reply.objects.count() == 0
    assert fake_network.sent == []
    assert f'maxlength="20" required data-reply-text>{text}</textarea>' in response.content.decode()


def test_empty_reply_is_refused(agent_client, fake_network):
    incident, post = open_incident()
    response = agent_client.post(
        reverse("socialitsm:incident-reply", args=[incident.number]),
        {"post": post.pk, "visibility": "public", "text": ""},
        follow=True,
    )
    assert messages_of(response) == ["Text: This field is required."]
    assert Reply.objects.count() == 0
    assert fake_network.sent == []


def test_reply_to_a_post_of_another_incident_is_refused(agent_client, fake_network):
    incident, _ = open_incident()
    _, stranger = open_incident(author=AuthorFactory())
    response = agent_client.post(
        reverse("socialitsm:incident-reply", args=[incident.number]),
        {"post": stranger.pk, "visibility": "public", "text": "Hello"},
        follow=True,
    )
    assert messages_of(response) == ["Post: Select a valid choice. That choice is not one of the available choices."]
    assert Reply.objects.count() == 0
    assert fake_network.sent == []


def test_reply_box_defaults_to_the_authors_latest_post(agent_client):
    incident, first = open_incident()
    later = PostFactory(
        author=first.author,
        rule=first.rule,
        posted_at=T0 + timedelta(hours=1),
        incident=incident,
        triage_state=Post.Triage.INCIDENT,
    )
    PostFactory(
        author=AuthorFactory(),
        rule=first.rule,
        posted_at=T0 + timedelta(hours=2),
        incident=incident,
        triage_state=Post.Triage.INCIDENT,
    )
    response = agent_client.get(reverse("socialitsm:incident", args=[incident.number]))
    assert response.context["reply_chosen"]["post"] == later
    assert response.context["reply_visibility"] == "public"
    assert 'maxlength="500"' in response.content.decode()


def test_reply_box_defaults_to_direct_for_a_direct_message(agent_client):
    incident, _ = open_incident(is_direct=True)
    body = agent_client.get(reverse("socialitsm:incident", args=[incident.number])).content.decode()
    assert 'value="direct" checked' in body
    assert 'value="public" checked' not in body
    assert '<span class="badge dm"' in body


def test_closed_incident_has_no_reply_box(agent_client):
    incident, _ = open_incident()
    Incident.objects.filter(pk=incident.pk).update(state=Incident.State.CLOSED)
    body = agent_client.get(reverse("socialitsm:incident", args=[incident.number])).content.decode()
    assert "data-reply-form" not in body
    assert f"{incident.number} is closed; replies are closed." in body


@pytest.mark.parametrize(
    "status, polls",
    [("queued", True), ("sending", True), ("sent", False), ("failed", False)],
)
def test_replies_partial_polls_only_while_a_reply_is_pending(agent_client, agent, status, polls):
    incident, post = open_incident()
    ReplyFactory(incident=incident, post=post, visibility="public", text="Done", agent=agent, status="sent")
    ReplyFactory(
        incident=incident,
        post=post,
        visibility="direct",
        text="On it",
        agent=agent,
        status=status,
        error="boom" if status == "failed" else "",
    )
    response = agent_client.get(reverse("socialitsm:incident-replies", args=[incident.number]))
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="replies"')
    assert ('hx-trigger="every 2s"' in body) is polls
    assert (f'hx-get="/incidents/{incident.number}/replies/"' in body) is polls
    assert ('hx-swap="outerHTML"' in body) is polls
    assert body.count('class="badge status status-') == 2


def test_failed_reply_shows_the_error(agent_client, agent):
    incident, post = open_incident()
    ReplyFactory(
        incident=incident,
        post=post,
        visibility="public",
        text="Hi",
        agent=agent,
        status="failed",
        error="account suspended <b>",
    )
    body = agent_client.get(reverse("socialitsm:incident-replies", args=[incident.number])).content.decode()
    assert "Failed: account suspended &lt;b&gt;" in body


# Triage


@pytest.fixture
def triage_posts():
    return {
        "queued": PostFactory(text="queued one", triage_state=Post.Triage.QUEUED, complaint_score=0.7, posted_at=T0),
        "ignored": PostFactory(
            text="ignored one",
            triage_state=Post.Triage.IGNORED,
            complaint_score=0.1,
            posted_at=T0 + timedelta(minutes=5),
        ),
        "pending": PostFactory(text="pending one", posted_at=T0 + timedelta(minutes=10)),
        "parked": PostFactory(
            text="Anyone up for lunch at the canteen today?",
            posted_at=T0 + timedelta(minutes=2),
            routing_error="IntegrityError: value out of range",
            routing_failed_at=T0 + timedelta(minutes=3),
        ),
    }


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", ["ignored", "parked", "queued"]),
        ("?state=queued", ["queued"]),
        ("?state=ignored", ["ignored"]),
        ("?state=parked", ["parked"]),
    ],
)
def test_triage_lists_queued_ignored_and_parked_newest_first(agent_client, triage_posts, query, expected):
    response = agent_client.get(reverse("socialitsm:triage") + query)
    assert list(response.context["page"].object_list) == [triage_posts[name] for name in expected]


def test_triage_shows_why_routing_failed_with_a_retry(agent_client, triage_posts):
    parked = triage_posts["parked"]
    body = agent_client.get(reverse("socialitsm:triage") + "?state=parked").content.decode()
    assert "IntegrityError: value out of range" in body
    assert reverse("socialitsm:post-route-retry", args=[parked.pk]) in body
    assert reverse("socialitsm:post-promote", args=[parked.pk]) not in body


def test_route_again_hands_a_parked_post_back_to_routing(
    agent_client, triage_posts, django_capture_on_commit_callbacks
):
    parked = triage_posts["parked"]
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(reverse("socialitsm:post-route-retry", args=[parked.pk]), follow=True)
    assert response.redirect_chain == [("/posts/?state=parked", 302)]
    assert messages_of(response) == ["Post handed to routing again."]
    parked.refresh_from_db()
    assert (parked.routing_error, parked.routing_failed_at) == ("", None)
    assert parked.triage_state == Post.Triage.IGNORED


def test_route_again_of_a_post_not_parked_changes_nothing(agent_client, triage_posts):
    queued = triage_posts["queued"]
    response = agent_client.post(reverse("socialitsm:post-route-retry", args=[queued.pk]), follow=True)
    assert messages_of(response) == ["This post is not waiting for a retry."]
    assert Post.objects.get(pk=queued.pk).triage_state == Post.Triage.QUEUED


def test_promote_opens_an_incident_and_redirects_to_it(agent_client, agent, triage_posts):
    post = triage_posts["queued"]
    response = agent_client.post(reverse("socialitsm:post-promote", args=[post.pk]))
    post.refresh_from_db()
    assert post.incident is not None
    assert response.status_code == 302
    assert response["Location"] == f"/incidents/{post.incident.number}/"
    assert post.triage_state == Post.Triage.INCIDENT
    assert list(post.incident.events.values_list("kind", "actor__username")) == [
        ("opened", "agent.anna"),
        ("post_linked", "agent.anna"),
        ("promoted", "agent.anna"),
    ]


def test_promote_of_a_linked_post_shows_the_error(agent_client):
    incident, post = open_incident()
    response = agent_client.post(reverse("socialitsm:post-promote", args=[post.pk]), follow=True)
    assert response.redirect_chain == [("/posts/", 302)]
    assert messages_of(response) == [f"post is already linked to {incident.number}"]
    assert Incident.objects.count() == 1


def test_get_is_not_allowed_on_post_views(agent_client):
    incident, _ = open_incident()
    assert agent_client.get(reverse("socialitsm:incident-assign", args=[incident.number])).status_code == 405
    incident.refresh_from_db()
    assert incident.assignee is None


def test_expired_session_poll_redirects_the_whole_page(client):
    incident, _ = open_incident()
    url = reverse("socialitsm:incident-replies", args=[incident.number])
    page = f"http://testserver/incidents/{incident.number}/"
    response = client.get(url, headers={"HX-Request": "true", "HX-Current-URL": page})
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/accounts/login/?next=%2Fincidents%2F{incident.number}%2F"
    assert response.content == b""


# ITSM links


@pytest.fixture
def failed_link(fake_suite):
    from socialitsm.exceptions import PermanentError
    from socialitsm.models import ItsmConnection, ItsmLink
    from socialitsm.services.itsm_sync import itsm_link_sync

    incident, _ = open_incident()
    connection = ItsmConnection.objects.create(name="RT", slug="rt", kind="fake", base_url="https://rt.example.com")
    link = ItsmLink.objects.create(connection=connection, incident=incident, external_ref=f"x:{incident.number}")
    fake_suite.errors.append(PermanentError("<b>refused</b>"))
    return itsm_link_sync(link=link)


def test_incident_page_shows_links_with_escaped_error_and_retries(
    agent_client, failed_link, django_capture_on_commit_callbacks
):
    number = failed_link.incident.number
    page = agent_client.get(reverse("socialitsm:incident", args=[number])).content.decode()
    assert "&lt;b&gt;refused&lt;/b&gt;" in page and "<b>refused</b>" not in page
    retry = reverse("socialitsm:incident-itsm-retry", args=[number, failed_link.pk])
    assert f'action="{retry}"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(retry)
    assert response.status_code == 302
    response = agent_client.get(response["Location"])
    assert messages_of(response) == ["Sync with RT queued again."]
    page = response.content.decode()
    assert '<a href="https://suite.example.com/t/1" rel="noopener noreferrer" target="_blank">FAKE-1</a>' in page
    assert "In sync" in page and f'action="{retry}"' not in page


def test_itsm_retry_needs_an_agent_and_post(client, outsider, failed_link):
    retry = reverse("socialitsm:incident-itsm-retry", args=[failed_link.incident.number, failed_link.pk])
    client.force_login(outsider)
    assert client.post(retry).status_code == 403
    client.force_login(UserFactory(username="agent.x", is_superuser=True))
    assert client.get(retry).status_code == 405
    failed_link.refresh_from_db()
    assert failed_link.status == "failed"


def test_reply_box_shows_the_limit_in_the_networks_unit(agent_client, fake_network):
    fake_network.max_reply_chars = 300
    fake_network.reply_unit = "graphemes"
    incident, _ = open_incident()
    body = agent_client.get(reverse("socialitsm:incident", args=[incident.number])).content.decode()
    assert 'data-limit="300" data-unit="graphemes"' in body
    assert "/ <span data-limit>300</span> <span data-unit>graphemes</span> on" in body
    # maxlength counts UTF-16 units, which would cut emoji-rich text short of 300 graphemes.
    assert "maxlength" not in body


def test_reply_box_explains_a_refused_public_reply_and_preselects_direct(agent_client, fake_network):
    fake_network.refusals["public"] = "X allows a public reply only where the author mentioned or quoted us"
    incident, _ = open_incident()
    body = agent_client.get(reverse("socialitsm:incident", args=[incident.number])).content.decode()
    assert 'value="direct" checked' in body
    assert 'value="public" checked' not in body
    assert (
        '<p class="refusal" id="reply-refusal" data-reply-refusal>'
        "No public reply: X allows a public reply only where the author mentioned or quoted us</p>"
    ) in body


# Agents' labels


def test_incident_page_offers_label_buttons_per_post(agent_client):
    incident, post = open_incident()

    page = agent_client.get(reverse("socialitsm:incident", args=[incident.number])).content.decode()

    form = page[page.index(f'action="/posts/{post.pk}/label/"') :]
    form = form[: form.index("</form>")]
    assert 'name="csrfmiddlewaretoken"' in form
    assert 'name="label" value="complaint"' in form
    assert 'name="label" value="not_complaint"' in form
    assert "Is this a complaint?" in form


def test_label_on_the_incident_page_is_stored_and_shown(agent_client, agent):
    incident, post = open_incident()

    response = agent_client.post(reverse("socialitsm:post-label", args=[post.pk]), {"label": "not_complaint"})

    assert response.status_code == 302
    assert response["Location"] == f"/incidents/{incident.number}/#post-{post.pk}"
    post.refresh_from_db()
    assert (post.label, post.labelled_by, post.labelled_at is not None) == ("not_complaint", agent, True)
    assert (post.incident, post.triage_state) == (incident, Post.Triage.INCIDENT)
    page = agent_client.get(response["Location"]).content.decode()
    assert "Labelled <strong>not a complaint</strong> by agent.anna" in page
    assert 'value="not_complaint" aria-pressed="true"' in page


def test_label_in_triage_returns_to_triage(agent_client, triage_posts):
    post = triage_posts["ignored"]

    response = agent_client.post(reverse("socialitsm:post-label", args=[post.pk]), {"label": "complaint"}, follow=True)

    assert response.redirect_chain == [("/posts/", 302)]
    assert messages_of(response) == ["Post labelled complaint; retraining learns from it."]
    post.refresh_from_db()
    assert post.label == "complaint"


def test_unknown_label_is_refused_with_a_message(agent_client, triage_posts):
    post = triage_posts["ignored"]
    url = reverse("socialitsm:post-label", args=[post.pk])

    response = agent_client.post(url, {"label": "<b>spam</b>"}, follow=True)

    assert messages_of(response) == ["label must be one of complaint, not_complaint"]
    post.refresh_from_db()
    assert post.label == ""


def test_label_needs_post_and_csrf(client, agent, triage_posts):
    post = triage_posts["ignored"]
    url = reverse("socialitsm:post-label", args=[post.pk])
    client.force_login(agent)
    assert client.get(url).status_code == 405
    client.handler.enforce_csrf_checks = True

    assert client.post(url, {"label": "complaint"}).status_code == 403

    post.refresh_from_db()
    assert post.label == ""


# Retrying and canceling replies from the ticket

NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
REPLY_STATES = {
    "fresh": {},
    "waiting": {
        "attempts": 4,
        "error": "<b>HTTP 503</b>",
        "retry_after": NOON + timedelta(minutes=4),
        "retry_until": NOON + timedelta(hours=23),
    },
    "failed": {"status": "failed", "attempts": 1, "error": "blocked"},
    "sending": {"status": "sending", "attempts": 1, "claimed_at": NOON},
    "sent": {"status": "sent", "attempts": 1, "external_id": "fake-9", "sent_at": NOON},
    "canceled": {"status": "canceled"},
}


@pytest.fixture
def clock():
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


def reply_in(state: str, agent) -> Reply:
    incident, post = open_incident()
    return ReplyFactory(incident=incident, post=post, agent=agent, text="On it", **REPLY_STATES[state])


def command_urls(reply: Reply) -> dict[str, str]:
    number = reply.incident.number
    return {
        command: reverse(f"socialitsm:incident-reply-{command}", args=[number, reply.pk])
        for command in ("retry", "cancel")
    }


def test_waiting_reply_shows_when_it_is_tried_next(clock, agent_client, agent):
    reply = reply_in("waiting", agent)
    response = agent_client.get(reverse("socialitsm:incident-replies", args=[reply.incident.number]))
    body = response.content.decode()
    assert response.status_code == 200
    assert (
        'Will retry at <time datetime="2026-11-26T12:04:00+00:00">2026-11-26 12:04:00 UTC</time>; '
        'gives up after <time datetime="2026-11-27T11:00:00+00:00">2026-11-27 11:00 UTC</time>.'
    ) in body
    assert '<p class="reply-error">Last attempt: &lt;b&gt;HTTP 503&lt;/b&gt;</p>' in body
    assert "<b>HTTP 503</b>" not in body
    assert "4 attempts" in body
    # Only waiting: the page looks again now and then, not every two seconds.
    assert 'hx-trigger="every 15s"' in body


@pytest.mark.parametrize(
    ("state", "buttons", "polls"),
    [
        ("fresh", {"cancel"}, "2s"),
        ("waiting", {"retry", "cancel"}, "15s"),
        ("failed", {"retry", "cancel"}, None),
        ("sending", set(), "2s"),
        ("sent", set(), None),
        ("canceled", set(), None),
    ],
)
def test_reply_offers_the_commands_its_state_allows(clock, agent_client, agent, state, buttons, polls):
    reply = reply_in(state, agent)
    body = agent_client.get(reverse("socialitsm:incident", args=[reply.incident.number])).content.decode()
    shown = {command for command, url in command_urls(reply).items() if f'action="{url}"' in body}
    assert shown == buttons
    assert body.count("Retry now</button>") == ("retry" in buttons)
    assert body.count("csrfmiddlewaretoken") >= len(buttons)
    assert f'<span class="badge status status-{REPLY_STATES[state].get("status", "queued")}">' in body
    replies = body[body.index('<section id="replies"') :].split(">", 1)[0]
    if polls:
        assert f'hx-trigger="every {polls}"' in replies
    else:
        assert "hx-trigger" not in replies


def test_agent_retries_a_failed_reply_from_the_ticket(
    clock, agent_client, agent, fake_network, django_capture_on_commit_callbacks
):
    reply = reply_in("failed", agent)
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(command_urls(reply)["retry"])
    assert response.status_code == 302
    assert response["Location"] == f"/incidents/{reply.incident.number}/#reply-{reply.pk}"
    page = agent_client.get(response["Location"])
    assert messages_of(page) == ["Public reply queued to be sent again now."]
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, fake_network.lookups) == ("sent", 2, 1)
    assert len(fake_network.sent) == 1
    event = reply.incident.events.get(kind="reply_retried")
    assert (event.actor, event.message) == (agent, "after 1 attempt: blocked")


def test_agent_cancels_a_waiting_reply_from_the_ticket(clock, agent_client, agent, fake_network):
    reply = reply_in("waiting", agent)
    response = agent_client.post(command_urls(reply)["cancel"])
    assert response.status_code == 302
    page = agent_client.get(response["Location"])
    assert messages_of(page) == ["Public reply canceled; it will not be sent."]
    assert '<span class="badge status status-canceled">canceled</span>' in page.content.decode()
    reply.refresh_from_db()
    assert (reply.status, reply.retry_after) == ("canceled", None)
    assert reply.incident.events.get(kind="reply_canceled").actor == agent
    assert fake_network.sent == []


@pytest.mark.parametrize(
    ("state", "command", "message"),
    [
        ("sent", "cancel", "this reply was already sent; there is nothing to cancel"),
        ("sending", "retry", "this reply is being sent right now; wait for the network's answer"),
        ("canceled", "retry", "this reply was canceled; write it again to send it"),
    ],
)
def test_a_command_the_state_does_not_allow_is_refused_with_a_message(
    clock, agent_client, agent, fake_network, state, command, message
):
    reply = reply_in(state, agent)
    before = Reply.objects.filter(pk=reply.pk).values().get()
    events = IncidentEvent.objects.count()
    response = agent_client.post(command_urls(reply)[command])
    assert response.status_code == 302
    assert messages_of(agent_client.get(response["Location"])) == [message]
    assert Reply.objects.filter(pk=reply.pk).values().get() == before
    assert IncidentEvent.objects.count() == events
    assert fake_network.sent == []


def test_reply_commands_need_an_agent_a_post_and_the_replys_incident(client, outsider, agent):
    reply = reply_in("failed", agent)
    other, _ = open_incident(text="Email is down for everyone")
    for command, url in command_urls(reply).items():
        response = client.post(url)
        assert (response.status_code, response["Location"]) == (302, f"/accounts/login/?next={url}")
        client.force_login(outsider)
        assert client.post(url).status_code == 403
        client.force_login(agent)
        assert client.get(url).status_code == 405
        elsewhere = reverse(f"socialitsm:incident-reply-{command}", args=[other.number, reply.pk])
        assert client.post(elsewhere).status_code == 404
        client.logout()
    reply.refresh_from_db()
    assert (reply.status, reply.error) == ("failed", "blocked")
    assert reply.incident.events.filter(kind__in=["reply_retried", "reply_canceled"]).count() == 0


def test_reply_box_explains_that_a_deleted_post_takes_no_public_reply(agent_client, fake_network):
    from socialitsm.services.deletions import posts_redact

    incident, post = open_incident()
    posts_redact(network=post.network, external_ids=[post.external_id])
    body = agent_client.get(reverse("socialitsm:incident", args=[incident.number])).content.decode()
    assert 'value="direct" checked' in body
    assert (
        '<p class="refusal" id="reply-refusal" data-reply-refusal>No public reply: the post was deleted by its '
        "author, so it cannot be answered in public; send a direct message instead</p>"
    ) in body
    assert COMPLAINT not in body


# Edits


def _edit(post: Post, text: str, minutes: int) -> None:
    edit = InboundPost(
        external_id=post.external_id,
        author=InboundAuthor(post.author.external_id),
        text=text,
        posted_at=post.posted_at,
        edited_at=post.posted_at + timedelta(minutes=minutes),
    )
    assert post_edit(post=post, edit=edit) != EditOutcome.UNCHANGED


def test_an_edited_post_is_marked_and_its_earlier_versions_are_shown_escaped(agent_client):
    incident, post = open_incident(text="<script>alert(1)</script>\nVPN is down")
    _edit(post, "VPN is down <b>since 8</b>", 5)

    body = agent_client.get(reverse("socialitsm:incident", args=[incident.number])).content.decode()

    assert '<span class="badge edited" title="Edited by its author 2026-11-26 08:05 UTC">edited</span>' in body
    assert '<div class="post-text">VPN is down &lt;b&gt;since 8&lt;/b&gt;</div>' in body
    assert "<summary>Earlier versions (1)</summary>" in body
    assert 'Before the edit of <time datetime="2026-11-26T08:05:00+00:00">2026-11-26 08:05 UTC</time>' in body
    assert '<div class="post-text">&lt;script&gt;alert(1)&lt;/script&gt;<br>VPN is down</div>' in body
    assert "<script>alert(1)" not in body and "<b>since 8</b>" not in body
    edited = IncidentEvent.objects.get(incident=incident, kind=IncidentEvent.Kind.POST_EDITED)
    assert edited.message.endswith("It now reads:\nVPN is down <b>since 8</b>")


def test_a_post_never_edited_has_no_history(agent_client):
    incident, _ = open_incident()
    body = agent_client.get(reverse("socialitsm:incident", args=[incident.number])).content.decode()
    assert "badge edited" not in body
    assert "Earlier versions" not in body


def test_triage_shows_the_history_of_an_edited_post(agent_client):
    post = PostFactory(text="Lovely weather today", triage_state=Post.Triage.IGNORED)
    _edit(post, "Lovely weather, sunny all day", 3)
    _edit(Post.objects.get(pk=post.pk), "Lovely weather, sunny all day & warm", 9)
    # Each edit handed the post back to routing, which ignores it again.
    assert posts_process(post_ids=[post.pk]) == {"ignored": 1}
    body = agent_client.get(reverse("socialitsm:triage")).content.decode()
    assert "Lovely weather, sunny all day &amp; warm</div>" in body
    assert "<summary>Earlier versions (2)</summary>" in body
    assert body.index("Lovely weather today") < body.index("Lovely weather, sunny all day</div>")


def test_a_long_history_shows_its_first_and_latest_events_and_the_rest_on_request(agent_client, monkeypatch):
    from socialitsm.web import views

    monkeypatch.setattr(views, "INCIDENT_PAGE_EVENTS", 3)
    incident, _ = open_incident()
    for i in range(6):
        IncidentEvent.objects.create(incident=incident, kind=IncidentEvent.Kind.POST_LINKED, message=f"note {i} <b>")
    total = IncidentEvent.objects.filter(incident=incident).count()
    url = reverse("socialitsm:incident", args=[incident.number])

    page = agent_client.get(url).content.decode()
    hidden = total - 4
    assert f"{hidden} earlier events not shown." in page
    assert 'href="?history=all#history"' in page
    assert "note 5 &lt;b&gt;" in page and "note 2 &lt;b&gt;" not in page

    whole = agent_client.get(url, {"history": "all"}).content.decode()
    assert "earlier event" not in whole
    assert all(f"note {i} &lt;b&gt;" in whole for i in range(6))
    # The link keeps the posts shown as they were.
    assert 'href="?posts=all&amp;history=all#history"' in agent_client.get(url, {"posts": "all"}).content.decode()
