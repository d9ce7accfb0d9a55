"""Bad input to the look-up a retried reply makes before sending again: network renderings of our
text, and listings that are malformed. Each case states whether the earlier copy is taken, what
is stored on the reply and how many posts went out."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
import responses
import time_machine

from socialitsm.connectors.base import same_text
from socialitsm.exceptions import TransientError
from socialitsm.models import Incident, Reply
from socialitsm.services.replies import reply_send

from .. import factories
from ..factories import AuthorFactory, ChannelFactory, PostFactory, WatchRuleFactory

BASE = "https://mastodon.example"
OURS = {"id": "110000000000000001", "acct": "acmesupport"}
POST_ID = "113012345678901234"


@pytest.mark.parametrize(
    ("sent", "listed", "taken"),
    [
        ("On it", "On it", True),
        ("On it", "<p>On it</p>", False),  # listed text is plain text: the connector strips HTML first
        ("Tom & Jerry", "Tom &amp; Jerry", True),
        ("line one\nline two", "line one  line two", True),
        ("see https://status.example.com/a/b", "see https://t.co/Zx9", True),
        ("see status.example.com/a", "see http://status.example.com/a", True),
        ("@jane@social.example On it", "@jane On it", True),
        ("On it", "@janedoe On it", True),  # X puts the mention in front
        ("Ping @bob@other.example too", "Ping @bob too", True),
        ("ON IT", "on it", True),
        ("Cafe\u0301", "Café", True),  # NFC
        ("We are investigating the outage since this morning", "We are investigating the outage…", True),
        ("We are on it", "We…", False),  # too short a start to count
        ("On it", "On it!", False),
        ("On it", "", False),
        ("", "", False),
        ("   ", "@jane", False),
        ("mail jane@acme.example", "mail jane@acme.example", True),
        ("On it", "On it\u0000", False),
    ],
)
def test_network_renderings_of_our_text(sent, listed, taken):
    assert same_text(sent, listed) is taken


def _status(**changes: Any) -> dict[str, Any]:
    status = {
        "id": "501",
        "created_at": "2026-08-21T11:41:02.000Z",
        "in_reply_to_id": POST_ID,
        "visibility": "public",
        "account": OURS,
        "mentions": [{"id": "109876543210987654", "acct": "jane@social.example"}],
        "content": "<p>@jane On it</p>",
    }
    return {**status, **changes}


@pytest.fixture
def dead_worker_reply(db, public_dns) -> Reply:
    channel = ChannelFactory(
        network="mastodon",
        base_url=BASE,
        credentials={"access_token": "t"},
        config={"account_id": OURS["id"], "acct": "acmesupport"},
    )
    post = PostFactory(
        rule=WatchRuleFactory(channel=channel, kind="hashtag", query="acmedown"),
        external_id=POST_ID,
        author=AuthorFactory(network="mastodon", external_id="109876543210987654", handle="@jane@social.example"),
        incident=Incident.objects.create(short_description="AcmeMail down"),
    )
    return factories.dead_worker_reply(
        post,
        channel=channel,
        visibility="public",
        text="On it",
        claimed_at=datetime(2026, 8, 21, 11, 41, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("context", "own", "outcome"),
    [
        # The copy, among junk the server should never send: it is still found.
        ({"descendants": [None, "501", [], {"id": None}, _status()]}, [], ("sent", "501", 0)),
        ({"descendants": [_status(account=None)]}, [], ("sent", "800", 1)),
        ({"descendants": [_status(account="110000000000000001")]}, [], ("sent", "800", 1)),
        ({"descendants": [_status(created_at="yesterday")]}, [], ("sent", "800", 1)),
        ({"descendants": [_status(created_at="2026-08-21T11:41:02")]}, [], ("sent", "800", 1)),  # no offset
        ({"descendants": [_status(content=None)]}, [], ("sent", "800", 1)),
        ({"descendants": [_status(mentions="jane")]}, [], ("sent", "501", 0)),
        ({"descendants": [_status(reblog=_status())]}, [], ("sent", "800", 1)),
        ({"descendants": [_status(content="<script>On it</script>")]}, [], ("sent", "800", 1)),
        ({"ancestors": []}, [_status(id="502")], ("sent", "502", 0)),  # no descendants key
        # A listing that is not one: read again later, nothing sent.
        ({"descendants": {"id": "501"}}, [], ("queued", "", 0)),
        ([_status()], [], ("queued", "", 0)),
        ({"descendants": []}, {"error": "oops"}, ("queued", "", 0)),
    ],
    ids=[
        "junk-around-the-copy",
        "no-account",
        "account-not-an-object",
        "unreadable-time",
        "naive-time",
        "no-content",
        "mentions-not-a-list",
        "a-boost",
        "script-only",
        "context-without-descendants",
        "descendants-not-a-list",
        "context-is-a-list",
        "own-statuses-not-a-list",
    ],
)
@responses.activate
@time_machine.travel(datetime(2026, 8, 21, 11, 50, tzinfo=UTC), tick=False)
def test_malformed_listings_never_double_a_reply(dead_worker_reply, context, own, outcome):
    responses.get(f"{BASE}/api/v1/statuses/{POST_ID}/context", json=context)
    responses.get(f"{BASE}/api/v1/accounts/{OURS['id']}/statuses", json=own)
    # Before a public reply goes out: the post is still there.
    responses.get(f"{BASE}/api/v1/statuses/{POST_ID}", json={"id": POST_ID, "content": "<p>AcmeMail down</p>"})
    create = responses.post(f"{BASE}/api/v1/statuses", json={"id": "800"})
    with contextlib.suppress(TransientError):
        reply_send(reply=dead_worker_reply)
    dead_worker_reply.refresh_from_db()
    assert (dead_worker_reply.status, dead_worker_reply.external_id, create.call_count) == outcome


X_API = "https://api.x.com"
X_OURS = "1100000000000000002"
X_POST = "2125864646345653272"
# Snowflake ids carry their time: 2125872443552694273 is 2026-11-26T08:41:02Z, 2125862117176246273 08:00Z.
X_COPY = {
    "id": "2125872443552694273",
    "text": "@janedoe On it",
    "created_at": "2026-11-26T08:41:02.000Z",
    "referenced_tweets": [{"type": "replied_to", "id": X_POST}],
}


@pytest.fixture
def x_dead_worker_reply(db, public_dns) -> Reply:
    channel = ChannelFactory(
        network="x",
        handle="@AcmeSupport",
        config={"account_id": X_OURS},
        credentials={"consumer_key": "a", "consumer_secret": "b", "access_token": "c", "access_token_secret": "d"},
    )
    post = PostFactory(
        rule=WatchRuleFactory(channel=channel, kind="mentions"),
        external_id=X_POST,
        text="@AcmeSupport VPN down",
        raw={},
        author=AuthorFactory(network="x", external_id="1500000000000000001", handle="@janedoe"),
        incident=Incident.objects.create(short_description="VPN down"),
    )
    return factories.dead_worker_reply(
        post,
        channel=channel,
        visibility="public",
        text="On it",
        claimed_at=datetime(2026, 11, 26, 8, 41, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("tweets", "outcome"),
    [
        ([{**X_COPY, "entities": "links"}], ("sent", X_COPY["id"], 0)),
        ([{**X_COPY, "entities": {"urls": "https://t.co/x"}}], ("sent", X_COPY["id"], 0)),
        ([{**X_COPY, "created_at": None}], ("sent", X_COPY["id"], 0)),  # the id's own time counts
        ([{**X_COPY, "id": "2125862117176246273", "created_at": None}], ("sent", "2125870422000000001", 1)),
        ([{**X_COPY, "referenced_tweets": {"type": "replied_to", "id": X_POST}}], ("sent", "2125870422000000001", 1)),
        ([{**X_COPY, "note_tweet": "On it"}], ("sent", X_COPY["id"], 0)),
        ([{"id": X_COPY["id"]}, X_COPY], ("sent", X_COPY["id"], 0)),  # an item without text is skipped
        ("not a list", ("failed", "", 0)),
    ],
    ids=[
        "entities-a-string",
        "urls-a-string",
        "no-time",
        "no-time-and-an-older-id",
        "references-not-a-list",
        "note-tweet-not-an-object",
        "item-without-text",
        "data-not-a-list",
    ],
)
@responses.activate
@time_machine.travel(datetime(2026, 11, 26, 9, 0, tzinfo=UTC), tick=False)
def test_malformed_x_timelines_never_double_a_reply(x_dead_worker_reply, tweets, outcome):
    responses.get(f"{X_API}/2/users/{X_OURS}/tweets", json={"data": tweets, "meta": {"result_count": 1}})
    # Before a public reply goes out: the post is still there.
    responses.get(f"{X_API}/2/tweets", json={"data": [{"id": X_POST, "text": "@AcmeSupport VPN down"}]})
    create = responses.post(
        f"{X_API}/2/tweets", json={"data": {"id": "2125870422000000001", "text": "On it"}}, status=201
    )
    reply_send(reply=x_dead_worker_reply)
    x_dead_worker_reply.refresh_from_db()
    assert (x_dead_worker_reply.status, x_dead_worker_reply.external_id, create.call_count) == outcome
