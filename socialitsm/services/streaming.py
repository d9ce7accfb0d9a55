"""Streaming: hold one connection per streaming channel, store what it pushes, save its cursor.

`manage.py socialitsm_stream` runs `streams_run`: a thread per channel whose listen mode is
"stream". Each thread connects through `Connector.stream`, stores posts in small batches with the
stream cursor in the same transaction, reconnects with exponential backoff (or at the rate
limit's reset) when the connection drops, and polls the channel's rules while it is down.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from socialitsm import metrics
from socialitsm.connectors import InboundPost, StreamMark, connector_for
from socialitsm.connectors.base import Connector, Cursor
from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Channel, WatchRule

from .alerts import stream_fallback_changes
from .channels import channel_quota_record
from .ingest import channel_poll, posts_ingest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamSettings:
    batch_size: int = 100
    # A post waits at most this long in a batch before it is stored.
    flush_seconds: float = 1.0
    backoff_min: float = 1.0
    backoff_max: float = 300.0
    # After refused credentials, look again this much later (someone may fix the channel).
    permanent_wait: float = 300.0
    # Seconds between looks for channels added, changed or disabled.
    rescan_seconds: float = 30.0


_END = object()


class ChannelStreamer:
    """Keeps one channel's stream connected until `stop` is set or the channel stops streaming.

    The network is read in a helper thread; this one stores, so a slow database never stalls
    the socket and a quiet stream still gets its partial batch stored within `flush_seconds`."""

    def __init__(
        self,
        channel_id: int,
        stop: threading.Event,
        settings: StreamSettings | None = None,
        *,
        clock: Callable[[], datetime] = timezone.now,
        own_connection: bool = False,
    ) -> None:
        self.channel_id = channel_id
        # In a thread of its own, the streamer keeps its database connection fresh and closes
        # it at the end; run inline (tests), it leaves the caller's connection alone.
        self.own_connection = own_connection
        self.stop = stop
        self.settings = settings or StreamSettings()
        self.clock = clock
        self.connections = 0
        self.failures = 0

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    channel = self._channel()
                    if channel is None:
                        logger.info("channel %s no longer streams; its streamer stops", self.channel_id)
                        return
                    self._connect_once(channel)
                except DatabaseError as exc:
                    # A database restart must not end the stream: posts not stored yet are
                    # read again from the saved cursor once the database is back.
                    self.failures += 1
                    delay = self._backoff()
                    logger.warning(
                        "stream of channel %s: database error (%s); again in %.0f s", self.channel_id, exc, delay
                    )
                    self.stop.wait(delay)
        finally:
            if self.own_connection:
                connection.close()

    def _backoff(self) -> float:
        """Exponential backoff with jitter after `failures` failures in a row."""
        ceiling = min(self.settings.backoff_max, self.settings.backoff_min * 2 ** (self.failures - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security

    def _fresh_connection(self) -> None:
        """Long-lived threads must drop connections that broke or outlived CONN_MAX_AGE."""
        if self.own_connection:
            close_old_connections()

    def _channel(self) -> Channel | None:
        self._fresh_connection()
        return Channel.objects.filter(pk=self.channel_id, enabled=True, listen_mode=Channel.ListenMode.STREAM).first()

    def _setup(self, channel_id: int) -> tuple[Any, ...]:
        """What a connection was opened with; when it changes (rules, credentials, options, the
        channel stopped streaming) the stream is reopened, not left listening to the old setup."""
        self._fresh_connection()
        channel = Channel.objects.filter(pk=channel_id).values_list(
            "enabled", "listen_mode", "base_url", "config", "credentials"
        )
        rules = WatchRule.objects.filter(channel_id=channel_id, enabled=True).order_by("pk")
        return (
            list(channel),
            list(rules.values_list("pk", "kind", "query", "languages", "action", "complaint_threshold")),
        )

    def _connect_once(self, channel: Channel) -> None:
        connector = connector_for(channel)
        rules = list(channel.rules.filter(enabled=True))
        self.connections += 1
        error: Exception
        try:
            outcome = self._consume(channel, connector, rules)
            if outcome == "reconfigured":
                logger.info("channel %s changed; its stream reconnects", channel.slug)
                return
            if outcome == "received":
                self.failures = 0
            error = TransientError("the stream closed")
        except (TransientError, PermanentError) as exc:
            error = exc
        except DatabaseError:
            raise  # not the stream's fault: `run` waits for the database
        except Exception as exc:  # a connector bug must not kill the other channels' streams
            logger.exception("stream of channel %s crashed", channel.slug)
            error = TransientError(f"stream crashed: {exc!r}")
        finally:
            channel_quota_record(channel=channel, quota=connector.quota)
        if self.stop.is_set():
            return
        self.failures += 1
        self._down(channel, error)

    def _consume(self, channel: Channel, connector: Connector, rules: list) -> str:
        """Store what the stream yields until it ends, the channel changes or we stop; returns
        "received" (something came), "silent" (nothing did) or "reconfigured"."""
        items: queue.Queue[tuple[Any, Any]] = queue.Queue(maxsize=10 * self.settings.batch_size)
        # Set when this side stops reading (stop, or a failed store): the reader must let go.
        done = threading.Event()
        reader = threading.Thread(
            target=self._read, args=(connector, rules, items, done), name=f"stream-read-{channel.slug}", daemon=True
        )
        reader.start()
        pending: list[InboundPost] = []
        cursor: Cursor | None = None
        first_pending_at = 0.0
        received = False
        setup = self._setup(channel.pk)
        saved: Cursor | None = channel.stream_cursor or None
        next_check = time.monotonic() + self.settings.rescan_seconds
        try:
            while True:
                try:
                    item, item_cursor = items.get(timeout=self.settings.flush_seconds)
                except queue.Empty:
                    item, item_cursor = None, None
                if item is _END:
                    ending, final_cursor = item_cursor
                    self._flush(channel, pending, final_cursor or cursor)
                    if ending is not None:
                        raise ending
                    return "received" if received else "silent"
                if item is not None:
                    if not received:
                        received = True
                        _channel_stream_up(channel)
                    cursor = item_cursor
                    if isinstance(item, InboundPost):
                        if not pending:
                            first_pending_at = time.monotonic()
                        pending.append(item)
                full = len(pending) >= self.settings.batch_size
                due = bool(pending) and time.monotonic() - first_pending_at >= self.settings.flush_seconds
                idle = item is None or isinstance(item, StreamMark)
                moved = cursor is not None and cursor != saved
                if full or due or (idle and (pending or moved)) or self.stop.is_set():
                    self._flush(channel, pending, cursor if moved else None)
                    saved = cursor if moved else saved
                    pending, cursor = [], None
                if self.stop.is_set():
                    return "received" if received else "silent"
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + self.settings.rescan_seconds
                    if self._setup(channel.pk) != setup:
                        self._flush(channel, pending, cursor)
                        return "reconfigured"
        finally:
            # The reader notices at its next item (connectors yield a mark every few seconds)
            # and closes the connection; it is a daemon, so a socket stuck in a read cannot
            # hold the process.
            done.set()
            reader.join(timeout=self.settings.flush_seconds)

    def _read(self, connector: Connector, rules: list, items: queue.Queue, done: threading.Event) -> None:
        stream = connector.stream(rules)
        ending: Exception | None = None
        try:
            for item in stream:
                if not self._put(items, (item, connector.stream_cursor()), done) or self.stop.is_set():
                    break
        except Exception as exc:
            ending = exc
        finally:
            stream_close = getattr(stream, "close", None)
            if stream_close is not None:
                stream_close()
            # Events the connector read and skipped after its last item move the cursor too.
            self._put(items, (_END, (ending, connector.stream_cursor())), done)

    def _put(self, items: queue.Queue, value: tuple[Any, Any], done: threading.Event) -> bool:
        """Hand an item to the storing side, waiting while it catches up; False once it is gone."""
        while not done.is_set():
            try:
                items.put(value, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _flush(self, channel: Channel, posts: list[InboundPost], cursor: Cursor | None) -> None:
        if not posts and cursor is None:
            return
        self._fresh_connection()
        posts_ingest(channel=channel, posts=posts, stream_cursor=cursor)

    def _down(self, channel: Channel, error: Exception) -> None:
        """Record why the stream is down, then poll the channel's rules until it is time to
        reconnect: at a rate limit's reset, else after exponential backoff with jitter."""
        permanent = isinstance(error, PermanentError)
        retry_at = error.retry_at if isinstance(error, TransientError) else None
        message = getattr(error, "message", str(error))
        logger.warning("stream of channel %s is down: %s", channel.slug, message)
        _channel_stream_down(
            channel,
            message,
            permanent=permanent,
            retry_at=retry_at,
            now=self.clock(),
            status=getattr(error, "status", None),
        )
        if permanent:
            delay = self.settings.permanent_wait
        elif retry_at is not None:
            delay = max(0.0, (retry_at - self.clock()).total_seconds())
        else:
            delay = self._backoff()
        self._wait_polling(channel, delay, poll=not permanent)

    def _wait_polling(self, channel: Channel, delay: float, *, poll: bool) -> None:
        deadline = time.monotonic() + delay
        next_poll = time.monotonic() + min(delay, float(channel.poll_interval))
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= deadline:
                return
            if poll and now >= next_poll:
                # Polling fills the gap while the stream is down; ingest dedupes the overlap.
                self._fresh_connection()
                fresh = Channel.objects.filter(pk=channel.pk).first()
                if fresh is None:
                    return
                channel_poll(channel=fresh)
                next_poll = time.monotonic() + channel.poll_interval
            self.stop.wait(max(0.0, min(deadline, next_poll if poll else deadline) - time.monotonic()))


