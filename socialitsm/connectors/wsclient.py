"""WebSocket connections for streaming connectors, held to the rules of socialitsm.http:
SSRF-checked URL, timeouts, and failures mapped to TransientError / PermanentError."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from django.utils import timezone
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, reconnect

from socialitsm.conf import conf
from socialitsm.exceptions import ExternalError, PermanentError, TransientError
from socialitsm.http import check_url

# Frames can be large (a post with facets and embeds), but not unbounded.
MAX_FRAME_BYTES = 4 * 1024 * 1024


class _CheckedConnect(reconnect):
    """websockets follows up to 10 redirects on its own: each target is SSRF-checked first."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        target = super().process_redirect(exc)
        if isinstance(target, str):
            try:
                check_url(_as_http(target))
            except ExternalError as refused:
                return refused
        return target


def _as_http(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme)
    if scheme is None:
        raise PermanentError(f"refusing URL {url!r}: a stream must be a ws:// or wss:// URL")
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))


@contextmanager
def ws_connect(url: str, *, headers: Mapping[str, str] | None = None, name: str) -> Iterator[ClientConnection]:
    """Open a WebSocket to `url`; `name` ("Jetstream", "Mastodon streaming") words the errors.

    Raises PermanentError for a refused URL or credentials (401/403), TransientError for
    everything worth retrying: unreachable, timeouts, 429 (at Retry-After) and 5xx."""
    check_url(_as_http(url))
    host = urlsplit(url).netloc
    stack = ExitStack()
    try:
        connection = stack.enter_context(
            _CheckedConnect(
                url,
                additional_headers=dict(headers or {}),
                open_timeout=conf.HTTP_TIMEOUT,
                close_timeout=2,
                max_size=MAX_FRAME_BYTES,
                user_agent_header="socialitsm",
                compression=None,
                proxy=None,
            ).connect()
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        body = exc.response.body.decode("utf-8", "replace")[:200].strip() if exc.response.body else ""
        detail = f"{name} at {host} answered HTTP {status}" + (f": {body}" if body else "")
        if status in (401, 403):
            raise PermanentError(f"authentication refused ({detail})", status=status) from exc
        if status == 429 or status >= 500:
            retry = exc.response.headers.get("Retry-After", "")
            retry_at = timezone.now() + timedelta(seconds=int(retry)) if retry.isdigit() else None
            raise TransientError(detail, status=status, retry_at=retry_at) from exc
        raise PermanentError(detail, status=status) from exc
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise TransientError(f"cannot connect to {name} at {host}: {exc}") from exc
    with stack:
        yield connection


def ws_frames(connection: ClientConnection, *, timeout: float, name: str) -> Iterator[str | bytes | None]:
    """The frames of an open stream as they come, and None after each `timeout` seconds of
    silence (the caller yields a StreamMark then). Raises TransientError when the connection
    closes; `name` ("Jetstream", "Mastodon streaming") words it."""
    while True:
        try:
            yield connection.recv(timeout=timeout)
        except TimeoutError:
            yield None
        except ConnectionClosed as exc:
            raise TransientError(f"{name} connection closed ({exc})") from exc
