"""The X filtered stream against a real streaming HTTP server on 127.0.0.1: NDJSON in chunks with
keep-alive newlines, a dropped connection, an operational disconnect, a stall and a clean end."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from socialitsm.connectors.base import InboundPost, StreamMark
from socialitsm.connectors.x import XConnector, bounded_lines
from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Channel, Post, WatchRule
from socialitsm.services.ingest import posts_ingest

from ..factories import ChannelFactory, WatchRuleFactory
from ..fixtures import fixture_text as network_fixture_text

pytestmark = pytest.mark.django_db


fixture_text = partial(network_fixture_text, "x")


class FakeX:
    """What the test server plays: the stream rules endpoints, and one scripted session per
    stream connection. A session is a list of steps: bytes to send as one chunk, a float to
    sleep, "drop" to cut the TCP connection mid-stream, "end" to finish the response cleanly."""

    def __init__(self) -> None:
        self.sessions: list[list[Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.rules: dict[str, Any] = {"meta": {"sent": "2026-11-26T08:00:00.000Z", "result_count": 0}}
        self.stream_status = 200
        self.stream_headers: dict[str, str] = {}


def make_handler(fake: FakeX) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

        def _record(self, body: bytes = b"") -> None:
            parts = urlsplit(self.path)
            fake.requests.append(
                {
                    "method": self.command,
                    "path": parts.path,
                    "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                    "authorization": self.headers.get("Authorization", ""),
                    "body": json.loads(body) if body else None,
                }
            )

        def _json(self, payload: Any, status: int = 200) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._record(body)
            self._json({"meta": {"sent": "2026-11-26T08:00:01.000Z", "summary": {"created": 1, "not_created": 0}}})

        def do_GET(self) -> None:
            self._record()
            if self.path.startswith("/2/tweets/search/stream/rules"):
                self._json(fake.rules)
                return
            if fake.stream_status != 200:
                self.send_response(fake.stream_status)
                for name, value in fake.stream_headers.items():
                    self.send_header(name, value)
                data = b'{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank"}'
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            steps = fake.sessions.pop(0) if fake.sessions else ["end"]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for step in steps:
                if isinstance(step, bytes):
                    self.wfile.write(f"{len(step):X}\r\n".encode() + step + b"\r\n")
                    self.wfile.flush()
                elif isinstance(step, float):
                    time.sleep(step)
                elif step == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                elif step == "end":
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    return

    return Handler


@pytest.fixture
def fake_x(settings) -> Iterator[tuple[FakeX, str]]:
    settings.SOCIALITSM_ALLOW_PRIVATE_URLS = True  # the test server is on the loopback address
    fake = FakeX()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def stream_channel(fake_x):
    _, base_url = fake_x
    channel = ChannelFactory(
        network="x",
        handle="@AcmeSupport",
        base_url=base_url,
        listen_mode=Channel.ListenMode.STREAM,
        config={"account_id": "1100000000000000002", "stream_timeout": 0.5},
        credentials={"bearer_token": "AAAA-app-bearer"},
    )
    rule = WatchRuleFactory(channel=channel, kind=WatchRule.Kind.SEARCH, query="VPN")
    return channel, rule


def line(name: str, **subs: object) -> bytes:
    return json.dumps(json.loads(fixture_text(name, **subs))).encode() + b"\r\n"


def consume(connector: XConnector, rules: list) -> tuple[list[InboundPost | StreamMark], BaseException | None]:
    items: list[InboundPost | StreamMark] = []
    try:
        for item in connector.stream(rules):
            items.append(item)
    except (TransientError, PermanentError) as exc:
        return items, exc
    return items, None


def test_stream_syncs_rules_yields_posts_and_heartbeats_and_raises_on_a_dropped_connection(
    fake_x, stream_channel, django_capture_on_commit_callbacks
):
    fake, _ = fake_x
    channel, rule = stream_channel
    ours = {"CHANNEL": channel.pk, "RULE": rule.pk}
    quote = json.loads(fixture_text("search_recent__quote"))
    quote_event = {
        "data": quote["data"][0],
        "includes": quote["includes"],
        "matching_rules": [{"id": "9", "tag": f"socialitsm:{channel.pk}:{rule.pk}"}],
    }
    fake.sessions.append(
        [
            line("stream__post", **ours),
            b"\r\n",  # keep-alive
            line("stream__foreign_rule"),
            b"not json\r\n",
            json.dumps(quote_event).encode() + b"\r\n",
            "drop",
        ]
    )
    connector = XConnector(Channel.objects.get(pk=channel.pk))

    items, error = consume(connector, [rule])

    assert isinstance(error, TransientError)
    assert error.message == "the X stream dropped: ChunkedEncodingError"
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["InboundPost", "StreamMark", "StreamMark", "StreamMark", "InboundPost"]
    posts = [i for i in items if isinstance(i, InboundPost)]
    assert [p.external_id for p in posts] == ["2125864646345653272", "2125865309045685272"]
    assert posts[0].text.endswith("https://status.example.com/vpn")
    assert connector.stream_cursor() == {"last_id": "2125865309045685272", "last_at": "2026-11-26T08:12:41+00:00"}
    # Posts and expanded users as search bills them: (1 post + 1 user) + (2 posts + 2 users).
    assert connector.quota.cost_delivered == pytest.approx(3 * 0.005 + 3 * 0.010)

    get_rules, add_rules, stream = fake.requests
    assert (get_rules["method"], get_rules["path"]) == ("GET", "/2/tweets/search/stream/rules")
    assert add_rules["body"] == {
        "add": [{"value": "VPN -is:retweet -from:AcmeSupport", "tag": f"socialitsm:{channel.pk}:{rule.pk}"}]
    }
    assert stream["path"] == "/2/tweets/search/stream"
    assert stream["query"]["expansions"] == (
        "author_id,referenced_tweets.id,referenced_tweets.id.author_id,attachments.poll_ids,attachments.media_keys"
    )
    assert (stream["query"]["media.fields"], stream["query"]["poll.fields"]) == (
        "alt_text,preview_image_url,type,url",
        "options",
    )
    assert all(r["authorization"] == "Bearer AAAA-app-bearer" for r in fake.requests)

    # What the stream runner does with the items: store them with the stream cursor.
    with django_capture_on_commit_callbacks(execute=True):
        result = posts_ingest(channel=channel, posts=posts, stream_cursor=connector.stream_cursor())
    assert result.created == 2
    assert Channel.objects.get(pk=channel.pk).stream_cursor == connector.stream_cursor()
    assert Post.objects.filter(incident__isnull=False).count() == 2


def test_a_repost_the_stream_delivers_is_yielded_as_its_original_or_not_at_all(fake_x, stream_channel):
    fake, _ = fake_x
    channel, rule = stream_channel
    page = json.loads(fixture_text("mentions__retweets"))
    tag = [{"id": "9", "tag": f"socialitsm:{channel.pk}:{rule.pk}"}]
    events = [
        {"data": tweet, "includes": page["includes"], "matching_rules": tag} for tweet in page["data"][:2]
    ]  # the first repost's original is included, the second's is not
    fake.sessions.append([json.dumps(event).encode() + b"\r\n" for event in events] + ["drop"])

    connector = XConnector(Channel.objects.get(pk=channel.pk))
    items, _ = consume(connector, [rule])

    assert [type(i).__name__ for i in items] == ["InboundPost", "StreamMark"]
    # The stream resumes after the last event it delivered, not the older reposted post.
    assert connector.stream_cursor() == {"last_id": "2125870900000000001", "last_at": "2026-11-26T08:34:00+00:00"}
    post = items[0]
    assert isinstance(post, InboundPost)
    assert (post.external_id, post.author.handle) == ("2125864646345653299", "@janedoe")
    assert post.text.endswith("cannot reach the file shares from home")


def test_reconnect_after_a_drop_reads_the_next_session_without_re_adding_rules(fake_x, stream_channel):
    fake, _ = fake_x
    channel, rule = stream_channel
    ours = {"CHANNEL": channel.pk, "RULE": rule.pk}
    fake.sessions.extend([[line("stream__post", **ours), "drop"], [b"\r\n", line("stream__post", **ours), "drop"]])
    first, _ = consume(XConnector(channel), [rule])
    fake.rules = {
        "data": [
            {"id": "1", "value": "VPN -is:retweet -from:AcmeSupport", "tag": f"socialitsm:{channel.pk}:{rule.pk}"}
        ],
        "meta": {"sent": "2026-11-26T08:00:00.000Z", "result_count": 1},
    }
    second, error = consume(XConnector(channel), [rule])
    assert [type(i).__name__ for i in first] == ["InboundPost"]
    assert [type(i).__name__ for i in second] == ["StreamMark", "InboundPost"]
    assert isinstance(error, TransientError)
    assert [r["method"] for r in fake.requests] == ["GET", "POST", "GET", "GET", "GET"]


def test_operational_disconnect_is_a_transient_error(fake_x, stream_channel):
    fake, _ = fake_x
    channel, rule = stream_channel
    fake.sessions.append([b"\r\n", line("stream__operational_disconnect"), "end"])
    items, error = consume(XConnector(channel), [rule])
    assert [type(i).__name__ for i in items] == ["StreamMark"]
    assert isinstance(error, TransientError)
    assert error.message == (
        "X ended the stream: OperationalDisconnect: This stream has been disconnected for operational reasons."
    )


def test_silence_beyond_the_read_timeout_counts_as_a_drop(fake_x, stream_channel):
    fake, _ = fake_x
    channel, rule = stream_channel
    fake.sessions.append([b"\r\n", 2.0, "end"])
    started = time.monotonic()
    items, error = consume(XConnector(channel), [rule])
    assert [type(i).__name__ for i in items] == ["StreamMark"]
    assert isinstance(error, TransientError)
    assert error.message == "the X stream dropped: ConnectionError"
    assert time.monotonic() - started < 1.9


def test_a_cleanly_ended_stream_still_asks_for_a_reconnect(fake_x, stream_channel):
    fake, _ = fake_x
    channel, rule = stream_channel
    fake.sessions.append(["end"])
    items, error = consume(XConnector(channel), [rule])
    assert items == []
    assert isinstance(error, TransientError)
    assert error.message == "X closed the stream"


def test_too_many_connections_waits_for_the_reset(fake_x, stream_channel):
    fake, _ = fake_x
    channel, rule = stream_channel
    fake.stream_status = 429
    fake.stream_headers = {
        "x-rate-limit-reset": "1795686000",
        "x-rate-limit-remaining": "0",
        "x-rate-limit-limit": "50",
    }
    connector = XConnector(channel)
    items, error = consume(connector, [rule])
    assert items == []
    assert isinstance(error, TransientError)
    assert error.retry_at is not None and int(error.retry_at.timestamp()) == 1795686000
    assert (connector.quota.remaining, connector.quota.limit) == (0, 50)


def test_a_line_without_end_is_a_drop_not_unbounded_memory(fake_x, stream_channel, monkeypatch):
    monkeypatch.setattr("socialitsm.connectors.x.connector.MAX_STREAM_LINE", 4096)
    fake, _ = fake_x
    channel, rule = stream_channel
    fake.sessions.append([b"\r\n", b'{"data": "' + b"x" * 3000, b"y" * 3000, "end"])
    items, error = consume(XConnector(channel), [rule])
    assert [type(i).__name__ for i in items] == ["StreamMark"]
    assert isinstance(error, TransientError)
    assert error.message == "the X stream sent a line longer than 4096 bytes; reconnecting"


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([b'{"a": 1}\r\n{"b"', b": 2}\r\n\r\n"], [b'{"a": 1}', b'{"b": 2}', b""]),
        ([b"one\n", b"", b"tw", b"o"], [b"one", b"two"]),
        ([b"\r", b"\n"], [b""]),
    ],
)
def test_bounded_lines_split_across_chunks(chunks, lines):
    assert list(bounded_lines(iter(chunks), 100)) == lines


def test_an_edit_on_the_stream_updates_the_post_stored_under_its_first_version(fake_x, stream_channel):
    fake, _ = fake_x
    channel, rule = stream_channel
    ours = {"CHANNEL": channel.pk, "RULE": rule.pk}
    fake.sessions.append([line("stream__post", **ours), line("stream__post_edit", **ours), "end"])
    connector = XConnector(Channel.objects.get(pk=channel.pk))

    items, error = consume(connector, [rule])

    assert isinstance(error, TransientError) and error.message == "X closed the stream"
    first, edit = [i for i in items if isinstance(i, InboundPost)]
    assert (edit.external_id, edit.original_id) == ("2125868328944565272", "2125864646345653272")
    assert connector.stream_cursor() == {"last_id": "2125868328944565272", "last_at": "2026-11-26T08:24:41+00:00"}
    assert posts_ingest(channel=channel, posts=[first], process=False).created == 1
    result = posts_ingest(channel=channel, posts=[edit], process=False)
    assert (result.created, result.edited) == (0, 1)
    post = Post.objects.get()
    assert post.external_id == "2125864646345653272"
    assert post.text.endswith("the helpdesk. Now Outlook is down too https://status.example.com/vpn")
    assert list(post.revisions.values_list("text", flat=True)) == [first.text]
