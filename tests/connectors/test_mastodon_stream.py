"""Mastodon streaming against a real WebSocket server on 127.0.0.1: subscriptions, events,
a dropped connection, catch-up from the saved cursor, refused and missing streaming APIs."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import pytest
import responses
from responses import matchers
from websockets.sync.server import Server, ServerConnection, serve

from socialitsm.connectors import InboundPost, connector_for
from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Channel, Post, PostRevision
from socialitsm.services.ingest import posts_ingest
from socialitsm.services.streaming import ChannelStreamer, StreamSettings

from ..factories import ChannelFactory, WatchRuleFactory
from ..fixtures import load_fixture

pytestmark = pytest.mark.django_db

FAST = StreamSettings(flush_seconds=0.05, backoff_min=0.01, backoff_max=0.02)


def frame(name: str) -> str:
    return json.dumps(load_fixture("mastodon", name))


class ScriptedServer:
    """Each connection plays the next script: a function of the connection."""

    def __init__(self, scripts: list[Callable[[ServerConnection], None]], process_request=None) -> None:
        self.scripts = scripts
        self.authorizations: list[str] = []
        self.paths: list[str] = []
        self.subscriptions: list[list[dict[str, Any]]] = []
        self.server: Server = serve(self._handle, "127.0.0.1", 0, process_request=process_request)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handle(self, connection: ServerConnection) -> None:
        self.authorizations.append(connection.request.headers.get("Authorization", ""))
        self.paths.append(connection.request.path)
        subscribed = []
        try:
            while len(subscribed) < 2:
                subscribed.append(json.loads(connection.recv(timeout=2)))
        except TimeoutError:
            pass
        self.subscriptions.append(subscribed)
        script = self.scripts.pop(0) if self.scripts else (lambda c: None)
        script(connection)


@pytest.fixture
def ws_server(settings) -> Iterator[Callable[..., ScriptedServer]]:
    settings.SOCIALITSM_ALLOW_PRIVATE_URLS = True  # the streaming test server is on 127.0.0.1
    started: list[ScriptedServer] = []

    def start(scripts, **kwargs) -> ScriptedServer:
        server = ScriptedServer(scripts, **kwargs)
        server.thread.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.server.shutdown()
        server.thread.join(timeout=5)


def _channel(port: int) -> Channel:
    return ChannelFactory(
        slug="acme-mastodon",
        network="mastodon",
        base_url=f"http://127.0.0.1:{port}",
        credentials={"access_token": "stream-token"},
        config={"account_id": "110000000000000001"},
        listen_mode=Channel.ListenMode.STREAM,
    )


@responses.activate
def test_stream_stores_events_survives_a_drop_and_catches_up_from_the_cursor(ws_server):
    stop = threading.Event()

    def first(connection: ServerConnection) -> None:
        for name in ("stream__update_hashtag", "stream__update_home_timeline", "stream__notification_mention"):
            connection.send(frame(name))
        connection.send("{not json")
        # Then the connection drops.

    def second(connection: ServerConnection) -> None:
        connection.send(frame("stream__delete"))

    def third(connection: ServerConnection) -> None:
        stop.set()

    server = ws_server([first, second, third])
    channel = _channel(server.port)
    hashtag = WatchRuleFactory(channel=channel, name="acmedown", kind="hashtag", query="#acmedown")
    mentions = WatchRuleFactory(channel=channel, name="mentions", kind="mentions", query="")
    base = f"http://127.0.0.1:{server.port}"
    missed = {
        "id": "113012405000000000",
        "created_at": "2026-08-21T10:16:40.000Z",
        "visibility": "public",
        "language": "en",
        "content": "<p>sent while you were away #acmedown</p>",
        "tags": [{"name": "acmedown"}],
        "account": {"id": "4", "acct": "erin@e.example"},
    }
    responses.get(
        f"{base}/api/v1/timelines/tag/acmedown",
        json=[missed],
        match=[matchers.query_param_matcher({"limit": "40", "min_id": "113012400000000000"})],
    )
    responses.get(
        f"{base}/api/v1/notifications",
        json=[],
        match=[matchers.query_param_matcher({"types[]": "mention", "limit": "40", "min_id": "34975900"})],
    )

    # The third connection catches up from the new cursor and finds nothing more.
    responses.get(
        f"{base}/api/v1/timelines/tag/acmedown",
        json=[],
        match=[matchers.query_param_matcher({"limit": "40", "min_id": "113012405000000000"})],
    )

    ChannelStreamer(channel.pk, stop, FAST).run()

    assert server.paths == ["/api/v1/streaming"] * 3
    assert server.authorizations == ["Bearer stream-token"] * 3
    assert server.subscriptions[0] == [
        {"type": "subscribe", "stream": "user"},
        {"type": "subscribe", "stream": "hashtag", "tag": "acmedown"},
    ]
    stored = {p.external_id: p for p in Post.objects.all()}
    assert set(stored) == {"113012400000000000", "113012410000000000", "113012405000000000"}
    assert stored["113012400000000000"].text == "[deleted by the author]"
    assert stored["113012400000000000"].deleted_at is not None
    assert (stored["113012410000000000"].rule_id, stored["113012410000000000"].text) == (
        mentions.pk,
        "@acmesupport wifi in building 4 is down",
    )
    assert (stored["113012405000000000"].rule_id, stored["113012405000000000"].author.handle) == (
        hashtag.pk,
        "@erin@e.example",
    )
    channel.refresh_from_db()
    assert channel.stream_cursor == {str(hashtag.pk): "113012405000000000", str(mentions.pk): "34975900"}
    assert channel.health == Channel.Health.OK


def _reject(status: HTTPStatus):
    def process_request(connection: ServerConnection, request) -> Any:
        return connection.respond(status, f"{status.phrase}\n")

    return process_request


def test_a_refused_token_is_a_permanent_error(ws_server):
    server = ws_server([], process_request=_reject(HTTPStatus.UNAUTHORIZED))
    channel = _channel(server.port)
    with pytest.raises(PermanentError) as caught:
        list(connector_for(channel).stream([]))
    assert caught.value.message == (
        f"authentication refused (Mastodon streaming at 127.0.0.1:{server.port} answered HTTP 401: Unauthorized)"
    )


def test_a_server_without_streaming_is_polled_instead(ws_server):
    server = ws_server([], process_request=_reject(HTTPStatus.NOT_FOUND))
    channel = _channel(server.port)
    with pytest.raises(TransientError) as caught:
        list(connector_for(channel).stream([]))
    assert caught.value.message == "this server has no streaming API (HTTP 404); polling instead"
    assert caught.value.retry_at is not None


def test_an_unreachable_streaming_host_is_transient(settings):
    settings.SOCIALITSM_ALLOW_PRIVATE_URLS = True  # a closed port on 127.0.0.1
    channel = _channel(9)  # discard port: nothing listens
    with pytest.raises(TransientError, match=r"cannot connect to Mastodon streaming at 127\.0\.0\.1:9"):
        list(connector_for(channel).stream([]))


def test_a_private_streaming_host_is_refused():
    channel = _channel(8080)
    with pytest.raises(PermanentError, match="resolves to a non-public address"):
        list(connector_for(channel).stream([]))


def test_status_update_events_are_edits_of_the_statuses_they_carry(ws_server):
    def script(connection: ServerConnection) -> None:
        for name in (
            "stream__update_hashtag",
            "stream__notification_mention",
            "stream__status_update_hashtag",
            "stream__status_update_mention",
            "stream__status_update_home_timeline",
        ):
            connection.send(frame(name))

    server = ws_server([script])
    channel = _channel(server.port)
    hashtag = WatchRuleFactory(channel=channel, name="acmedown", kind="hashtag", query="#acmedown")
    mentions = WatchRuleFactory(channel=channel, name="mentions", kind="mentions", query="")
    connector = connector_for(channel)
    items: list[Any] = []
    with pytest.raises(TransientError, match="Mastodon streaming connection closed"):
        for item in connector.stream([hashtag, mentions]):
            items.append(item)

    posts = [item for item in items if isinstance(item, InboundPost)]
    assert [(p.external_id, p.rule_id, p.edited_at) for p in posts] == [
        ("113012400000000000", hashtag.pk, None),
        ("113012410000000000", mentions.pk, None),
        ("113012400000000000", hashtag.pk, datetime(2026, 8, 21, 10, 20, 5, tzinfo=UTC)),
        ("113012410000000000", mentions.pk, datetime(2026, 8, 21, 10, 19, 12, tzinfo=UTC)),
    ]
    # An edit carries the id of the status it changes: the stream's position does not move back.
    assert connector.stream_cursor() == {str(hashtag.pk): "113012400000000000", str(mentions.pk): "34975900"}

    assert posts_ingest(channel=channel, posts=posts[:2], process=False).created == 2
    result = posts_ingest(channel=channel, posts=posts[2:], process=False)
    assert (result.created, result.edited, result.duplicates) == (0, 2, 0)
    stored = {p.external_id: p for p in Post.objects.all()}
    assert stored["113012400000000000"].text == "still down, now the calendar too #acmedown"
    assert stored["113012410000000000"].text == "@acmesupport wifi in building 4 is down, and now building 5 as well"
    assert sorted(PostRevision.objects.values_list("text", flat=True)) == [
        "@acmesupport wifi in building 4 is down",
        "still down #acmedown",
    ]