def _channel_stream_up(channel: Channel) -> None:
    Channel.objects.filter(pk=channel.pk).update(health=Channel.Health.OK, last_error="", rate_limited_until=None)


def _channel_stream_down(
    channel: Channel,
    message: str,
    *,
    permanent: bool,
    retry_at: datetime | None,
    now: datetime,
    status: int | None = None,
) -> None:
    changes: dict[str, Any] = {
        "last_error": f"stream: {message}",
        "last_error_at": now,
        "health": Channel.Health.FAILING if permanent else Channel.Health.DEGRADED,
        "last_error_status": status,
        **stream_fallback_changes(now),
    }
    if retry_at is not None and retry_at > now:
        changes["rate_limited_until"] = retry_at
        metrics.rate_limit_wait(channel.network, (retry_at - now).total_seconds())
    Channel.objects.filter(pk=channel.pk).update(**changes)


def streaming_channels(slugs: Iterable[str] = ()) -> list[int]:
    channels = Channel.objects.filter(enabled=True, listen_mode=Channel.ListenMode.STREAM)
    if slugs:
        channels = channels.filter(slug__in=list(slugs))
    return list(channels.order_by("pk").values_list("pk", flat=True))


def streams_run(*, stop: threading.Event, slugs: Iterable[str] = (), settings: StreamSettings | None = None) -> None:
    """Run a streamer thread per streaming channel until `stop` is set; channels that start
    streaming later are picked up at the next rescan, ones that stop end their thread."""
    settings = settings or StreamSettings()
    wanted = list(slugs)
    threads: dict[int, threading.Thread] = {}
    try:
        while not stop.is_set():
            try:
                close_old_connections()
                channel_ids = streaming_channels(wanted)
            except DatabaseError as exc:
                # The running streams wait out the database themselves; look again next time.
                logger.warning("cannot list the streaming channels (%s); again in %s s", exc, settings.rescan_seconds)
                channel_ids = []
            for channel_id in channel_ids:
                thread = threads.get(channel_id)
                if thread is None or not thread.is_alive():
                    streamer = ChannelStreamer(channel_id, stop, settings, own_connection=True)
                    thread = threading.Thread(target=streamer.run, name=f"stream-{channel_id}", daemon=True)
                    threads[channel_id] = thread
                    thread.start()
            stop.wait(settings.rescan_seconds)
    finally:
        stop.set()
        for thread in threads.values():
            thread.join(timeout=settings.flush_seconds + 5)
        connection.close()
