"""The queue page: search, views, saved views, the live poll and bulk actions; triage bulk actions."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.urls import reverse

from socialitsm import selectors
from socialitsm.models import Incident, IncidentEvent, Post, SavedView
from socialitsm.services.incidents import incident_assign

from ..factories import AuthorFactory, IncidentFactory, PostFactory, UserFactory, WatchRuleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


def listed(response) -> list[str]:
    return [incident.number for incident in response.context["page"].object_list]


@pytest.fixture
def world(agent):
    author = AuthorFactory(handle="@mika", name="Mika Kallio")
    vpn = IncidentFactory(number="INC0000201", short_description="Cannot connect", author=author)
    PostFactory(incident=vpn, author=author, text="Gateway times out")
    IncidentFactory(number="INC0000202", short_description="Printer jammed", assignee=agent)
    IncidentFactory(number="INC0000203", short_description="Mail slow", state=Incident.State.RESOLVED)
    IncidentFactory(number="INC0000204", short_description="Old", state=Incident.State.CLOSED)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("q=gateway", ["INC0000201"]),
        ("q=mika", ["INC0000201"]),
        ("q=printer", ["INC0000202"]),
        ("view=mine", ["INC0000202"]),
        ("view=done", ["INC0000203", "INC0000204"]),
        ("view=all&q=mail", ["INC0000203"]),
        ("view=all&state=closed", ["INC0000204"]),
    ],
)
def test_queue_search_and_views(agent_client, world, query, expected):
    response = agent_client.get(f"/?{query}")
    assert sorted(listed(response)) == expected


@pytest.mark.parametrize("cap, shown", [(1, "More than 1 incidents"), (2, "2 incidents")])
def test_a_searched_queue_is_counted_up_to_the_cap(agent_client, world, monkeypatch, cap, shown):
    IncidentFactory(number="INC0000205", short_description="Gateway down")
    monkeypatch.setattr(selectors, "SEARCH_COUNT_CAP", cap)

    response = agent_client.get("/?q=gateway")

    assert sorted(listed(response)) == ["INC0000201", "INC0000205"]
    assert f'id="result-count">{shown}</p>' in response.content.decode()


@pytest.mark.parametrize(
    ("query", "states_only", "expected"),
    [
        ("", True, 2),
        ("view=done", True, 2),
        ("view=all&state=closed", True, 1),
        ("view=all", True, 4),
        ("view=mine", False, 1),
        ("view=unassigned", False, 1),
        ("view=breaching", False, 0),
        ("view=all&priority=4", False, 4),
    ],
)
def test_the_queue_counts_a_list_narrowed_by_state_alone_from_the_state_counts(
    agent_client, world, query, states_only, expected
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = agent_client.get(f"/?{query}")

    assert response.context["page"].paginator.count == expected == len(listed(response))
    counted = any(
        q["sql"].startswith(
            ('SELECT COUNT(*) AS "__count" FROM "socialitsm_incident"', 'SELECT COUNT(*) FROM (SELECT "socialitsm_')
        )
        for q in captured.captured_queries
    )
    assert counted is not (states_only and connection.vendor == "postgresql")


def test_queue_shows_the_columns_and_view_counts(agent_client, world):
    response = agent_client.get("/")
    html = response.content.decode()
    for heading in ("Number", "Pri", "Title", "Poster", "Network", "Service", "Assignee", "Activity", "Breach"):
        assert f'<th scope="col">{heading}</th>' in html
    assert "Mika Kallio" in html
    assert {value: count for value, _, count in response.context["views"]} == {
        "open": 2,
        "mine": 1,
        "unassigned": 1,
        "breaching": 0,
        "on_hold": 0,
        "done": 2,
        "all": 4,
    }


def test_live_poll_is_204_until_something_changes(agent_client, agent, world):
    stamp = selectors.queue_stamp()
    unchanged = agent_client.get(f"/queue/live/?view=unassigned&since={stamp}", HTTP_HX_REQUEST="true")
    assert unchanged.status_code == 204
    assert unchanged.content == b""

    incident_assign(incident=Incident.objects.get(number="INC0000201"), actor=agent, assignee=agent)
    changed = agent_client.get(f"/queue/live/?view=unassigned&since={stamp}", HTTP_HX_REQUEST="true")
    assert changed.status_code == 200
    html = changed.content.decode()
    assert '<tbody id="queue-rows" hx-swap-oob="true">' in html
    assert "No incidents match these filters." in html
    assert f"since={selectors.queue_stamp()}" in html
    assert "view=unassigned" in html


def test_live_poll_needs_an_agent(client, outsider):
    assert client.get("/queue/live/?since=0").status_code == 302
    client.force_login(outsider)
    assert client.get("/queue/live/?since=0").status_code == 403


def test_saved_view_save_pick_and_delete(agent_client, agent, world):
    response = agent_client.post(
        "/queue/views/", {"name": "Mika", "back": urlencode({"q": "mika", "view": "all", "evil": "x"})}
    )
    view = SavedView.objects.get(user=agent)
    assert (view.name, view.query, view.shared) == ("Mika", {"view": "all", "q": "mika"}, False)
    assert response["Location"] == "/?q=mika&view=all"
    page = agent_client.get("/")
    assert 'href="/?q=mika&amp;view=all">Mika</a>' in page.content.decode()

    assert agent_client.post(f"/queue/views/{view.pk}/delete/").status_code == 302
    assert not SavedView.objects.exists()


def test_shared_views_are_listed_for_others_and_only_the_owner_deletes(agent_client, world):
    otto = UserFactory(username="otto")
    shared = SavedView.objects.create(user=otto, name="Team mail", query={"q": "mail"}, shared=True)
    SavedView.objects.create(user=otto, name="Otto only", query={}, shared=False)
    html = agent_client.get("/").content.decode()
    assert "Team mail" in html
    assert "Otto only" not in html
    assert agent_client.post(f"/queue/views/{shared.pk}/delete/").status_code == 404
    assert SavedView.objects.count() == 2


def test_bulk_assign_to_me_from_the_queue(agent_client, agent, world):
    response = agent_client.post(
        "/incidents/bulk/",
        {
            "incidents": ["INC0000201", "INC0000203"],
            "action": "assign",
            "assignee": "me",
            "back": "view=all&q=x&page=2&next=//evil.example.com",
        },
        follow=True,
    )
    assert response.redirect_chain == [("/?view=all&q=x&page=2", 302)]
    assert [str(m) for m in response.context["messages"]] == ["2 incidents changed."]
    assert set(Incident.objects.filter(assignee=agent).values_list("number", flat=True)) == {
        "INC0000201",
        "INC0000202",
        "INC0000203",
    }


def test_bulk_state_names_each_refusal(agent_client, world):
    response = agent_client.post(
        "/incidents/bulk/",
        {"incidents": ["INC0000201", "INC0000204"], "action": "state", "state": "on_hold"},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == [
        "1 incident changed.",
        "INC0000204: an incident cannot move from Closed to On hold",
    ]
    assert Incident.objects.get(number="INC0000201").state == Incident.State.ON_HOLD


def test_bulk_without_selection_changes_nothing(agent_client, world):
    response = agent_client.post("/incidents/bulk/", {"action": "priority", "priority": "1"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Select at least one incident."]
    assert not IncidentEvent.objects.exists()


def test_bulk_needs_an_agent(client, outsider, world):
    client.force_login(outsider)
    response = client.post("/incidents/bulk/", {"incidents": ["INC0000201"], "action": "state", "state": "on_hold"})
    assert response.status_code == 403
    assert not IncidentEvent.objects.exists()


def test_triage_bulk_label_and_promote(agent_client, agent):
    first = PostFactory(triage_state=Post.Triage.QUEUED, text="Wifi down on floor 2")
    second = PostFactory(triage_state=Post.Triage.QUEUED, text="Thanks for the fix")
    html = agent_client.get(reverse("socialitsm:triage")).content.decode()
    assert f'name="posts" value="{first.pk}" form="triage-bulk"' in html

    agent_client.post("/posts/bulk/", {"posts": [first.pk, second.pk], "action": "not_complaint"}, follow=True)
    assert list(Post.objects.order_by("pk").values_list("label", flat=True)) == ["not_complaint"] * 2

    response = agent_client.post(
        "/posts/bulk/", {"posts": [first.pk, "x", "99999999"], "action": "promote", "back_state": "queued"}, follow=True
    )
    first.refresh_from_db()
    assert response.redirect_chain == [("/posts/?state=queued", 302)]
    assert [str(m) for m in response.context["messages"]] == [
        "1 post changed.",
        f"Post {first.pk} is in {first.incident.number}.",
    ]


def test_linking_to_an_open_major_links_each_and_names_the_refused(agent_client, agent):
    from socialitsm.services.major import major_open

    major = major_open(incidents=[IncidentFactory()], actor=agent, short_description="Mail outage")
    other = major_open(incidents=[IncidentFactory()], actor=agent, short_description="VPN outage")
    free, taken = IncidentFactory(), IncidentFactory(parent=other)
    response = agent_client.post(
        "/incidents/link/", {"incidents": [free.number, taken.number], "major": major.number}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == [
        f"{taken.number}: {taken.number} is already linked to another major incident; unlink it first",
        f"1 incident linked to {major.number}.",
    ]
    free.refresh_from_db()
    taken.refresh_from_db()
    assert (free.parent, taken.parent) == (major, other)


def test_an_sla_warning_reaches_an_open_queue(agent_client, sla_defaults):
    from datetime import UTC, datetime, timedelta

    import time_machine
    from django.db import transaction

    from socialitsm.models import Service, SlaClock
    from socialitsm.services.incidents import incident_open_from_post
    from socialitsm.services.sla import sla_sweep

    opened = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    post = PostFactory(posted_at=opened, ingested_at=opened)
    with time_machine.travel(opened, tick=False), transaction.atomic():
        incident = incident_open_from_post(
            post=post, rule=post.rule, service=Service.objects.get(slug="vpn"), urgency=1
        )
    clock = SlaClock.objects.filter(incident=incident, warn_at__isnull=False).order_by("warn_at").first()
    with time_machine.travel(clock.warn_at + timedelta(seconds=1), tick=False):
        stamp = selectors.queue_stamp()
        assert agent_client.get(f"/queue/live/?view=breaching&since={stamp}").status_code == 204
        assert sla_sweep(now=clock.warn_at + timedelta(seconds=1))["warned"] == 1
        response = agent_client.get(f"/queue/live/?view=breaching&since={stamp}")
    assert response.status_code == 200
    assert listed(response) == [incident.number]


def test_lists_showing_channels_decrypt_no_credentials(agent_client):
    """The queue and the posts API show each row's channel but never its credentials: none is
    decrypted to draw them (one per row, before they were left unread). The incident page reads
    them once per channel, for its reply box (tests/test_query_counts.py)."""
    from unittest import mock

    from socialitsm import crypto

    rule = WatchRuleFactory()
    incidents = [IncidentFactory(author=AuthorFactory(), channel=rule.channel) for _ in range(3)]
    for incident in incidents:
        PostFactory(incident=incident, author=incident.author, rule=rule)
    assert rule.channel.credentials  # the factory's channels hold a secret
    with mock.patch.object(crypto, "decrypt", wraps=crypto.decrypt) as decrypt:
        assert agent_client.get(reverse("socialitsm:queue")).status_code == 200
        assert agent_client.get("/api/v1/posts/").status_code == 200
    assert decrypt.call_count == 0
