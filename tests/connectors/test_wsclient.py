"""WebSocket connections follow redirects only to URLs that pass the SSRF check."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest
from websockets.sync.server import Server, ServerConnection, serve

from socialitsm.connectors import wsclient
from socialitsm.exceptions import PermanentError


class Recorder:
    def __init__(self, location: str | None = None) -> None:
        self.requests: list[str] = []
        self.location = location
        self.server: Server = serve(self._handle, "127.0.0.1", 0, process_request=self._process)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _process(self, connection: ServerConnection, request: Any) -> Any:
        self.requests.append(request.path)
        if self.location is None:
            return None
        response = connection.respond(HTTPStatus.FOUND, "")
        response.headers["Location"] = self.location
        return response

    def _handle(self, connection: ServerConnection) -> None:
        connection.send("hello")

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def servers() -> Iterator[list[Recorder]]:
    started: list[Recorder] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def checked(monkeypatch) -> list[str]:
    """The SSRF check, standing in for DNS: only the first server's address counts as public."""
    seen: list[str] = []

    def check_url(url: str) -> None:
        seen.append(url)
        if not url.startswith("http://127.0.0.1:"):
            raise PermanentError(f"refusing URL {url!r}: it resolves to a non-public address")

    monkeypatch.setattr(wsclient, "check_url", check_url)
    return seen


def test_a_redirect_to_a_refused_address_is_not_followed(servers, checked):
    internal = Recorder()
    servers.append(internal)
    # "localhost" stands for any name the check refuses (an internal host, a metadata address).
    public = Recorder(location=f"ws://localhost:{internal.port}/admin")
    servers.append(public)

    with pytest.raises(PermanentError) as caught, wsclient.ws_connect(f"ws://127.0.0.1:{public.port}/stream", name="J"):
        pass

    assert caught.value.message == (
        f"refusing URL 'http://localhost:{internal.port}/admin': it resolves to a non-public address"
    )
    assert checked == [f"http://127.0.0.1:{public.port}/stream", f"http://localhost:{internal.port}/admin"]
    assert public.requests == ["/stream"]
    assert internal.requests == []


def test_a_redirect_to_an_allowed_address_is_followed(servers, checked):
    target = Recorder()
    servers.append(target)
    first = Recorder(location=f"ws://127.0.0.1:{target.port}/moved")
    servers.append(first)

    with wsclient.ws_connect(f"ws://127.0.0.1:{first.port}/stream", name="J") as connection:
        assert connection.recv(timeout=5) == "hello"

    assert checked == [f"http://127.0.0.1:{first.port}/stream", f"http://127.0.0.1:{target.port}/moved"]
    assert target.requests == ["/moved"]
