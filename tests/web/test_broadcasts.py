from __future__ import annotations

from datetime import UTC, datetime

import pytest

from socialitsm.models import Broadcast, Network, Reply, StatusPost
from socialitsm.services.broadcasts import broadcast_propose_fixed

from .. import sla_data
from ..factories import (
    ChannelFactory,
    WatchRuleFactory,
    major_child,
    major_incident,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
PAGE = "/incidents/INC0000900/broadcast/"


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


@pytest.fixture
def major():
    major = major_incident(number="INC0000900")
    rule = WatchRuleFactory(channel=ChannelFactory(name="Support", slug="support", network=Network.MASTODON))
    for n, handle in enumerate(["@ana", "@bo", "@<script>x"]):
        major_child(major, rule, handle=handle, name=handle[1:].title(), number=f"INC000091{n}")
    return major


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_page_needs_an_agent(client, outsider, major):
    assert client.get(PAGE).status_code == 302
    client.force_login(outsider)
    assert client.get(PAGE).status_code == 403
    assert client.post(f"{PAGE}new/", {"text": "Hi", "visibility": "public"}).status_code == 403
    assert Broadcast.objects.count() == 0


def test_compose_preview_confirm_with_exclusions(agent_client, major, fake_network, django_capture_on_commit_callbacks):
    response = agent_client.post(f"{PAGE}new/", {"text": "Hi {name}, we know ({incident})", "visibility": "public"})
    broadcast = Broadcast.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{PAGE}#broadcast-{broadcast.pk}"

    page = agent_client.get(PAGE)
    html = page.content.decode()
    assert "Hi Ana, we know (INC0000910)" in html
    assert "&lt;script&gt;x" in html and "<script>x" not in html
    assert fake_network.sent == []

    bo = next(r for r in page.context["broadcasts"][0]["preview"].recipients if r.author.handle == "@bo")
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(f"{PAGE}{broadcast.pk}/confirm/", {"exclude": [bo.author.pk]})
    with django_capture_on_commit_callbacks(execute=True):
        again = agent_client.post(f"{PAGE}{broadcast.pk}/confirm/", {}, follow=True)

    assert messages_of(again)[-1] == "This broadcast was confirmed already; nothing was sent again."
    assert Reply.objects.filter(broadcast=broadcast).count() == 2
    assert sorted(Reply.objects.values_list("post__author__handle", flat=True)) == ["@<script>x", "@ana"]
    assert [m["text"] for m in fake_network.sent] == ["Hi Ana, we know (INC0000910)"]
    html = again.content.decode()
    assert "Sent" in html and "Queued" in html
    assert "left out by the agent" in html


def test_unknown_variable_is_refused_with_the_reason(agent_client, major):
    response = agent_client.post(f"{PAGE}new/", {"text": "Hi {name.upper}", "visibility": "public"}, follow=True)
    assert messages_of(response) == [
        "unknown variable {name.upper}; the message may use {name}, {handle}, {service}, {incident}"
    ]
    assert Broadcast.objects.count() == 0


def test_incident_page_shows_the_fixed_draft_ready_to_confirm(agent_client, major):
    draft = broadcast_propose_fixed(major=major, actor=None)
    html = agent_client.get("/incidents/INC0000900/").content.decode()
    assert 'A "fixed" message is ready to confirm.' in html
    assert f'href="{PAGE}#broadcast-{draft.pk}"' in html
    assert "3 affected posters" in html
    child = agent_client.get("/incidents/INC0000910/").content.decode()
    assert "Broadcast to the affected posters" not in child


def test_status_post_form(agent_client, major, fake_network, django_capture_on_commit_callbacks):
    channel = major.children.first().posts.first().channel
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(
            "/incidents/INC0000900/status-posts/",
            {"status-channel": channel.pk, "status-text": "We know e-mail is down"},
            follow=True,
        )
    assert messages_of(response) == ["Status post queued on Support."]
    assert StatusPost.objects.get().status == "sent"
    assert 'href="https://social.example.com/support/fake-status-1"' in agent_client.get(PAGE).content.decode()


def test_lead_dashboard_shows_major_incidents(client, lead, agent, fake_network):
    sla_data.build_major_outage(now=NOW, agent=agent, fake_network=fake_network)

    client.force_login(lead)
    response = client.get("/sla/")
    rows = {row["number"]: row for row in response.context["majors"]}
    first = rows["INC0000900"]
    assert (first["children"], first["minutes_to_major"], first["minutes_to_first_broadcast"]) == (3, 30.0, 45.0)
    assert (first["posters"], first["answered"], first["unanswered"]) == (3, 2, 1)
    second = rows["INC0000950"]
    assert (second["posters"], second["minutes_to_major"], second["minutes_to_first_broadcast"]) == (0, None, None)
    html = response.content.decode()
    assert 'data-figure="majors.INC0000900.unanswered" class="overdue">1<' in html
    assert 'data-figure="majors.INC0000900.minutes_to_first_broadcast">45.0 min<' in html
    exported = client.get("/sla/export.csv").content.decode().splitlines()
    assert "major_incidents,INC0000900,minutes_to_first_broadcast,45.0" in exported
    assert "major_incidents,INC0000900,unanswered,1" in exported
    assert "major_incidents,INC0000950,minutes_to_major," in exported
