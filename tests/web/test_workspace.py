"""The incident page's workspace without a browser: roles, escaping, the image policy, the
version check's form path, presence, the poster's history and the time zone door."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from socialitsm.models import AgentProfile, Incident, Post, ReplyTemplate
from socialitsm.roles import AGENT_GROUP

from ..factories import AuthorFactory, IncidentFactory, PostFactory, UserFactory, WatchRuleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


@pytest.fixture
def incident() -> Incident:
    maria = AuthorFactory(handle="@maria", name="Maria", caller_email="maria@example.com")
    incident = IncidentFactory(number="INC0000901", author=maria)
    PostFactory(
        rule=WatchRuleFactory(),
        incident=incident,
        author=maria,
        triage_state=Post.Triage.INCIDENT,
        text="VPN down",
        details=[
            {"kind": "media", "text": "", "url": "https://media.example.com/a.png"},
            {"kind": "media", "text": "", "url": "http://media.example.com/b.png"},
            {"kind": "alt_text", "text": 'x" onerror="alert(1)', "url": "https://media.example.com/c.png?a=1&b=2"},
            {"kind": "media", "text": "", "url": "javascript:alert(1)"},
            {"kind": "media", "text": "", "url": "https://user:pw@media.example.com/d.png"},
        ],
    )
    return incident


def page(client, incident: Incident):
    return client.get(reverse("socialitsm:incident", args=[incident.number]))


def test_images_are_https_only_escaped_and_allowed_by_the_policy(agent_client, incident):
    response = page(agent_client, incident)
    body = response.content.decode()

    assert body.count("data-post-image") == 2
    assert 'src="https://media.example.com/a.png"' in body
    assert 'src="https://media.example.com/c.png?a=1&amp;b=2"' in body
    assert 'alt="x&quot; onerror=&quot;alert(1)"' in body
    assert 'src="http://media.example.com/b.png"' not in body
    assert "javascript:alert" not in body.split('class="post-media"')[1].split("</ul>")[0]
    assert "user:pw@" not in body.split('class="post-media"')[1].split("</ul>")[0]
    policy = response["Content-Security-Policy"]
    assert "img-src 'self' https:" in policy
    assert "script-src 'self'" in policy
    # Other pages keep the site's policy.
    assert "https:" not in agent_client.get(reverse("socialitsm:queue"))["Content-Security-Policy"]


def test_reply_template_pages_are_for_leads(agent_client, client, lead):
    template = ReplyTemplate.objects.create(name="On it", text="Hi {name}")
    for url in (
        reverse("socialitsm:reply-templates"),
        reverse("socialitsm:reply-template-new"),
        reverse("socialitsm:reply-template-edit", args=[template.pk]),
    ):
        assert agent_client.get(url).status_code == 403
    assert agent_client.post(reverse("socialitsm:reply-template-delete", args=[template.pk])).status_code == 403
    assert ReplyTemplate.objects.count() == 1

    client.force_login(lead)
    created = client.post(reverse("socialitsm:reply-template-new"), {"name": "Fixed", "text": "Fixed, {handle}!"})
    assert created.status_code == 302
    refused = client.post(
        reverse("socialitsm:reply-template-edit", args=[template.pk]), {"name": "On it", "text": "{x}"}
    )
    assert refused.status_code == 400
    assert "unknown variable {x}" in refused.content.decode()
    deleted = client.post(reverse("socialitsm:reply-template-delete", args=[template.pk]))
    assert deleted.status_code == 302
    assert list(ReplyTemplate.objects.values_list("name", "text")) == [("Fixed", "Fixed, {handle}!")]


def test_template_fill_is_for_the_incidents_own_posts(agent_client, agent, incident):
    AgentProfile.objects.create(user=agent, signature="^AA")
    template = ReplyTemplate.objects.create(name="On it", text="Hi {name} ({handle}), {incident}. {signature}")
    post = incident.posts.get()
    url = reverse("socialitsm:incident-template-fill", args=[incident.number, template.pk])

    assert agent_client.get(f"{url}?post={post.pk}").json() == {"text": "Hi Maria (@maria), INC0000901. ^AA"}
    other = PostFactory()
    refused = agent_client.get(f"{url}?post={other.pk}")
    assert refused.status_code == 400
    assert refused.json() == {"error": "that post is not part of INC0000901"}


def test_presence_shows_the_others_only_and_expires(agent_client, client, incident, settings):
    settings.SOCIALITSM_PRESENCE_TTL_SECONDS = 30
    ben = UserFactory(username="ben.agent", first_name="Ben", last_name="Berg")
    ben.groups.add(Group.objects.get(name=AGENT_GROUP))
    url = reverse("socialitsm:incident-presence", args=[incident.number])

    alone = agent_client.get(url).content.decode()
    assert "is viewing" not in alone
    client.force_login(ben)
    assert (
        '<abbr class="viewer" title="agent.anna">AG</abbr> is viewing this incident' in client.get(url).content.decode()
    )
    with pytest.MonkeyPatch.context() as patch:
        import time

        later = time.time() + 31
        patch.setattr(time, "time", lambda: later)
        assert "is viewing" not in client.get(url).content.decode()


def test_stale_form_change_to_a_field_changed_meanwhile_is_refused(agent_client, lead, incident):
    from socialitsm.services.incidents import incident_update

    shown = {"state": "new", "impact": 3, "urgency": 2, "assignee": "", "assignment_group": "", "service": ""}
    form = {**shown, **{f"initial-{k}": v for k, v in shown.items()}, "version": 1}
    incident_update(incident=incident, actor=lead, state=Incident.State.IN_PROGRESS)

    response = agent_client.post(
        reverse("socialitsm:incident-update", args=[incident.number]), {**form, "state": "canceled"}, follow=True
    )

    messages = [str(m) for m in response.context["messages"]]
    assert messages == [
        "INC0000901 was changed by someone else since you loaded it: state is now In progress (changed by "
        "lead.lars). Your change was not saved; check the new values and make it again."
    ]
    incident.refresh_from_db()
    assert (incident.state, incident.version) == ("in_progress", 2)


def test_poster_history_is_paged_and_links_the_same_caller_elsewhere(agent_client, incident, settings):
    settings.SOCIALITSM_POSTER_HISTORY_PAGE = 2
    maria = incident.author
    elsewhere = AuthorFactory(network="mastodon", handle="@maria@social.example", caller_email="MARIA@example.com")
    now = timezone.now()
    for day in range(3):
        IncidentFactory(author=maria, short_description=f"old {day}", opened_at=now - timedelta(days=day + 1))
    IncidentFactory(author=elsewhere, short_description="on mastodon", opened_at=now)
    stranger = IncidentFactory(author=AuthorFactory(handle="@stranger"), short_description="not hers")

    first = agent_client.get(reverse("socialitsm:incident-poster", args=[incident.number]))
    second = agent_client.get(reverse("socialitsm:incident-poster", args=[incident.number]) + "?page=2")

    assert [i.short_description for i in first.context["poster_incidents"]] == ["on mastodon", "old 0"]
    assert [i.short_description for i in second.context["poster_incidents"]] == ["old 1", "old 2"]
    assert first.context["poster_incidents"].paginator.count == 4
    assert stranger.number not in first.content.decode() + second.content.decode()


def test_browser_time_zone_is_taken_once_and_unknown_ones_ignored(agent_client, agent):
    url = reverse("socialitsm:profile-time-zone")

    assert agent_client.post(url, {"time_zone": "Mars/Olympus"}).json() == {"time_zone": ""}
    assert not AgentProfile.objects.filter(user=agent).exists()
    assert agent_client.post(url, {"time_zone": "Asia/Tokyo"}).json() == {"time_zone": "Asia/Tokyo"}
    assert agent_client.post(url, {"time_zone": "Europe/Paris"}).json() == {"time_zone": "Asia/Tokyo"}
    assert AgentProfile.objects.get(user=agent).time_zone == "Asia/Tokyo"


def test_profile_refuses_a_multi_line_signature(agent_client, agent):
    response = agent_client.post(reverse("socialitsm:profile"), {"signature": "^A\nB", "time_zone": ""})

    assert response.status_code == 400
    assert "one line" in response.content.decode()
    assert not AgentProfile.objects.filter(user=agent).exists()


def test_workspace_pages_need_the_agent_role(client, outsider, incident):
    client.force_login(outsider)
    for name, args in (
        ("incident-presence", [incident.number]),
        ("incident-poster", [incident.number]),
        ("profile", []),
    ):
        assert client.get(reverse(f"socialitsm:{name}", args=args)).status_code == 403
    assert client.post(reverse("socialitsm:incident-note", args=[incident.number]), {"text": "x"}).status_code == 403
    assert not incident.notes.exists()
