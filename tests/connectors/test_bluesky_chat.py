"""Bluesky chat contract tests: the chat log (getLog) read into direct posts through the chat
proxy, answers threaded into the incident our message came from, deletions, and refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import partial

import pytest
import responses
import time_machine
from responses import matchers

from socialitsm.connectors.bluesky import BlueskyConnector
from socialitsm.models import Channel, Incident, Post, Reply, WatchRule
from socialitsm.services.ingest import channel_poll
from socialitsm.services.replies import reply_options, reply_queue

from ..factories import AuthorFactory, PostFactory, WatchRuleFactory
from ..fixtures import load_fixture
from .shared import ACCESS, ENTRYWAY, JANE, JANE_POST, PDS, bluesky_channel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public_dns", "bluesky_sessions")]

BOB = "did:plc:bob7abcdefghijklmnopq"
JANE_CONVO = "3lbc2zq6pxk2a"
BOB_CONVO = "3lbc3bobconvo"
OUR_MESSAGE = "3lbc2zr4abc2b"
GET_LOG = f"{PDS}/xrpc/chat.bsky.convo.getLog"
PROXY = {"atproto-proxy": "did:web:api.bsky.chat#bsky_chat"}

fixture = partial(load_fixture, "bluesky")


@pytest.fixture(autouse=True)
def _on_the_fixtures_day():
    with time_machine.travel(datetime(2026, 8, 21, 11, 50, tzinfo=UTC), tick=False):
        yield


@pytest.fixture
def channel() -> Channel:
    return bluesky_channel()


@pytest.fixture
def direct(channel) -> WatchRule:
    return WatchRuleFactory(channel=channel, name="direct messages", kind="direct", query="")


def _login() -> None:
    responses.post(f"{ENTRYWAY}/xrpc/com.atproto.server.createSession", json=fixture("session__create"))


def _profiles() -> None:
    """The senders' handles, and Bob's conversation, in which we never wrote."""
    for did, handle in ((JANE, "jane.example.com"), (BOB, "bob.example.org")):
        responses.get(
            f"{PDS}/xrpc/app.bsky.actor.getProfile",
            json={"did": did, "handle": handle},
            match=[matchers.query_param_matcher({"actor": did})],
        )
    bob = fixture("chat_log__messages")["logs"][5]["message"]
    _messages(BOB_CONVO, [bob])


def _messages(convo: str, messages: list[dict]) -> responses.BaseResponse:
    return responses.get(
        f"{PDS}/xrpc/chat.bsky.convo.getMessages",
        json={"messages": messages},
        match=[
            matchers.query_param_matcher({"convoId": convo, "limit": "50"}),
            matchers.header_matcher({"Authorization": f"Bearer {ACCESS}", **PROXY}),
        ],
    )


def _log(answer: dict, *, cursor: str | None = None) -> responses.BaseResponse:
    params = {"cursor": cursor} if cursor else {}
    return responses.get(
        GET_LOG,
        json=answer,
        match=[
            matchers.query_param_matcher(params),
            matchers.header_matcher({"Authorization": f"Bearer {ACCESS}", **PROXY}),
        ],
    )


@responses.activate
def test_the_chat_log_becomes_direct_posts_and_its_cursor_is_kept(channel, direct):
    _login()
    _profiles()
    first = _log(fixture("chat_log__messages"))
    # The log has nothing after its cursor: reading stops there.
    following = _log({"logs": [], "cursor": "2222222222230"}, cursor="2222222222230")

    assert channel_poll(channel=channel) == 2

    assert (first.call_count, following.call_count) == (1, 1)
    jane = Post.objects.get(external_id="3lbc2zt7jane1")
    assert (
        jane.text,
        jane.is_direct,
        jane.conversation_id,
        jane.in_reply_to,
        jane.url,
        jane.posted_at,
        jane.rule_id,
    ) == (
        "Sure, it is jane@example.com. Still cannot log in.",
        True,
        JANE_CONVO,
        OUR_MESSAGE,
        f"https://bsky.app/messages/{JANE_CONVO}",
        datetime(2026, 8, 21, 10, 21, 30, tzinfo=UTC),
        direct.pk,
    )
    assert (jane.author.external_id, jane.author.handle, jane.author.profile_url) == (
        JANE,
        "@jane.example.com",
        "https://bsky.app/profile/jane.example.com",
    )
    bob = Post.objects.get(external_id="3lbc3bobmsg01")
    assert (bob.conversation_id, bob.in_reply_to, bob.is_direct) == (BOB_CONVO, "", True)
    assert bob.details == [
        {
            "kind": "quote",
            "text": "Double charge again on AcmePay",
            "url": "https://bsky.app/profile/bob.example.org/post/3lbc3postaaa",
        }
    ]
    # Our own message, the reaction, the read mark and the message deleted before we saw it: no posts.
    assert Post.objects.count() == 2
    direct.refresh_from_db()
    assert direct.cursor == {
        "log": "2222222222230",
        "from": "2026-08-20T11:50:00.000Z",
        "ours": {JANE_CONVO: OUR_MESSAGE, BOB_CONVO: ""},
    }
    channel.refresh_from_db()
    assert (channel.health, channel.last_error) == ("ok", "")


@responses.activate
def test_a_later_poll_resumes_from_the_cursor_and_stores_each_message_once(channel, direct):
    direct.cursor = {"log": "2222222222224", "from": "2026-08-20T11:50:00.000Z", "ours": {JANE_CONVO: OUR_MESSAGE}}
    direct.save()
    _login()
    _profiles()
    # A log replayed from an older position (the chat service's cursor moves at its own pace).
    _log(fixture("chat_log__messages"), cursor="2222222222224")
    _log({"logs": []}, cursor="2222222222230")
    assert channel_poll(channel=channel) == 2
    _log({"logs": [], "cursor": "2222222222230"}, cursor="2222222222230")
    assert channel_poll(channel=channel) == 0
    assert Post.objects.count() == 2
    direct.refresh_from_db()
    assert direct.cursor["log"] == "2222222222230"


@responses.activate
def test_a_page_without_a_cursor_moves_on_to_its_last_rev(channel, direct):
    _login()
    _profiles()
    answer = fixture("chat_log__messages")
    del answer["cursor"]
    _log(answer)
    _log({"logs": []}, cursor="2222222222230")
    assert channel_poll(channel=channel) == 2
    direct.refresh_from_db()
    assert direct.cursor["log"] == "2222222222230"


@responses.activate
def test_messages_from_before_listening_began_are_not_taken(channel, direct):
    _login()
    _profiles()
    answer = fixture("chat_log__messages")
    answer["logs"][3]["message"]["sentAt"] = "2026-08-19T10:21:30.000Z"
    _log(answer)
    _log({"logs": []}, cursor="2222222222230")
    assert channel_poll(channel=channel) == 1
    assert list(Post.objects.values_list("external_id", flat=True)) == ["3lbc3bobmsg01"]


@responses.activate
def test_an_answer_to_our_direct_message_joins_its_incident(channel, direct, agent, django_capture_on_commit_callbacks):
    jane = AuthorFactory(network="bluesky", external_id=JANE, handle="@jane.example.com")
    incident = Incident.objects.create(short_description="AcmeMail down")
    post = PostFactory(
        channel=channel,
        external_id=JANE_POST,
        author=jane,
        conversation_id=JANE_POST,
        incident=incident,
        triage_state=Post.Triage.INCIDENT,
    )
    Reply.objects.create(
        incident=incident,
        post=post,
        channel=channel,
        visibility="direct",
        text="Hi Jane, this is Acme Support. Could you send us the email address on your account?",
        status=Reply.Status.SENT,
        external_id=OUR_MESSAGE,
    )
    _login()
    _profiles()
    _log(fixture("chat_log__messages"))
    _log({"logs": []}, cursor="2222222222230")
    with django_capture_on_commit_callbacks(execute=True):
        channel_poll(channel=channel)
    answer = Post.objects.get(external_id="3lbc2zt7jane1")
    assert (answer.incident_id, answer.triage_state) == (incident.pk, Post.Triage.INCIDENT)

    # A later answer in the same conversation, in a later poll, joins the same incident.
    later = {
        "cursor": "2222222222231",
        "logs": [
            {
                "$type": "chat.bsky.convo.defs#logCreateMessage",
                "rev": "2222222222231",
                "convoId": JANE_CONVO,
                "message": {
                    "id": "3lbc2zt7jane2",
                    "rev": "2222222222231",
                    "text": "Any news?",
                    "sender": {"did": JANE},
                    "sentAt": "2026-08-21T11:40:00.000Z",
                },
            }
        ],
    }
    _log(later, cursor="2222222222230")
    _log({"logs": []}, cursor="2222222222231")
    with django_capture_on_commit_callbacks(execute=True):
        channel_poll(channel=channel)
    assert Post.objects.get(external_id="3lbc2zt7jane2").incident_id == incident.pk


@responses.activate
def test_an_answer_to_a_message_we_sent_before_listening_began_joins_its_incident(
    channel, direct, django_capture_on_commit_callbacks
):
    jane = AuthorFactory(network="bluesky", external_id=JANE, handle="@jane.example.com")
    incident = Incident.objects.create(short_description="AcmeMail down")
    post = PostFactory(channel=channel, external_id=JANE_POST, author=jane, incident=incident)
    Reply.objects.create(
        incident=incident,
        post=post,
        channel=channel,
        visibility="direct",
        text="Could you send us the email address on your account?",
        status=Reply.Status.SENT,
        external_id=OUR_MESSAGE,
    )
    _login()
    _profiles()
    logs = fixture("chat_log__messages")["logs"]
    # The log starts after our message: only Jane's answer is in it.
    _log({"cursor": "2222222222225", "logs": [logs[3]]})
    _log({"logs": []}, cursor="2222222222225")
    ours = logs[1]["message"]
    later = {**ours, "id": "3lbc2zz9later", "sentAt": "2026-08-21T10:30:00.000Z"}  # after her answer
    lookup = _messages(JANE_CONVO, [later, logs[3]["message"], ours])
    with django_capture_on_commit_callbacks(execute=True):
        channel_poll(channel=channel)
    answer = Post.objects.get(external_id="3lbc2zt7jane1")
    # Ingest points an answer to our message at the post we answered.
    assert (answer.in_reply_to, answer.incident_id) == (JANE_POST, incident.pk)
    assert lookup.call_count == 1
    direct.refresh_from_db()
    assert direct.cursor["ours"] == {JANE_CONVO: OUR_MESSAGE}


@responses.activate
def test_a_deleted_message_redacts_our_copy(channel, direct):
    bob = AuthorFactory(network="bluesky", external_id=BOB, handle="@bob.example.org")
    stored = PostFactory(
        channel=channel, external_id="3lbc3oldmsg00", author=bob, text="my card number is 4111", is_direct=True
    )
    _login()
    _profiles()
    _log(fixture("chat_log__messages"))
    _log({"logs": []}, cursor="2222222222230")
    channel_poll(channel=channel)
    stored.refresh_from_db()
    assert (stored.text, stored.gone_reason, stored.raw) == ("[deleted by the author]", "deleted", {})


@responses.activate
def test_an_app_password_without_chat_access_says_what_to_change(channel, direct):
    direct.cursor = {"log": "2222222222224"}
    direct.save()
    _login()
    responses.get(GET_LOG, status=400, json=fixture("error__bad_token_scope"))
    refresh = responses.post(f"{PDS}/xrpc/com.atproto.server.refreshSession", json=fixture("session__refresh"))
    assert channel_poll(channel=channel) == 0
    channel.refresh_from_db()
    assert (channel.health, channel.last_error) == (
        "failing",
        "Bluesky chat refused this channel's session (InvalidToken: Bad token scope): direct messages need an "
        "app password created with access to direct messages in the channel's credentials",
    )
    # Renewing the session would not help: it is not tried.
    assert refresh.call_count == 0
    direct.refresh_from_db()
    assert direct.cursor == {"log": "2222222222224"}
    assert Post.objects.count() == 0


@responses.activate
def test_chat_refused_for_the_account_fails_the_channel_with_bluesky_words(channel, direct):
    _login()
    responses.get(GET_LOG, status=400, json={"error": "InvalidRequest", "message": "Chat is disabled for this account"})
    assert channel_poll(channel=channel) == 0
    channel.refresh_from_db()
    assert (channel.health, channel.last_error) == (
        "failing",
        "Bluesky refused chat.bsky.convo.getLog (HTTP 400): InvalidRequest: Chat is disabled for this account",
    )
    direct.refresh_from_db()
    assert direct.cursor == {}


@responses.activate
def test_a_chat_outage_degrades_the_channel_and_keeps_the_cursor(channel, direct):
    direct.cursor = {"log": "2222222222224"}
    direct.save()
    _login()
    responses.get(GET_LOG, status=502, json={"error": "UpstreamFailure", "message": "chat unavailable"})
    assert channel_poll(channel=channel) == 0
    channel.refresh_from_db()
    assert (channel.health, channel.last_error) == (
        "degraded",
        "Bluesky is failing (HTTP 502): UpstreamFailure: chat unavailable",
    )
    direct.refresh_from_db()
    assert direct.cursor == {"log": "2222222222224"}


def _direct_post(channel: Channel) -> Post:
    bob = AuthorFactory(network="bluesky", external_id=BOB, handle="@bob.example.org")
    return PostFactory(
        channel=channel,
        external_id="3lbc3bobmsg01",
        author=bob,
        is_direct=True,
        conversation_id=BOB_CONVO,
        incident=Incident.objects.create(short_description="AcmePay charged twice"),
    )


@responses.activate
def test_a_direct_message_is_answered_in_its_own_conversation(channel, agent, django_capture_on_commit_callbacks):
    post = _direct_post(channel)
    _login()
    send = responses.post(
        f"{PDS}/xrpc/chat.bsky.convo.sendMessage",
        json={**fixture("convo__send_message"), "id": "3lbc3ourmsg01"},
        match=[matchers.header_matcher(PROXY)],
    )
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_queue(incident=post.incident, post=post, text="Looking into it", visibility="direct", agent=agent)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.SENT, "3lbc3ourmsg01")
    assert json.loads(send.calls[0].request.body) == {"convoId": BOB_CONVO, "message": {"text": "Looking into it"}}
    # No getConvoForMembers: the conversation is known.
    assert [call.request.url.split("/xrpc/")[1] for call in responses.calls] == [
        "com.atproto.server.createSession",
        "chat.bsky.convo.sendMessage",
    ]


def test_a_direct_message_is_not_answered_in_public(channel):
    post = _direct_post(channel)
    options = reply_options(post)
    assert (options.public_refusal, options.direct_refusal) == (
        "This is a Bluesky chat message: answer it with a direct message.",
        "",
    )


@responses.activate
def test_posts_gone_leaves_direct_messages_out(channel):
    post = _direct_post(channel)
    assert BlueskyConnector(channel).posts_gone([post]) == {}
    assert len(responses.calls) == 0
