"""Connector registry: network slug -> connector class, imported lazily."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any

from .base import ChannelConfig, Connector, InboundAuthor, InboundPost, Limits, Quota, RuleKind, StreamMark

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
    "ChannelConfig",
    "Connector",
    "InboundAuthor",
    "InboundPost",
    "Limits",
    "Quota",
    "RuleKind",
    "StreamMark",
    "config_parse",
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


def config_parse(network: str, config: Mapping[str, Any] | None) -> ChannelConfig:
    """A channel's config checked against its connector's `config_class` (the base keys only
    for a network without a connector). Raises ValueError naming the offending key."""
    slug = config.get("connector", network) if isinstance(config, Mapping) else network
    try:
        config_class = connector_class(str(slug)).config_class
    except (LookupError, ImportError):
        config_class = ChannelConfig
    return config_class.parse(config)
