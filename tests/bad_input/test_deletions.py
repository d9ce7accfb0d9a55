"""Bad input around deletions: replies to posts gone upstream, and network answers to a look-up
that are malformed or hostile. None may redact a post that still exists, and none may crash
the sweep or send a reply."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import responses
import time_machine
from rest_framework.test import APIClient

from socialitsm.connectors import bluesky
from socialitsm.models import Channel, Incident, Post, Reply
from socialitsm.services.deletions import channel_posts_recheck, posts_redact

from ..factories import ChannelFactory, IncidentFactory, PostFactory, WatchRuleFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
URL = "/api/v1/incidents/INC0000801/replies/"
DELETED = "the post was deleted by its author, so it cannot be answered in public; send a direct message instead"
REMOVED = "the post was removed by moderators, so it cannot be answered in public; send a direct message instead"


@pytest.fixture(autouse=True)
def clock(public_dns):
    bluesky.sessions_forget()
    with time_machine.travel(NOW, tick=False):
        yield
    bluesky.sessions_forget()


@pytest.mark.parametrize(
    ("gone", "visibility", "status", "answer", "replies"),
    [
        ("deleted", "public", 400, {"visibility": [DELETED]}, 0),
        ("removed", "public", 400, {"visibility": [REMOVED]}, 0),
        ("deleted", "direct", 201, None, 1),
        ("removed", "direct", 201, None, 1),
    ],
)
def test_a_reply_to_a_post_gone_upstream(
    agent, fake_network, django_capture_on_commit_callbacks, gone, visibility, status, answer, replies
):
    incident = IncidentFactory(number="INC0000801", state=Incident.State.IN_PROGRESS)
    post = PostFactory(external_id="p-gone", incident=incident, triage_state=Post.Triage.INCIDENT)
    posts_redact(network=post.network, external_ids=["p-gone"], reason=gone)
    api = APIClient()
    api.force_authenticate(agent)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(URL, {"text": "Sorry about that", "visibility": visibility}, format="json")

    assert response.status_code == status
    if answer is not None:
        assert response.json() == answer
    assert Reply.objects.count() == replies
    assert [m["visibility"] for m in fake_network.sent] == [visibility] * replies
    # A post known gone is never looked up again.
    assert fake_network.gone_lookups == []


MASTODON = "https://mastodon.example"
PDS = "https://pds.example"
SESSION = {"did": "did:plc:acme", "handle": "acme.example", "accessJwt": "a", "refreshJwt": "r"}


def _mastodon() -> Channel:
    return ChannelFactory(network="mastodon", base_url=MASTODON, credentials={"access_token": "t"}, config={})


def _bluesky() -> Channel:
    return ChannelFactory(
        network="bluesky", base_url=PDS, credentials={"identifier": "acme", "password": "p"}, config={}
    )


def _x() -> Channel:
    return ChannelFactory(network="x", credentials={"bearer_token": "b"}, config={})


def _reddit() -> Channel:
    return ChannelFactory(
        network="reddit", credentials={"client_id": "c", "client_secret": "s", "username": "u", "password": "p"}
    )


def _bluesky_session() -> None:
    responses.post(f"{PDS}/xrpc/com.atproto.server.createSession", json=SESSION)


def _reddit_token() -> None:
    responses.post("https://www.reddit.com/api/v1/access_token", json={"access_token": "tok", "expires_in": 3600})


CASES = [
    # (name, channel, external id, setup, error the sweep reports ("" for none), redacted)
    (
        "mastodon 200 that is not JSON is no deletion",
        _mastodon,
        "113",
        lambda: responses.get(f"{MASTODON}/api/v1/statuses/113", body="<html>ok</html>"),
        "",
        False,
    ),
    (
        "mastodon id with a path in it stays one path segment",
        _mastodon,
        "1/../../admin",
        lambda: responses.get(f"{MASTODON}/api/v1/statuses/1%2F..%2F..%2Fadmin", status=404, body="<html/>"),
        "",
        True,
    ),
    (
        "mastodon 403 is a refusal, not a deletion",
        _mastodon,
        "114",
        lambda: responses.get(f"{MASTODON}/api/v1/statuses/114", status=403, json={"error": "forbidden"}),
        "mastodon.example does not allow this token to do that (HTTP 403): forbidden",
        False,
    ),
    (
        "bluesky posts that are not a list",
        _bluesky,
        "at://did:plc:jane/app.bsky.feed.post/1",
        lambda: (_bluesky_session(), responses.get(f"{PDS}/xrpc/app.bsky.feed.getPosts", json={"posts": {}})),
        "Bluesky answered without a posts list",
        False,
    ),
    (
        "bluesky posts without uris prove nothing",
        _bluesky,
        "at://did:plc:jane/app.bsky.feed.post/1",
        lambda: (
            _bluesky_session(),
            responses.get(f"{PDS}/xrpc/app.bsky.feed.getPosts", json={"posts": ["x", {"cid": "y"}, {"uri": 7}]}),
        ),
        "Bluesky answered getPosts with posts that have no uri",
        False,
    ),
    (
        "x errors that are not a list",
        _x,
        "2125865892053941272",
        lambda: responses.get("https://api.x.com/2/tweets", json={"data": 5, "errors": {"type": "resource-not-found"}}),
        "",
        False,
    ),
    (
        "x not-found for a post it refers to, not for ours",
        _x,
        "2125865892053941272",
        lambda: responses.get(
            "https://api.x.com/2/tweets",
            json={
                "errors": [
                    {
                        "parameter": "referenced_tweets.id",
                        "resource_id": "2125865892053941272",
                        "type": "https://api.twitter.com/2/problems/resource-not-found",
                    },
                    "not an object",
                ]
            },
        ),
        "",
        False,
    ),
    (
        "reddit children of the wrong shape",
        _reddit,
        "t1_abc",
        lambda: (
            _reddit_token(),
            responses.get(
                "https://oauth.reddit.com/api/info",
                json={"kind": "Listing", "data": {"children": ["x", {"kind": "t1"}, {"kind": "t1", "data": []}]}},
            ),
        ),
        "",
        False,
    ),
    (
        "reddit names a thing we did not ask for",
        _reddit,
        "t1_abc",
        lambda: (
            _reddit_token(),
            responses.get(
                "https://oauth.reddit.com/api/info",
                json={
                    "kind": "Listing",
                    "data": {"children": [{"kind": "t1", "data": {"name": "t1_zzz", "body": "[deleted]"}}]},
                },
            ),
        ),
        "",
        False,
    ),
]


@pytest.mark.parametrize(
    ("name", "make", "external_id", "setup", "error", "redacted"), CASES, ids=[c[0] for c in CASES]
)
@responses.activate
def test_a_malformed_look_up_answer_redacts_nothing_it_cannot_prove(name, make, external_id, setup, error, redacted):
    channel = make()
    post = PostFactory(
        rule=WatchRuleFactory(channel=channel),
        external_id=external_id,
        text="VPN down again, third time this week",
        incident=IncidentFactory(short_description="VPN down again, third time this week"),
        ingested_at=datetime(2026, 11, 25, tzinfo=UTC),
    )
    setup()

    result = channel_posts_recheck(channel=channel)

    assert result.error == error
    assert result.gone == int(redacted)
    post.refresh_from_db()
    assert (post.deleted_at is not None, post.text == "VPN down again, third time this week") == (
        redacted,
        not redacted,
    )
    assert post.checked_at == NOW
