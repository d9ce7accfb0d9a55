"""Connector registry: network slug -> connector class, imported lazily."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from .base import Connector, InboundAuthor, InboundPost, Limits, Quota, StreamMark

if TYPE_CHECKING:
    from socialitsm.models import Channel

CONNECTORS: dict[str, str] = {
    "replay": "socialitsm.connectors.replay.ReplayConnector",
    "webhook": "socialitsm.connectors.webhook.WebhookConnector",
    "fake": "socialitsm.connectors.fake.FakeConnector",
    "mastodon": "socialitsm.connectors.mastodon.MastodonConnector",
    "bluesky": "socialitsm.connectors.bluesky.BlueskyConnector",
    "x": "socialitsm.connectors.x.XConnector",
    "reddit": "socialitsm.connectors.reddit.RedditConnector",
}

__all__ = [
    "CONNECTORS",
    "Connector",
    "InboundAuthor",
    "InboundPost",
    "Limits",
    "Quota",
    "StreamMark",
    "connector_for",
]


def connector_class(network: str) -> type[Connector]:
    try:
        dotted = CONNECTORS[network]
    except KeyError:
        raise LookupError(f"no connector for network {network!r}") from None
    module, _, name = dotted.rpartition(".")
    return getattr(import_module(module), name)


def connector_for(channel: Channel) -> Connector:
    return connector_class(channel.config.get("connector", channel.network))(channel)
