"""Jetstream against a real WebSocket server on 127.0.0.1: matching, deletions, a dropped
connection and a resume from the saved time_us cursor (rewound a few seconds)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from websockets.sync.server import ServerConnection, serve

from socialitsm.connectors import bluesky, connector_for
from socialitsm.connectors.bluesky import REWIND_US
from socialitsm.exceptions import TransientError
from socialitsm.models import Channel, Post
from socialitsm.services.streaming import ChannelStreamer, StreamSettings

from ..factories import ChannelFactory, WatchRuleFactory
from ..fixtures import load_fixture

pytestmark = pytest.mark.django_db

FAST = StreamSettings(flush_seconds=0.05, backoff_min=0.01, backoff_max=0.02)
OUR_DID = "did:plc:acmesupport7x2k3q4r5s6t"
PDS = "http://127.0.0.1:9"  # never reached: handles are looked up through responses


def frame(name: str) -> str:
    return json.dumps(load_fixture("bluesky", name))


class Jetstream:
    def __init__(self, scripts: list[Callable[[ServerConnection], None]]) -> None:
        self.scripts = scripts
        self.queries: list[dict[str, list[str]]] = []
        self.server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/subscribe"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, connection: ServerConnection) -> None:
        self.queries.append(parse_qs(urlsplit(connection.request.path).query))
        if self.scripts:
            self.scripts.pop(0)(connection)


@pytest.fixture
def jetstream(settings) -> Iterator[Callable[..., Jetstream]]:
    settings.SOCIALITSM_ALLOW_PRIVATE_URLS = True  # the Jetstream test server is on 127.0.0.1
    bluesky.sessions_forget()
    started: list[Jetstream] = []

    def start(scripts) -> Jetstream:
        started.append(Jetstream(scripts))
        return started[-1]

    yield start
    for server in started:
        server.server.shutdown()
        server.thread.join(timeout=5)
    bluesky.sessions_forget()


def _channel(url: str) -> Channel:
    return ChannelFactory(
        slug="acme-bluesky",
        network="bluesky",
        base_url=PDS,
        credentials={"identifier": "acmesupport.bsky.social", "password": "abcd-efgh-ijkl-mnop"},
        config={"account_id": OUR_DID, "jetstream_url": url},
        listen_mode=Channel.ListenMode.STREAM,
    )


def _profiles() -> None:
    session = load_fixture("bluesky", "session__create")
    session.pop("didDoc")
    responses.post(f"{PDS}/xrpc/com.atproto.server.createSession", json=session)
    for did, handle in (("did:plc:jane4abcdefghijklmnop", "jane.example.com"), ("did:plc:bob5abcdefghijklmnopq", "")):
        responses.get(
            f"{PDS}/xrpc/app.bsky.actor.getProfile",
            json={"did": did, "handle": handle} if handle else {"error": "x"},
            status=200 if handle else 400,
            match=[responses.matchers.query_param_matcher({"actor": did})],
        )


@responses.activate
def test_jetstream_matches_posts_redacts_deletions_and_resumes_from_the_cursor(jetstream):
    stop = threading.Event()
    responses.add_passthru("ws://")

    def first(connection: ServerConnection) -> None:
        for name in (
            "jetstream__commit_create_mention",
            "jetstream__commit_create_unrelated",
            "jetstream__identity",
            "jetstream__account",
        ):
            connection.send(frame(name))
        connection.send("\x00garbage")
        # The connection drops here.

    def second(connection: ServerConnection) -> None:
        connection.send(frame("jetstream__commit_delete"))
        connection.send(frame("jetstream__commit_create_hashtag"))

    def third(connection: ServerConnection) -> None:
        stop.set()

    server = jetstream([first, second, third])
    channel = _channel(server.url)
    mentions = WatchRuleFactory(channel=channel, name="mentions", kind="mentions", query="")
    hashtag = WatchRuleFactory(channel=channel, name="acmedown", kind="hashtag", query="#acmedown")
    _profiles()

    ChannelStreamer(channel.pk, stop, FAST).run()

    first_query, second_query, third_query = server.queries
    assert first_query == {"wantedCollections": ["app.bsky.feed.post"]}
    # Resumed at the last event of the first connection, rewound 5 seconds.
    assert second_query == {
        "wantedCollections": ["app.bsky.feed.post"],
        "cursor": [str(1787307300200000 - REWIND_US)],
    }
    assert third_query["cursor"] == [str(1787307400000000 - REWIND_US)]
    jane = Post.objects.get(external_id="at://did:plc:jane4abcdefghijklmnop/app.bsky.feed.post/3lbc2xkqz7s2a")
    assert (jane.rule_id, jane.text, jane.author.handle, jane.deleted_at is not None) == (
        mentions.pk,
        "[deleted by the author]",
        "@jane.example.com",
        True,
    )
    bob = Post.objects.get(external_id="at://did:plc:bob5abcdefghijklmnopq/app.bsky.feed.post/3lbc2xn0000a1")
    assert (bob.rule_id, bob.text, bob.author.handle, bob.url) == (
        hashtag.pk,
        "VPN down for the whole office #AcmeDown",
        "",
        "https://bsky.app/profile/did:plc:bob5abcdefghijklmnopq/post/3lbc2xn0000a1",
    )
    assert Post.objects.count() == 2
    channel.refresh_from_db()
    assert channel.stream_cursor == {"time_us": 1787307400000000}


def test_jetstream_that_drops_at_once_is_transient(jetstream):
    server = jetstream([lambda connection: connection.close()])
    channel = _channel(server.url)
    with pytest.raises(TransientError, match="Jetstream connection closed"):
        list(connector_for(channel).stream([]))
