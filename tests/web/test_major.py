from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from socialitsm.models import Incident, IncidentEvent, Post, Reply
from socialitsm.services.routing import posts_process

from ..factories import AuthorFactory, IncidentFactory, PostFactory, ReplyFactory, WatchRuleFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def agent_client(agent) -> Client:
    client = Client()
    client.force_login(agent)
    return client


def _routed(author, text: str) -> Incident:
    post = PostFactory(author=author, text=text)
    posts_process(post_ids=[post.pk])
    return Incident.objects.get(posts=post)


def test_queue_offers_selection_and_marks_majors_and_children(agent_client, agent):
    from socialitsm.services.major import major_open

    child = IncidentFactory()
    major = major_open(incidents=[child], actor=agent, short_description="Mail outage")
    html = agent_client.get("/").content.decode()
    assert f'name="incidents" value="{child.number}"' in html
    assert "Link to a major incident" in html
    assert '<span class="badge major">Major</span> Mail outage' in html
    assert f'part of <a href="/incidents/{major.number}/">{major.number}</a>' in html
    assert f'<option value="{major.number}">{major.number} Mail outage</option>' in html


def test_link_selected_to_a_new_and_then_an_existing_major(agent_client):
    first, second, third = IncidentFactory(), IncidentFactory(), IncidentFactory()
    response = agent_client.post(
        "/incidents/link/",
        {"incidents": [first.number, second.number], "major": "new", "short_description": "VPN gateway down"},
    )
    major = Incident.objects.get(is_major=True)
    assert response.status_code == 302
    assert response["Location"] == f"/incidents/{major.number}/"
    assert major.short_description == "VPN gateway down"
    agent_client.post("/incidents/link/", {"incidents": [third.number], "major": major.number})
    assert set(major.children.values_list("number", flat=True)) == {first.number, second.number, third.number}


def test_link_errors_are_shown_and_nothing_changes(agent_client):
    response = agent_client.post("/incidents/link/", {"major": "new"}, follow=True)
    assert "Select at least one incident." in response.content.decode()
    response = agent_client.post("/incidents/link/", {"major": "new", "incidents": ["INC\x001"]}, follow=True)
    assert "no incident INC" in response.content.decode()
    assert Incident.objects.filter(is_major=True).count() == 0


def test_merge_selected_into_the_oldest_and_unmerge(agent_client):
    author = AuthorFactory()
    oldest = _routed(author, "VPN down again")
    newer = _routed(author, "VPN still down")
    response = agent_client.post("/incidents/merge/", {"incidents": [newer.number, oldest.number]})
    assert response["Location"] == f"/incidents/{oldest.number}/"
    newer.refresh_from_db()
    assert (newer.state, newer.merged_into) == ("canceled", oldest)
    page = agent_client.get(f"/incidents/{newer.number}/").content.decode()
    assert f'Merged into <a href="/incidents/{oldest.number}/">{oldest.number}</a>' in page
    agent_client.post(f"/incidents/{newer.number}/unmerge/")
    newer.refresh_from_db()
    assert (newer.state, newer.merged_into) == ("new", None)
    assert Post.objects.filter(incident=newer).count() == 1


def test_merge_of_other_posters_is_refused_for_an_agent(agent_client):
    first = _routed(AuthorFactory(), "VPN down again")
    second = _routed(AuthorFactory(), "VPN down here too")
    response = agent_client.post("/incidents/merge/", {"incidents": [first.number, second.number]}, follow=True)
    assert "have different posters" in response.content.decode()
    assert Incident.objects.filter(merged_into__isnull=False).count() == 0
    forced = agent_client.post("/incidents/merge/", {"incidents": [first.number, second.number], "other_author": "on"})
    assert forced.status_code == 403


def test_major_page_shows_affected_posters_growth_and_unlinks(agent_client, clock):
    rule = WatchRuleFactory()
    posts = [
        PostFactory(
            rule=rule,
            author=AuthorFactory(handle=f"@mail{n}"),
            text=f"Email is down again <b>{n}</b>",
            posted_at=datetime(2026, 11, 26, 8, 50 + n // 3, tzinfo=UTC),
        )
        for n in range(5)
    ]
    posts_process(post_ids=[p.pk for p in posts])
    major = Incident.objects.get(is_major=True)
    answered = Post.objects.get(pk=posts[0].pk)
    ReplyFactory(post=answered, incident=answered.incident, status=Reply.Status.SENT, sent_at=NOW)
    html = agent_client.get(f"/incidents/{major.number}/").content.decode()
    assert 'Affected posters <span class="count">5</span>' in html
    assert "@mail0" in html and "Email is down again &lt;b&gt;0&lt;/b&gt;" in html
    assert html.count('<span class="ok">yes</span>') == 1
    assert '<svg class="chart" id="spike-growth"' in html
    assert '<tr><td><time datetime="2026-11-26T08:50:00+00:00">08:50</time></td><td>3</td><td>3</td></tr>' in html

    child = answered.incident
    response = agent_client.post(f"/incidents/{child.number}/unlink/", {"back": "major"})
    assert response["Location"] == f"/incidents/{major.number}/"
    child.refresh_from_db()
    assert child.parent is None
    assert child.events.filter(kind=IncidentEvent.Kind.MAJOR_UNLINKED).count() == 1


def test_pages_need_an_agent(client, outsider):
    incident = IncidentFactory()
    assert client.post("/incidents/link/", {"incidents": [incident.number]})["Location"].startswith("/accounts/login/")
    client.force_login(outsider)
    assert client.post("/incidents/merge/", {"incidents": [incident.number]}).status_code == 403
    assert client.post(f"/incidents/{incident.number}/unlink/").status_code == 403
