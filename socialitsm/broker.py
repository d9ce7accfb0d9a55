"""The Celery broker as operations see it: is it answering, and how many messages wait per queue.

Works with every transport the project runs on (Redis, and the embedded filesystem or memory
broker) through kombu's own queue sizes, so Redis priority lists are summed as the worker reads them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from celery import current_app
from kombu.exceptions import ChannelError, OperationalError

from .conf import conf

logger = logging.getLogger(__name__)

_TIMEOUTS = ("socket_timeout", "socket_connect_timeout")


def _connection():
    connection = current_app.connection_for_read()
    if connection.transport_cls in ("redis", "rediss"):
        options = dict(connection.transport_options or {})
        options.update(dict.fromkeys(_TIMEOUTS, conf.READY_TIMEOUT))
        connection.transport_options = options
    return connection


def broker_ping() -> str:
    """ "" when the broker answers, else what is wrong (a Redis ping within READY_TIMEOUT; the
    embedded filesystem and memory brokers answer when their channel opens)."""
    try:
        with _connection() as connection:
            connection.ensure_connection(max_retries=1, timeout=conf.READY_TIMEOUT)
            channel = connection.default_channel
            client = getattr(channel, "client", None)
            if client is not None and hasattr(client, "ping"):
                client.ping()
    except Exception as exc:  # any transport error means "not ready"; its kind varies per transport
        return f"{type(exc).__name__}: {exc}"
    return ""


def queue_depths(queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each queue; a queue never declared counts 0. Raises OperationalError
    (kombu) when the broker does not answer."""
    depths: dict[str, int] = {}
    with _connection() as connection:
        connection.ensure_connection(max_retries=1, timeout=conf.READY_TIMEOUT)
        channel = connection.default_channel
        for queue in queues:
            try:
                depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:
                depths[queue] = 0
    return depths


__all__ = ["OperationalError", "broker_ping", "queue_depths"]
