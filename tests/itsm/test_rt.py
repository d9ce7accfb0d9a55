"""Request Tracker 5 for real: create, update, comment, resolve in RT and pull RT's changes back."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import requests
import time_machine
from django.db import transaction

from socialitsm.exceptions import PermanentError
from socialitsm.itsm import adapter_for
from socialitsm.models import Incident, IncidentEvent, ItsmConnection, ItsmLink
from socialitsm.services.incidents import incident_update
from socialitsm.services.itsm_sync import incident_links_changed, itsm_link_sync, itsm_ref, itsm_tick, ticket_fields
from socialitsm.services.replies import reply_queue
from socialitsm.services.routing import posts_process

from ..conftest import rt_peer
from ..factories import AuthorFactory, IncidentFactory, PostFactory

pytestmark = [pytest.mark.django_db, pytest.mark.rt]


@pytest.fixture
def rt(settings):
    settings.SOCIALITSM_ALLOW_PRIVATE_URLS = True  # the peer listens on 127.0.0.1
    settings.SOCIALITSM_SITE_URL = "https://social.example.com"
    # RT keeps its tickets between runs: a fresh reference prefix keeps runs apart.
    settings.SOCIALITSM_ITSM_REF_PREFIX = f"test-{uuid.uuid4().hex[:12]}"
    return rt_peer()


@pytest.fixture
def connection(rt):
    return ItsmConnection.objects.create(
        name="RT",
        slug="rt",
        kind="rt",
        base_url=rt["RT_URL"],
        credentials={"token": rt["RT_TOKEN"]},
        config={"queue": rt.get("RT_QUEUE", "Social"), "external_id_field": rt.get("RT_CF", "ExternalID")},
        poll_interval=60,
    )


def rt_get(rt: dict[str, str], path: str, **params: str) -> requests.Response:
    response = requests.get(
        f"{rt['RT_URL']}/REST/2.0{path}",
        headers={"Authorization": f"token {rt['RT_TOKEN']}"},
        params=params,
        timeout=10,
    )
    response.raise_for_status()
    return response


def rt_history(rt: dict[str, str], ticket_id: str) -> list[dict]:
    return rt_get(rt, f"/ticket/{ticket_id}/history", fields="Type,Field,OldValue,NewValue", per_page="100").json()[
        "items"
    ]


def rt_contents(rt: dict[str, str], ticket_id: str) -> list[str]:
    items = rt_get(rt, f"/ticket/{ticket_id}/attachments", fields="Content,ContentType", per_page="100").json()["items"]
    return [item["Content"] for item in items if item.get("ContentType") == "text/plain"]


@pytest.fixture
def incident(agent):
    author = AuthorFactory(handle="@maria", name="Maria")
    post = PostFactory(
        author=author,
        text="VPN down again, third time this week #helpdesk",
        url="https://social.example.com/@maria/1",
    )
    posts_process(post_ids=[post.pk])
    post.refresh_from_db()
    return post.incident


def test_incident_from_post_appears_in_rt_then_reply_and_rt_resolution_round_trip(
    rt, connection, incident, agent, django_capture_on_commit_callbacks
):
    # Opened from a social post: the tick links and creates it in RT.
    itsm_tick()
    link = ItsmLink.objects.get(connection=connection, incident=incident)
    assert link.status == "ok", link.last_error
    ticket = rt_get(rt, f"/ticket/{link.remote_id}").json()
    assert ticket["Subject"] == incident.short_description
    assert ticket["Status"] == "new"
    assert ticket["Priority"] == str({1: 100, 2: 75, 3: 50, 4: 25, 5: 0}[incident.priority])
    assert ticket["CustomFields"][0]["values"] == [f"{rt_peer_prefix()}:{incident.number}"]
    content = rt_contents(rt, link.remote_id)[0]
    assert "VPN down again, third time this week #helpdesk" in content
    assert "https://social.example.com/@maria/1" in content
    assert content.endswith(f"SocialITSM {incident.number}: https://social.example.com/incidents/{incident.number}/")
    assert link.remote_url == f"{rt['RT_URL']}/Ticket/Display.html?id={link.remote_id}"

    # The agent's public reply becomes RT correspondence.
    post = incident.posts.get()
    with django_capture_on_commit_callbacks(execute=True):
        reply_queue(incident=incident, post=post, text="We are on it, sorry Maria.", visibility="public", agent=agent)
    itsm_tick()
    history = rt_history(rt, link.remote_id)
    assert [h["Type"] for h in history if h["Type"] in ("Correspond", "Comment")] == ["Correspond"]
    assert (
        "Public reply by agent.anna to @maria on Replay:\n\nWe are on it, sorry Maria."
        in rt_contents(rt, link.remote_id)[-1]
    )

    # RT opens a new ticket when we correspond; the next poll brings that back.
    polled = ItsmConnection.objects.get().last_polled_at
    with time_machine.travel(polled + timedelta(seconds=60), tick=False):
        itsm_tick()
    incident.refresh_from_db()
    assert incident.state == "in_progress"

    # Resolved in RT: resolved here within one poll interval.
    put = requests.put(
        f"{rt['RT_URL']}/REST/2.0/ticket/{link.remote_id}",
        json={"Status": "resolved"},
        headers={"Authorization": f"token {rt['RT_TOKEN']}"},
        timeout=10,
    )
    assert put.status_code == 200
    polled = ItsmConnection.objects.get().last_polled_at
    with time_machine.travel(polled + timedelta(seconds=59), tick=False):
        itsm_tick()
        incident.refresh_from_db()
        assert incident.state == "in_progress"
    with time_machine.travel(polled + timedelta(seconds=60), tick=False):
        itsm_tick()
    incident.refresh_from_db()
    assert incident.state == "resolved"
    event = incident.events.filter(kind="changed", field="state").last()
    assert (event.old_value, event.new_value, event.actor) == ("in_progress", "resolved", None)
    assert event.message == f"from RT #{link.remote_id} is resolved"
    # Nothing echoes back to RT: the resolution came from there.
    assert [h["Type"] for h in rt_history(rt, link.remote_id)].count("Status") == 2


def rt_peer_prefix() -> str:
    from socialitsm.conf import conf

    return conf.ITSM_REF_PREFIX


def test_changes_go_out_and_direct_messages_stay_internal(
    rt, connection, incident, agent, django_capture_on_commit_callbacks
):
    itsm_tick()
    link = ItsmLink.objects.get()
    incident_update(incident=incident, actor=agent, state="on_hold", impact=1, short_description="VPN outage")
    post = incident.posts.get()
    post.is_direct = True
    post.save(update_fields=["is_direct"])
    with django_capture_on_commit_callbacks(execute=True):
        reply_queue(incident=incident, post=post, text="Can you DM me your office?", visibility="direct", agent=agent)
    itsm_tick()
    link.refresh_from_db()
    assert link.status == "ok", link.last_error
    ticket = rt_get(rt, f"/ticket/{link.remote_id}").json()
    incident.refresh_from_db()
    assert (ticket["Status"], ticket["Subject"], ticket["Priority"]) == (
        "stalled",
        "VPN outage",
        str({1: 100, 2: 75, 3: 50, 4: 25, 5: 0}[incident.priority]),
    )
    kinds = [h["Type"] for h in rt_history(rt, link.remote_id) if h["Type"] in ("Correspond", "Comment")]
    assert kinds == ["Comment"]
    assert rt_contents(rt, link.remote_id)[-1] == (
        "Direct message by agent.anna to @maria on Replay (private; internal note):\n\nCan you DM me your office?"
    )


def test_rt_refusal_inside_http_200_fails_the_link_with_rt_message(rt, connection, incident, agent):
    itsm_tick()
    connection.state_map = {"out": {"on_hold": "bogus"}}
    connection.save()
    incident_update(incident=incident, actor=agent, state="on_hold")
    link = itsm_link_sync(link=ItsmLink.objects.get())
    assert link.status == "failed"
    assert link.last_error.startswith(f"RT refused Status on ticket {link.remote_id}: ")
    assert "'bogus' isn't a valid status" in link.last_error
    assert IncidentEvent.objects.filter(incident=incident, kind="itsm_failed").count() == 1


def test_find_by_reference_links_the_existing_ticket_instead_of_creating_another(rt, connection, incident):
    adapter = adapter_for(connection)
    made = adapter.create(ticket_fields(incident), idempotency_key="unused")  # a create whose answer was lost
    link = itsm_link_sync(
        link=ItsmLink.objects.create(
            connection=connection, incident=incident, external_ref=f"{rt_peer_prefix()}:{incident.number}"
        )
    )
    assert (link.status, link.remote_id) == ("ok", made.remote_id)
    found = rt_get(rt, "/tickets", query=f"'CF.{{ExternalID}}' = '{rt_peer_prefix()}:{incident.number}'").json()
    assert found["count"] == 1


def test_bad_token_is_a_permanent_readable_error(rt, connection, incident):
    connection.credentials = {"token": "1-14-nottherighttoken"}
    connection.save()
    with pytest.raises(PermanentError, match="authentication refused"):
        adapter_for(connection).find("x")
    assert Incident.objects.count() == 1


def test_queue_without_our_custom_field_fails_before_creating_anything(rt, connection, incident):
    connection.config = {**connection.config, "external_id_field": "NoSuchField"}
    connection.save()
    before = rt_get(rt, "/tickets", query="id > 0", per_page="1").json()["total"]
    link = itsm_link_sync(link=ItsmLink.objects.create(connection=connection, incident=incident, external_ref="x"))
    assert (link.status, link.remote_id) == ("failed", "")
    assert link.last_error == "RT queue 'Social' has no custom field 'NoSuchField'; apply it to the queue"
    assert rt_get(rt, "/tickets", query="id > 0", per_page="1").json()["total"] == before


def test_base_url_of_the_old_rest_api_is_a_readable_permanent_error(rt, connection, incident):
    """RT's REST 1.0 answers any path below it with 200 and plain text: the link fails, saying so,
    instead of a JSON error escaping the sync and leaving the link leased."""
    connection.base_url = f"{rt['RT_URL']}/REST/1.0"
    connection.save()
    before = rt_get(rt, "/tickets", query="id > 0", per_page="1").json()["total"]
    link = itsm_link_sync(link=ItsmLink.objects.create(connection=connection, incident=incident, external_ref="x"))
    assert (link.status, link.remote_id, link.lease_until, link.attempts) == ("failed", "", None, 1)
    host = rt["RT_URL"].split("://", 1)[1]
    assert link.last_error.startswith(
        f"rt answered HTTP 200 from {host} with text/plain, not JSON (is the base URL the suite's API?): RT/5"
    )
    assert rt_get(rt, "/tickets", query="id > 0", per_page="1").json()["total"] == before


def rt_parents(rt: dict[str, str], ticket_id: str) -> list[str]:
    links = rt_get(rt, f"/ticket/{ticket_id}").json()["_hyperlinks"]
    return [str(item["id"]) for item in links if item["ref"] == "parent"]


def test_a_major_incident_and_its_child_become_member_of_in_rt(
    rt, connection, incident, django_capture_on_commit_callbacks
):
    major = IncidentFactory(short_description="Mail down for everyone", is_major=True)
    incident.parent = major
    incident.save(update_fields=["parent"])
    link = ItsmLink.objects.create(connection=connection, incident=incident, external_ref=itsm_ref(incident))

    link = itsm_link_sync(link=link)

    assert link.status == "ok", link.last_error
    parent_link = ItsmLink.objects.get(incident=major)
    assert parent_link.status == "ok", parent_link.last_error
    # The major incident's ticket was made first, and the child is its member.
    assert int(parent_link.remote_id) > int(link.remote_id)
    assert rt_parents(rt, link.remote_id) == [parent_link.remote_id]

    # A retry that finds the link already there ("Link already exists") is fine, and adds none.
    ItsmLink.objects.filter(pk=link.pk).update(pushed={**link.pushed, "parent": ""})
    link = itsm_link_sync(link=link)
    assert link.status == "ok", link.last_error
    assert rt_parents(rt, link.remote_id) == [parent_link.remote_id]

    # Taken out of the major incident: the membership goes.
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        incident.parent = None
        incident.save(update_fields=["parent"])
        incident_links_changed(incident=incident, previous_parent=major)
    link.refresh_from_db()
    assert (link.status, link.pushed["parent"]) == ("ok", "")
    assert rt_parents(rt, link.remote_id) == []


def test_rt_refuses_a_parent_ticket_that_does_not_exist(rt, connection, incident):
    link = itsm_link_sync(
        link=ItsmLink.objects.create(connection=connection, incident=incident, external_ref=itsm_ref(incident))
    )
    with pytest.raises(PermanentError) as caught:
        adapter_for(connection).parent_link(link.remote_id, "99999999")
    assert caught.value.message == (
        f"RT refused AddMemberOf 99999999 on ticket {link.remote_id}: Couldn't resolve '99999999' into a link."
    )


def test_internal_note_is_an_rt_comment_never_correspondence(rt, connection, incident, agent):
    from socialitsm.services.notes import note_add

    itsm_tick()
    link = ItsmLink.objects.get()
    note_add(incident=incident, author=agent, text="Poster is on the Berlin site; VPN pool B.")
    itsm_tick()
    link.refresh_from_db()
    assert link.status == "ok", link.last_error
    kinds = [h["Type"] for h in rt_history(rt, link.remote_id) if h["Type"] in ("Correspond", "Comment")]
    assert kinds == ["Comment"]
    assert rt_contents(rt, link.remote_id)[-1] == (
        "Internal note by agent.anna (not sent to the poster):\n\nPoster is on the Berlin site; VPN pool B."
    )
