from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from socialitsm import tasks
from socialitsm.exceptions import PermanentError
from socialitsm.models import Incident, IncidentEvent, Post, Reply

from ..factories import AuthorFactory, IncidentFactory, PostFactory, ReplyFactory, WatchRuleFactory

URL = "/api/v1/incidents/INC0000701/replies/"
SORRY = "Sorry about that, Maria. The VPN team is on it."


def at(hour: int) -> datetime:
    return datetime(2026, 11, 26, hour, 0, tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


@pytest.fixture
def rule(db):
    return WatchRuleFactory()


@pytest.fixture
def maria(db):
    return AuthorFactory(handle="@maria", external_id="u-maria")


@pytest.fixture
def incident(maria) -> Incident:
    return IncidentFactory(number="INC0000701", author=maria, state=Incident.State.IN_PROGRESS)


@pytest.fixture
def post(incident, maria, rule) -> Post:
    return PostFactory(
        external_id="p-first",
        rule=rule,
        incident=incident,
        author=maria,
        triage_state=Post.Triage.INCIDENT,
        posted_at=at(8),
    )


@pytest.mark.parametrize("visibility", ["public", "direct"])
def test_reply_is_queued_then_sent(
    agent_api, incident, post, fake_network, django_capture_on_commit_callbacks, visibility
):
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_api.post(URL, {"text": f"  {SORRY}  ", "visibility": visibility}, format="json")

    assert response.status_code == 201
    reply = Reply.objects.get()
    assert response.json() == {
        "id": reply.pk,
        "incident": "INC0000701",
        "post": post.pk,
        "visibility": visibility,
        "text": SORRY,
        "status": "queued",
        "attempts": 0,
        "error": "",
        "next_attempt_at": None,
        "retry_until": None,
        "external_id": "",
        "created_at": iso(reply.created_at),
        "sent_at": None,
        "agent": "agent.anna",
    }
    assert (reply.status, reply.attempts, reply.external_id, reply.channel_id) == ("sent", 1, "fake-1", post.channel_id)
    assert fake_network.sent == [
        {"id": "fake-1", "to": "p-first", "text": SORRY, "visibility": visibility, "key": str(reply.idempotency_key)}
    ]
    incident.refresh_from_db()
    assert incident.first_response_at == reply.sent_at
    assert list(IncidentEvent.objects.filter(incident=incident).values_list("kind", flat=True)) == [
        "reply_queued",
        "reply_sent",
        "first_response",
    ]


def test_reply_defaults_to_the_callers_latest_post(
    agent_api, incident, post, maria, rule, fake_network, django_capture_on_commit_callbacks
):
    latest_by_maria = PostFactory(
        external_id="p-again",
        rule=rule,
        incident=incident,
        author=maria,
        triage_state=Post.Triage.INCIDENT,
        posted_at=at(9),
    )
    PostFactory(
        external_id="p-other", rule=rule, incident=incident, triage_state=Post.Triage.INCIDENT, posted_at=at(10)
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_api.post(URL, {"text": SORRY, "visibility": "public"}, format="json")

    assert response.status_code == 201
    assert response.json()["post"] == latest_by_maria.pk
    assert [m["to"] for m in fake_network.sent] == ["p-again"]


def test_reply_without_known_caller_answers_the_latest_post(
    agent_api, rule, fake_network, django_capture_on_commit_callbacks
):
    incident = IncidentFactory(number="INC0000701")
    PostFactory(external_id="p-1", rule=rule, incident=incident, triage_state=Post.Triage.INCIDENT, posted_at=at(8))
    latest = PostFactory(
        external_id="p-2", rule=rule, incident=incident, triage_state=Post.Triage.INCIDENT, posted_at=at(9)
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_api.post(URL, {"text": SORRY, "visibility": "direct"}, format="json")

    assert response.status_code == 201
    assert response.json()["post"] == latest.pk
    assert [(m["to"], m["visibility"]) for m in fake_network.sent] == [("p-2", "direct")]


def test_reply_to_a_named_post(
    agent_api, incident, post, maria, rule, fake_network, django_capture_on_commit_callbacks
):
    PostFactory(
        external_id="p-again",
        rule=rule,
        incident=incident,
        author=maria,
        triage_state=Post.Triage.INCIDENT,
        posted_at=at(9),
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_api.post(URL, {"text": SORRY, "visibility": "public", "post": post.pk}, format="json")

    assert response.status_code == 201
    assert response.json()["post"] == post.pk
    assert [m["to"] for m in fake_network.sent] == ["p-first"]


def test_reply_longer_than_the_network_allows_is_refused(
    agent_api, incident, post, fake_network, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = agent_api.post(URL, {"text": "x" * 501, "visibility": "public"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"text": ["the reply is 501 characters; Replay allows 500"]}
    assert Reply.objects.count() == 0
    assert callbacks == []
    assert fake_network.sent == []


@pytest.mark.parametrize("state", [Incident.State.CLOSED, Incident.State.CANCELED])
def test_reply_to_a_finished_incident_is_refused(agent_api, incident, post, fake_network, state):
    Incident.objects.filter(pk=incident.pk).update(state=state)

    response = agent_api.post(URL, {"text": SORRY, "visibility": "public"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": [f"INC0000701 is {state.label.lower()}; reopen it to reply"]}
    assert Reply.objects.count() == 0
    assert fake_network.sent == []


def test_reply_to_another_incidents_post_is_refused(agent_api, incident, post, fake_network):
    stranger = PostFactory(incident=IncidentFactory(number="INC0000702"), triage_state=Post.Triage.INCIDENT)

    response = agent_api.post(URL, {"text": SORRY, "visibility": "public", "post": stranger.pk}, format="json")

    assert response.status_code == 400
    assert response.json() == {"post": ["that post is not part of INC0000701"]}
    assert Reply.objects.count() == 0


def test_reply_to_an_incident_without_posts_is_refused(agent_api, incident, fake_network):
    response = agent_api.post(URL, {"text": SORRY, "visibility": "public"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"post": ["INC0000701 has no posts to answer"]}
    assert Reply.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"visibility": "public"}, {"text": ["This field is required."]}),
        ({"text": "   ", "visibility": "public"}, {"text": ["This field may not be blank."]}),
        ({"text": SORRY}, {"visibility": ["This field is required."]}),
        ({"text": SORRY, "visibility": "shout"}, {"visibility": ['"shout" is not a valid choice.']}),
    ],
)
def test_reply_input_is_validated(agent_api, incident, post, fake_network, body, expected):
    response = agent_api.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json() == expected
    assert Reply.objects.count() == 0


def test_reply_the_network_refuses_is_marked_failed(
    agent_api, incident, post, fake_network, django_capture_on_commit_callbacks
):
    fake_network.errors.append(PermanentError("blocked by the recipient"))

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_api.post(URL, {"text": SORRY, "visibility": "direct"}, format="json")

    assert response.status_code == 201
    reply = Reply.objects.get()
    assert (reply.status, reply.error, reply.sent_at) == ("failed", "blocked by the recipient", None)
    incident.refresh_from_db()
    assert incident.first_response_at is None
    assert fake_network.sent == []


def test_replies_of_an_incident(agent_api, agent, incident, post):
    first = ReplyFactory(
        incident=incident,
        post=post,
        visibility="public",
        text="one",
        agent=agent,
        created_at=at(9),
    )
    second = ReplyFactory(
        incident=incident,
        post=post,
        visibility="direct",
        text="two",
        agent=agent,
        created_at=at(10),
    )
    other = IncidentFactory(number="INC0000702")
    ReplyFactory(incident=other, post=post, visibility="public", text="elsewhere", created_at=at(9))

    response = agent_api.get(URL)

    assert response.status_code == 200
    assert [(r["id"], r["text"]) for r in response.json()["results"]] == [(first.pk, "one"), (second.pk, "two")]


@pytest.fixture
def outbox(agent, incident, post) -> dict[str, Reply]:
    other = IncidentFactory(number="INC0000702")
    return {
        "sent": ReplyFactory(
            incident=incident,
            post=post,
            visibility="public",
            text="one",
            agent=agent,
            status="sent",
            external_id="fake-9",
            created_at=at(9),
            sent_at=at(9),
        ),
        "failed": ReplyFactory(
            incident=incident,
            post=post,
            visibility="direct",
            text="two",
            agent=agent,
            status="failed",
            error="blocked",
            created_at=at(10),
        ),
        "queued": ReplyFactory(
            incident=other,
            post=post,
            visibility="public",
            text="three",
            agent=None,
            created_at=at(11),
        ),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["one", "two", "three"]),
        ("status=sent", ["one"]),
        ("status=failed&status=queued", ["two", "three"]),
        ("visibility=public", ["one", "three"]),
        ("visibility=direct", ["two"]),
        ("incident=INC0000701", ["one", "two"]),
        ("incident=INC0000702&visibility=public", ["three"]),
        ("ordering=-created_at", ["three", "two", "one"]),
    ],
)
def test_reply_list_filters(agent_api, outbox, query, expected):
    response = agent_api.get(f"/api/v1/replies/?{query}")

    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == expected


def test_reply_detail(agent_api, outbox, post):
    reply = outbox["sent"]

    response = agent_api.get(f"/api/v1/replies/{reply.pk}/")

    assert response.status_code == 200
    assert response.json() == {
        "id": reply.pk,
        "incident": "INC0000701",
        "post": post.pk,
        "visibility": "public",
        "text": "one",
        "status": "sent",
        "attempts": 0,
        "error": "",
        "next_attempt_at": None,
        "retry_until": None,
        "external_id": "fake-9",
        "created_at": "2026-11-26T09:00:00Z",
        "sent_at": "2026-11-26T09:00:00Z",
        "agent": "agent.anna",
    }


# -- retry and cancel ------------------------------------------------------------------------------

NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


def _reply(incident, post, agent, **state) -> Reply:
    return ReplyFactory(incident=incident, post=post, agent=agent, text="On it", created_at=at(11), **state)


WAITING = {
    "attempts": 4,
    "error": "HTTP 503",
    "retry_after": NOON + timedelta(minutes=4),
    "retry_until": NOON + timedelta(hours=23),
}


def test_a_waiting_reply_shows_its_next_attempt(clock, agent_api, agent, incident, post):
    reply = _reply(incident, post, agent, **WAITING)

    response = agent_api.get(f"/api/v1/replies/{reply.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["attempts"], body["error"]) == ("queued", 4, "HTTP 503")
    assert (body["next_attempt_at"], body["retry_until"]) == ("2026-11-26T12:04:00Z", "2026-11-27T11:00:00Z")


@pytest.mark.parametrize("state", [{"status": "failed", "error": "blocked", "attempts": 1}, WAITING])
def test_retry_sends_a_failed_or_waiting_reply_now(
    clock, agent_api, agent, incident, post, fake_network, django_capture_on_commit_callbacks, state
):
    reply = _reply(incident, post, agent, **state)

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_api.post(f"/api/v1/replies/{reply.pk}/retry/")

    assert response.status_code == 200
    body = response.json()
    # The attempts made count as one: the send looks first for a copy one of them got out.
    assert (body["status"], body["attempts"], body["error"], body["next_attempt_at"]) == ("queued", 1, "", None)
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.external_id) == ("sent", 2, "fake-1")
    assert (len(fake_network.sent), fake_network.lookups) == (1, 1)
    event = IncidentEvent.objects.get(incident=incident, kind="reply_retried")
    assert (event.actor, event.new_value) == (agent, "Queued")


def test_cancel_withdraws_a_waiting_reply(clock, agent_api, agent, incident, post, fake_network):
    reply = _reply(incident, post, agent, **WAITING)

    response = agent_api.post(f"/api/v1/replies/{reply.pk}/cancel/")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["next_attempt_at"], body["retry_until"]) == ("canceled", None, None)
    clock.move_to(NOON + timedelta(hours=1))
    tasks.replies_send_due_task()
    assert Reply.objects.get(pk=reply.pk).status == "canceled"
    assert fake_network.sent == []
    event = IncidentEvent.objects.get(incident=incident, kind="reply_canceled")
    assert (event.actor, event.old_value, event.new_value, event.message) == (agent, "Queued", "Canceled", "On it")


SENDING = {"status": "sending", "attempts": 1}
SENT = {"status": "sent", "external_id": "fake-9"}
IN_FLIGHT = "this reply is being sent right now; wait for the network's answer"
CANCELED = "this reply was canceled; write it again to send it"


@pytest.mark.parametrize(
    ("command", "state", "detail"),
    [
        ("retry", {}, "this reply is queued and has not failed; it is sent shortly, there is nothing to retry"),
        ("retry", SENDING, IN_FLIGHT),
        ("retry", SENT, "this reply was already sent; there is nothing to retry"),
        ("retry", {"status": "canceled"}, CANCELED),
        ("cancel", SENDING, IN_FLIGHT),
        ("cancel", SENT, "this reply was already sent; there is nothing to cancel"),
        ("cancel", {"status": "canceled"}, CANCELED),
    ],
)
def test_a_command_the_reply_state_does_not_allow_is_a_conflict(
    clock, agent_api, agent, incident, post, fake_network, command, state, detail
):
    reply = _reply(incident, post, agent, **state)
    before = Reply.objects.filter(pk=reply.pk).values().get()

    response = agent_api.post(f"/api/v1/replies/{reply.pk}/{command}/")

    assert response.status_code == 409
    assert response.json() == {"detail": detail}
    assert Reply.objects.filter(pk=reply.pk).values().get() == before
    assert IncidentEvent.objects.filter(incident=incident).count() == 0
    assert fake_network.sent == []


@pytest.mark.parametrize("command", ["retry", "cancel"])
def test_reply_commands_need_an_agent(api, outsider, agent, incident, post, fake_network, command):
    reply = _reply(incident, post, agent, status="failed", error="blocked")
    url = f"/api/v1/replies/{reply.pk}/{command}/"

    assert api.post(url).status_code == 401
    api.force_authenticate(outsider)
    assert api.post(url).status_code == 403
    assert Reply.objects.get(pk=reply.pk).status == "failed"
    assert IncidentEvent.objects.filter(incident=incident).count() == 0
    assert fake_network.sent == []
