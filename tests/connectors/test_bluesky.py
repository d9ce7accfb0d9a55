"""Bluesky contract tests: documented XRPC payloads in, exact requests out, HTTP mocked at the transport."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
import requests
import responses
import time_machine
from responses import matchers

from socialitsm.connectors import connector_for
from socialitsm.connectors.bluesky import BlueskyConnector, graphemes
from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Channel, Incident, Post, Reply, WatchRule
from socialitsm.services.channels import channel_verify
from socialitsm.services.ingest import channel_poll
from socialitsm.services.replies import reply_queue, reply_send

from ..factories import AuthorFactory, ChannelFactory, PostFactory, WatchRuleFactory, dead_worker_reply
from ..fixtures import load_fixture
from .shared import ACCESS, ENTRYWAY, JANE, JANE_POST, OUR_DID, PDS, bluesky_channel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public_dns", "bluesky_sessions")]

JANE_CID = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


fixture = partial(load_fixture, "bluesky")


@pytest.fixture(autouse=True)
def _on_the_fixtures_day():
    """The fixtures' posts are from 21 August 2026; a first poll keeps only the last day's posts."""
    with time_machine.travel(datetime(2026, 8, 21, 11, 50, tzinfo=UTC)):
        yield


@pytest.fixture
def channel() -> Channel:
    return bluesky_channel()


def _login() -> None:
    responses.post(
        f"{ENTRYWAY}/xrpc/com.atproto.server.createSession",
        json=fixture("session__create"),
        match=[
            matchers.json_params_matcher({"identifier": "acmesupport.bsky.social", "password": "abcd-efgh-ijkl-mnop"})
        ],
    )


def _authed(**extra: str) -> list:
    return [matchers.header_matcher({"Authorization": f"Bearer {ACCESS}", **extra})]


def _rule(channel: Channel, kind: str, query: str = "", **extra) -> WatchRule:
    return WatchRuleFactory(channel=channel, name=f"{kind} {query}".strip(), kind=kind, query=query, **extra)


def test_connector_is_registered(channel):
    assert isinstance(connector_for(channel), BlueskyConnector)


@responses.activate
def test_verify_opens_a_session_and_learns_the_did_and_pds():
    channel = ChannelFactory.build(
        network="bluesky", credentials={"identifier": "acmesupport.bsky.social", "password": "abcd-efgh-ijkl-mnop"}
    )
    channel.config = {}
    _login()
    assert channel_verify(channel=channel) == "@acmesupport.bsky.social"
    assert channel.config == {"account_id": OUR_DID, "pds": PDS}


@responses.activate
def test_a_wrong_app_password_says_so():
    channel = ChannelFactory.build(network="bluesky", credentials={"identifier": "acme", "password": "nope"}, config={})
    responses.post(f"{ENTRYWAY}/xrpc/com.atproto.server.createSession", status=401, json=fixture("error__auth_factor"))
    with pytest.raises(PermanentError) as caught:
        channel_verify(channel=channel)
    assert caught.value.message == (
        "Bluesky refused the identifier or app password (AuthenticationRequired: Invalid identifier or password)"
    )


@responses.activate
def test_search_poll_turns_post_views_into_posts_and_reuses_the_session(channel):
    rule = _rule(channel, "search", "acmemail down")
    _login()
    search = f"{PDS}/xrpc/app.bsky.feed.searchPosts"
    responses.get(
        search,
        json=fixture("search_posts__latest"),
        headers={"RateLimit-Limit": "3000", "RateLimit-Remaining": "2999", "RateLimit-Reset": "1787307600"},
        match=[matchers.query_param_matcher({"q": "acmemail down", "sort": "latest", "limit": "100"}), *_authed()],
    )
    assert channel_poll(channel=channel) == 2
    jane = Post.objects.get(external_id=JANE_POST)
    assert (jane.text, jane.url, jane.language, jane.conversation_id, jane.in_reply_to) == (
        "AcmeMail has been down for an hour, can't log in #acmedown",
        "https://bsky.app/profile/jane.example.com/post/3lbc2xkqz7s2a",
        "en",
        JANE_POST,
        "",
    )
    assert (jane.author.external_id, jane.author.handle, jane.author.name, jane.author.profile_url) == (
        JANE,
        "@jane.example.com",
        "Jane Doe",
        "https://bsky.app/profile/jane.example.com",
    )
    assert jane.raw["cid"] == JANE_CID
    bob = Post.objects.get(author__handle="@bob.example.org")
    assert (bob.in_reply_to, bob.conversation_id, bob.rule_id) == (JANE_POST, JANE_POST, rule.pk)
    rule.refresh_from_db()
    assert rule.cursor == {"since": "2026-08-21T10:15:01.000Z"}  # newest indexedAt minus 5 minutes
    channel.refresh_from_db()
    assert (channel.quota_remaining, channel.quota_limit, channel.requests_made) == (2999, 3000, 2)
    assert channel.quota_reset_at == datetime.fromtimestamp(1787307600, UTC)

    responses.get(
        search,
        json={"posts": []},
        match=[
            matchers.query_param_matcher(
                {"q": "acmemail down", "sort": "latest", "limit": "100", "since": "2026-08-21T10:15:01.000Z"}
            )
        ],
    )
    assert channel_poll(channel=channel) == 0
    assert len([c for c in responses.calls if "createSession" in c.request.url]) == 1


@responses.activate
def test_hashtag_rule_searches_for_the_tag(channel):
    _rule(channel, "hashtag", "AcmeDown")
    _login()
    responses.get(
        f"{PDS}/xrpc/app.bsky.feed.searchPosts",
        json={"posts": [fixture("search_posts__latest")["posts"][1]]},
        match=[matchers.query_param_matcher({"q": "#AcmeDown", "sort": "latest", "limit": "100"})],
    )
    assert channel_poll(channel=channel) == 1


@responses.activate
def test_mentions_poll_takes_mentions_and_replies_not_likes(channel):
    rule = _rule(channel, "mentions")
    _login()
    responses.get(
        f"{PDS}/xrpc/app.bsky.notification.listNotifications",
        json=fixture("notifications__mentions"),
        match=[matchers.query_param_matcher({"limit": "100"}), *_authed()],
    )
    assert channel_poll(channel=channel) == 2
    assert sorted(Post.objects.values_list("author__handle", "in_reply_to")) == [
        ("@jane.example.com", f"at://{OUR_DID}/app.bsky.feed.post/3lbc2y4w5tq2c"),
        ("@li.example.net", ""),
    ]
    rule.refresh_from_db()
    assert rule.cursor == {"seen_at": "2026-08-21T10:30:01.000Z"}


@responses.activate
def test_an_expired_access_token_is_refreshed_once(channel):
    _rule(channel, "mentions")
    _login()
    notifications = f"{PDS}/xrpc/app.bsky.notification.listNotifications"
    responses.get(notifications, status=400, json=fixture("error__expired_token"), match=_authed())
    responses.post(
        f"{PDS}/xrpc/com.atproto.server.refreshSession",
        json=fixture("session__refresh"),
        match=[matchers.header_matcher({"Authorization": "Bearer eyJ0eXAiOiJyZWZyZXNoK2p3dCIs.refresh-1"})],
    )
    responses.get(
        notifications,
        json={"notifications": []},
        match=[
            matchers.header_matcher({"Authorization": "Bearer eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJFUzI1NksifQ.access-2"})
        ],
    )
    assert channel_poll(channel=channel) == 0
    channel.refresh_from_db()
    assert (channel.health, channel.last_error) == ("ok", "")


def test_reply_length_counts_graphemes():
    assert graphemes("👩‍💻 ok 🇫🇷") == 6
    assert BlueskyConnector(ChannelFactory.build(network="bluesky")).limits().unit == "graphemes"


def _stored(channel: Channel, **raw: Any) -> Post:
    author = AuthorFactory(network="bluesky", external_id=JANE, handle="@jane.example.com")
    record = {"text": "AcmeMail down", "createdAt": "2026-08-21T10:14:03.512Z"}
    return PostFactory(
        rule=_rule(channel, "mentions"),
        external_id=JANE_POST,
        author=author,
        raw={"uri": JANE_POST, "cid": JANE_CID, "record": record, **raw},
        incident=Incident.objects.create(short_description="AcmeMail down"),
    )


def _still_there() -> None:
    """What the connector asks before a public reply: does the post still exist?"""
    responses.get(
        f"{PDS}/xrpc/app.bsky.feed.getPosts",
        json={"posts": [{"uri": JANE_POST, "cid": JANE_CID, "record": {"text": "AcmeMail down"}}]},
        match=[matchers.query_param_matcher({"uris": JANE_POST})],
    )


@responses.activate
def test_public_reply_is_a_post_with_reply_refs_and_facets(channel, agent, django_capture_on_commit_callbacks):
    post = _stored(channel)
    _login()
    _still_there()
    text = "@jane.example.com Sorry 😞 we are on it: https://status.acme.example/incidents/42."
    ref = {"uri": JANE_POST, "cid": JANE_CID}
    create = responses.post(
        f"{PDS}/xrpc/com.atproto.repo.createRecord",
        json=fixture("create_record__reply"),
        match=_authed(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_queue(incident=post.incident, post=post, text=text, visibility="public", agent=agent)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id, reply.error) == (
        Reply.Status.SENT,
        f"at://{OUR_DID}/app.bsky.feed.post/3lbc2y4w5tq2c",
        "",
    )
    body = json.loads(create.calls[0].request.body)
    created_at = body["record"].pop("createdAt")
    assert datetime.fromisoformat(created_at.replace("Z", "+00:00")).tzinfo is not None
    assert body == {
        "repo": OUR_DID,
        "collection": "app.bsky.feed.post",
        "record": {
            "$type": "app.bsky.feed.post",
            "text": text,
            "reply": {"root": ref, "parent": ref},
            "facets": [
                {
                    "index": {"byteStart": 0, "byteEnd": 17},
                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": JANE}],
                },
                {
                    # "Sorry 😞 " holds a 4-byte emoji: offsets count UTF-8 bytes, not characters.
                    "index": {"byteStart": 43, "byteEnd": 83},
                    "features": [
                        {"$type": "app.bsky.richtext.facet#link", "uri": "https://status.acme.example/incidents/42"}
                    ],
                },
            ],
        },
    }
    assert text.encode()[43:83] == b"https://status.acme.example/incidents/42"


@responses.activate
def test_reply_to_a_reply_keeps_the_threads_root(channel):
    root = {"uri": "at://did:plc:root/app.bsky.feed.post/1", "cid": "bafyroot"}
    post = _stored(
        channel, record={"text": "me too", "createdAt": "2026-08-21T10:20:00Z", "reply": {"root": root, "parent": root}}
    )
    _login()
    create = responses.post(f"{PDS}/xrpc/com.atproto.repo.createRecord", json=fixture("create_record__reply"))
    connector_for(channel).reply(post, "On it", "public", idempotency_key="k")
    sent = json.loads(create.calls[0].request.body)["record"]
    assert sent["reply"] == {"root": root, "parent": {"uri": JANE_POST, "cid": JANE_CID}}
    assert "facets" not in sent


@responses.activate
def test_a_post_without_a_stored_cid_is_looked_up(channel):
    post = _stored(channel)
    Post.objects.filter(pk=post.pk).update(raw={})
    post.refresh_from_db()
    _login()
    responses.get(
        f"{PDS}/xrpc/app.bsky.feed.getPosts",
        json={"posts": [{"uri": JANE_POST, "cid": JANE_CID, "record": {"text": "x"}}]},
        match=[matchers.query_param_matcher({"uris": JANE_POST})],
    )
    create = responses.post(f"{PDS}/xrpc/com.atproto.repo.createRecord", json=fixture("create_record__reply"))
    connector_for(channel).reply(post, "On it", "public", idempotency_key="k")
    assert json.loads(create.calls[0].request.body)["record"]["reply"]["parent"] == {"uri": JANE_POST, "cid": JANE_CID}


@responses.activate
def test_direct_reply_goes_through_the_chat_proxy(channel, agent, django_capture_on_commit_callbacks):
    post = _stored(channel)
    _login()
    proxy = {"atproto-proxy": "did:web:api.bsky.chat#bsky_chat"}
    responses.get(
        f"{PDS}/xrpc/chat.bsky.convo.getConvoForMembers",
        json=fixture("convo__for_members"),
        match=[matchers.query_param_matcher({"members": JANE}), *_authed(**proxy)],
    )
    text = "Hi Jane, this is Acme Support. Could you send us the email address on your account?"
    responses.post(
        f"{PDS}/xrpc/chat.bsky.convo.sendMessage",
        json=fixture("convo__send_message"),
        match=[
            matchers.json_params_matcher({"convoId": "3lbc2zq6pxk2a", "message": {"text": text}}),
            *_authed(**proxy),
        ],
    )
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_queue(incident=post.incident, post=post, text=text, visibility="direct", agent=agent)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.SENT, "3lbc2zr4abc2b")


@responses.activate
def test_a_recipient_who_refuses_messages_fails_the_reply_with_the_reason(channel):
    post = _stored(channel)
    reply = Reply.objects.create(incident=post.incident, post=post, channel=channel, visibility="direct", text="Hi")
    _login()
    responses.get(
        f"{PDS}/xrpc/chat.bsky.convo.getConvoForMembers", status=400, json=fixture("error__not_followed_by_sender")
    )
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.error) == (
        Reply.Status.FAILED,
        "the recipient only accepts direct messages from accounts they follow "
        "(NotFollowedBySender: recipient requires incoming messages to come from someone they follow)",
    )


def _poll_error(channel: Channel, **response: Any) -> Channel:
    rule = _rule(channel, "search", "acmemail", cursor={"since": "2026-08-21T10:00:00.000Z"})
    _login()
    responses.get(f"{PDS}/xrpc/app.bsky.feed.searchPosts", **response)
    assert channel_poll(channel=channel) == 0
    rule.refresh_from_db()
    assert rule.cursor == {"since": "2026-08-21T10:00:00.000Z"}
    assert Post.objects.count() == 0
    channel.refresh_from_db()
    return channel


@pytest.mark.parametrize(
    ("response", "health", "error"),
    [
        (
            {"status": 401, "json": {"error": "AuthMissing", "message": "Authentication Required"}},
            "failing",
            "Bluesky refused app.bsky.feed.searchPosts (HTTP 401): AuthMissing: Authentication Required",
        ),
        (
            {"status": 403, "json": {"error": "Forbidden", "message": "search is disabled"}},
            "failing",
            "Bluesky refused app.bsky.feed.searchPosts (HTTP 403): Forbidden: search is disabled",
        ),
        (
            {"status": 404, "body": "<html>not found</html>"},
            "failing",
            "Bluesky refused app.bsky.feed.searchPosts (HTTP 404): HTTP 404",
        ),
        (
            {"status": 502, "json": {"error": "UpstreamFailure", "message": "appview unavailable"}},
            "degraded",
            "Bluesky is failing (HTTP 502): UpstreamFailure: appview unavailable",
        ),
        (
            {"status": 200, "body": '{"posts": [', "content_type": "application/json"},
            "degraded",
            "Bluesky answered app.bsky.feed.searchPosts with something that is not JSON: '{\"posts\": ['",
        ),
        (
            {"body": requests.ReadTimeout("read timed out")},
            "degraded",
            "timed out calling morel.us-east.host.bsky.network",
        ),
    ],
    ids=["401", "403", "404", "5xx", "malformed-json", "timeout"],
)
@responses.activate
def test_errors_leave_the_channel_consistent_and_say_what_happened(channel, response, health, error):
    channel = _poll_error(channel, **response)
    assert (channel.health, channel.last_error, channel.rate_limited_until) == (health, error, None)


@responses.activate
def test_429_holds_the_next_poll_until_the_epoch_reset(channel):
    channel = _poll_error(
        channel,
        status=429,
        json=fixture("error__rate_limit"),
        headers={"RateLimit-Limit": "3000", "RateLimit-Remaining": "0", "RateLimit-Reset": "4102444800"},
    )
    reset = datetime(2100, 1, 1, tzinfo=UTC)
    assert (channel.health, channel.rate_limited_until, channel.next_poll_at) == ("degraded", reset, reset)
    assert channel.last_error == (
        "Bluesky rate limit reached (RateLimitExceeded: Rate Limit Exceeded); it resets at 00:00:00 UTC"
    )


@responses.activate
def test_a_rate_limited_reply_is_retried_at_the_reset(channel):
    post = _stored(channel)
    reply = Reply.objects.create(incident=post.incident, post=post, channel=channel, visibility="public", text="On it")
    _login()
    _still_there()
    responses.post(
        f"{PDS}/xrpc/com.atproto.repo.createRecord",
        status=429,
        json=fixture("error__rate_limit"),
        headers={"RateLimit-Reset": "4102444800"},
    )
    with time_machine.travel(datetime(2099, 12, 31, 23, 50, tzinfo=UTC), tick=False):
        reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.retry_after) == (Reply.Status.QUEUED, datetime(2100, 1, 1, tzinfo=UTC))


@responses.activate
def test_a_first_search_does_not_reach_back_further_than_a_day(channel):
    _rule(channel, "search", "acmemail")
    _login()
    [bob, jane] = fixture("search_posts__latest")["posts"]
    jane["record"]["createdAt"] = "2026-08-01T10:14:03.512Z"
    responses.get(f"{PDS}/xrpc/app.bsky.feed.searchPosts", json={"posts": [bob, jane]})
    assert channel_poll(channel=channel) == 1
    assert list(Post.objects.values_list("author__handle", flat=True)) == ["@bob.example.org"]


# --- deletions: are stored posts still there? ---------------------------------------------------

BOB_POST = "at://did:plc:bob2abcdefghijklmnop/app.bsky.feed.post/3lbc2xkqz7s2b"
NEW_POST = "at://did:plc:bob2abcdefghijklmnop/app.bsky.feed.post/3lbc2xkqz7s2c"


def _stored_at(uri: str, ingested_at: datetime) -> Post:
    return Post(external_id=uri, ingested_at=ingested_at)


@responses.activate
def test_posts_gone_asks_get_posts_once_and_takes_a_missing_uri_for_gone(channel):
    _login()
    lookup = responses.get(
        f"{PDS}/xrpc/app.bsky.feed.getPosts",
        json={"posts": [{"uri": JANE_POST, "cid": JANE_CID, "record": {"text": "AcmeMail down"}}]},
        match=[matchers.query_param_matcher({"uris": [JANE_POST, BOB_POST, NEW_POST]}), *_authed()],
    )
    settled = datetime(2026, 8, 21, 11, 30, tzinfo=UTC)
    posts = [
        _stored_at(JANE_POST, settled),
        _stored_at(BOB_POST, settled),
        # Stored five minutes ago: the AppView may not have indexed it yet.
        _stored_at(NEW_POST, datetime(2026, 8, 21, 11, 45, tzinfo=UTC)),
    ]
    assert BlueskyConnector(channel).posts_gone(posts) == {BOB_POST: "deleted"}
    assert lookup.call_count == 1


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"status": 502, "body": "<html>Bad Gateway</html>"}, TransientError),
        ({"status": 429, "json": {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}}, TransientError),
        ({"json": {"feed": []}}, TransientError),
        ({"body": requests.Timeout("read timed out")}, TransientError),
    ],
)
@responses.activate
def test_a_failed_look_up_is_an_error_never_a_deletion(channel, answer, error):
    _login()
    responses.get(f"{PDS}/xrpc/app.bsky.feed.getPosts", **answer)
    with pytest.raises(error):
        BlueskyConnector(channel).posts_gone([_stored_at(JANE_POST, datetime(2026, 8, 20, tzinfo=UTC))])


@responses.activate
def test_a_public_reply_to_a_post_deleted_meanwhile_is_refused_unsent(channel):
    post = _stored(channel)
    Post.objects.filter(pk=post.pk).update(ingested_at=datetime(2026, 8, 21, 10, 15, tzinfo=UTC))
    reply = Reply.objects.create(incident=post.incident, post=post, channel=channel, visibility="public", text="On it")
    _login()
    responses.get(f"{PDS}/xrpc/app.bsky.feed.getPosts", json={"posts": []})
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.error) == (
        Reply.Status.FAILED,
        "the post was deleted by its author, so it cannot be answered in public; send a direct message instead",
    )
    assert [call.request.url.split("?")[0].rsplit("/", 1)[-1] for call in responses.calls] == [
        "com.atproto.server.createSession",
        "app.bsky.feed.getPosts",
    ]
    post.refresh_from_db()
    assert (post.text, post.raw) == ("[deleted by the author]", {})


# --- a retry after Bluesky took the reply ---------------------------------------------------------

TEXT = "Sorry, we are on it: https://status.acme.example/incidents/42"
PROXY = {"atproto-proxy": "did:web:api.bsky.chat#bsky_chat"}


def _dead_worker_reply(channel: Channel, visibility: str) -> Reply:
    """A reply whose first attempt reached Bluesky at 11:41 and whose worker then died."""
    post = _stored(channel)
    return dead_worker_reply(
        post,
        channel=channel,
        visibility=visibility,
        text=TEXT,
        claimed_at=datetime(2026, 8, 21, 11, 41, tzinfo=UTC),
    )


def _record(rkey: str, *, parent: str = JANE_POST, text: str = TEXT, at: str = "2026-08-21T11:41:01.000Z") -> dict:
    ref = {"uri": parent, "cid": JANE_CID}
    return {
        "uri": f"at://{OUR_DID}/app.bsky.feed.post/{rkey}",
        "cid": "bafyreicopy",
        "value": {"$type": "app.bsky.feed.post", "text": text, "createdAt": at, "reply": {"root": ref, "parent": ref}},
    }


def _thread(*replies: dict) -> dict:
    return {
        "thread": {
            "$type": "app.bsky.feed.defs#threadViewPost",
            "post": {"uri": JANE_POST, "cid": JANE_CID, "author": {"did": JANE}, "record": {"text": "AcmeMail down"}},
            "replies": [{"$type": "app.bsky.feed.defs#threadViewPost", "post": reply} for reply in replies],
        }
    }


def _view(record: dict, did: str = OUR_DID) -> dict:
    return {"uri": record["uri"], "cid": record["cid"], "author": {"did": did}, "record": record["value"]}


def _public_listings(records: list, thread: dict) -> tuple:
    own = responses.get(
        f"{PDS}/xrpc/com.atproto.repo.listRecords",
        json={"cursor": "x", "records": records},
        match=[matchers.query_param_matcher({"repo": OUR_DID, "collection": "app.bsky.feed.post", "limit": "50"})],
    )
    replies = responses.get(
        f"{PDS}/xrpc/app.bsky.feed.getPostThread",
        json=thread,
        match=[matchers.query_param_matcher({"uri": JANE_POST, "depth": "1", "parentHeight": "0"})],
    )
    return own, replies


@pytest.mark.parametrize(
    ("records", "thread", "found", "thread_read"),
    [
        ([_record("3lbccopy0001"), *fixture("list_records__ours")["records"]], _thread(), "3lbccopy0001", False),
        # A busy account: the copy is past our latest records, the post's thread shows it.
        (fixture("list_records__ours")["records"], _thread(_view(_record("3lbccopy0002"))), "3lbccopy0002", True),
    ],
    ids=["in-our-records", "in-the-thread"],
)
@responses.activate
def test_a_retried_public_reply_that_bluesky_took_is_not_posted_again(channel, records, thread, found, thread_read):
    reply = _dead_worker_reply(channel, "public")
    _login()
    own, replies = _public_listings(records, thread)
    create = responses.post(f"{PDS}/xrpc/com.atproto.repo.createRecord", json=fixture("create_record__reply"))
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.SENT, f"at://{OUR_DID}/app.bsky.feed.post/{found}")
    assert (own.call_count, replies.call_count, create.call_count) == (1, int(thread_read), 0)


@responses.activate
def test_a_retried_public_reply_without_a_copy_is_posted_once(channel):
    reply = _dead_worker_reply(channel, "public")
    _login()
    _still_there()
    own, replies = _public_listings(
        [
            _record("3lbcold00001", at="2026-08-21T10:00:00.000Z"),  # the same words an hour before this reply
            _record("3lbcother001", parent="at://did:plc:other/app.bsky.feed.post/1"),  # to another post
            _record("3lbcfixed001", text="Fixed now."),
        ],
        _thread(_view(_record("3lbcjane0001"), did=JANE)),  # Jane quoting us word for word
    )
    create = responses.post(f"{PDS}/xrpc/com.atproto.repo.createRecord", json=fixture("create_record__reply"))
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.SENT, f"at://{OUR_DID}/app.bsky.feed.post/3lbc2y4w5tq2c")
    assert (own.call_count, replies.call_count, create.call_count) == (1, 1, 1)


def _messages(*messages: dict) -> Any:
    responses.get(
        f"{PDS}/xrpc/chat.bsky.convo.getConvoForMembers",
        json=fixture("convo__for_members"),
        match=[matchers.query_param_matcher({"members": JANE}), *_authed(**PROXY)],
    )
    return responses.get(
        f"{PDS}/xrpc/chat.bsky.convo.getMessages",
        json={"cursor": "c", "messages": list(messages)},
        match=[matchers.query_param_matcher({"convoId": "3lbc2zq6pxk2a", "limit": "50"}), *_authed(**PROXY)],
    )


def _message(message_id: str, *, sender: str = OUR_DID, text: str = TEXT, at: str = "2026-08-21T11:41:01.500Z"):
    return {"id": message_id, "rev": "2", "text": text, "sender": {"did": sender}, "sentAt": at}


@responses.activate
def test_a_retried_direct_message_that_bluesky_took_is_not_sent_again(channel):
    reply = _dead_worker_reply(channel, "direct")
    _login()
    listed = _messages(
        _message("3lbcjane0002", sender=JANE, text="Thanks!", at="2026-08-21T11:45:00.000Z"),
        _message("3lbccopy0003"),
        {"id": "3lbcgone0001", "rev": "1", "sender": {"did": OUR_DID}, "sentAt": "2026-08-21T11:40:30.000Z"},
    )
    send = responses.post(f"{PDS}/xrpc/chat.bsky.convo.sendMessage", json=fixture("convo__send_message"))
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.SENT, "3lbccopy0003")
    assert (listed.call_count, send.call_count) == (1, 0)


@responses.activate
def test_a_retried_direct_message_without_a_copy_is_sent_once(channel):
    reply = _dead_worker_reply(channel, "direct")
    _login()
    listed = _messages(
        _message("3lbcjane0003", sender=JANE),  # Jane's words, not ours
        _message("3lbcold00002", at="2026-08-21T09:00:00.000Z"),  # ours, but before this reply
    )
    send = responses.post(
        f"{PDS}/xrpc/chat.bsky.convo.sendMessage",
        json=fixture("convo__send_message"),
        match=[matchers.json_params_matcher({"convoId": "3lbc2zq6pxk2a", "message": {"text": TEXT}})],
    )
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.SENT, "3lbc2zr4abc2b")
    assert (listed.call_count, send.call_count) == (1, 1)


@pytest.mark.parametrize(
    ("visibility", "listing", "send"),
    [
        ("public", "com.atproto.repo.listRecords", "com.atproto.repo.createRecord"),
        ("direct", "chat.bsky.convo.getMessages", "chat.bsky.convo.sendMessage"),
    ],
)
@responses.activate
def test_a_look_up_that_fails_sends_nothing_and_retries_later(channel, visibility, listing, send):
    reply = _dead_worker_reply(channel, visibility)
    _login()
    responses.get(f"{PDS}/xrpc/chat.bsky.convo.getConvoForMembers", json=fixture("convo__for_members"))
    responses.get(f"{PDS}/xrpc/{listing}", status=502, json={"error": "UpstreamFailure", "message": "unavailable"})
    sent = responses.post(f"{PDS}/xrpc/{send}", json={})
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.QUEUED, "")
    assert reply.error.startswith("Bluesky is failing")
    assert reply.retry_after is not None
    assert sent.call_count == 0


@responses.activate
def test_a_retry_to_a_post_gone_from_the_appview_relies_on_our_records(channel):
    reply = _dead_worker_reply(channel, "public")
    _login()
    responses.get(f"{PDS}/xrpc/com.atproto.repo.listRecords", json=fixture("list_records__ours"))
    thread = responses.get(
        f"{PDS}/xrpc/app.bsky.feed.getPostThread",
        status=400,
        json={"error": "NotFound", "message": f"Post not found: {JANE_POST}"},
    )
    # The AppView has not indexed the post yet; stored minutes ago, it is not taken for deleted.
    lookup = responses.get(f"{PDS}/xrpc/app.bsky.feed.getPosts", json={"posts": []})
    create = responses.post(f"{PDS}/xrpc/com.atproto.repo.createRecord", json=fixture("create_record__reply"))
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, thread.call_count, lookup.call_count, create.call_count) == (Reply.Status.SENT, 1, 1, 1)


@responses.activate
def test_status_post_is_a_top_level_post_with_link_facets(channel):
    _login()
    create = responses.post(
        f"{PDS}/xrpc/com.atproto.repo.createRecord", json=fixture("create_record__status_post"), match=_authed()
    )
    text = "We know AcmeMail is down; updates at https://status.example.com/acme."
    uri, url = connector_for(channel).post_status(text, idempotency_key="k")
    assert uri == "at://did:plc:acmesupport7x2k3q4r5s6t/app.bsky.feed.post/3lbd7statusp2"
    assert url == f"https://bsky.app/profile/{OUR_DID}/post/3lbd7statusp2"
    sent = json.loads(create.calls[0].request.body)
    assert (sent["repo"], sent["collection"]) == (OUR_DID, "app.bsky.feed.post")
    assert "reply" not in sent["record"]
    assert sent["record"]["text"] == text
    start = len("We know AcmeMail is down; updates at ")
    assert sent["record"]["facets"] == [
        {
            "index": {"byteStart": start, "byteEnd": start + len("https://status.example.com/acme")},
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://status.example.com/acme"}],
        }
    ]
