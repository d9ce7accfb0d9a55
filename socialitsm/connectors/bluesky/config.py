"""The settings a Bluesky channel keeps in its config."""

from __future__ import annotations

from dataclasses import dataclass

from ..base import ChannelConfig


@dataclass(frozen=True, slots=True)
class BlueskyConfig(ChannelConfig):
    """`account_id` is the DID and `pds` the server that hosts it (both from `verify()`);
    `jetstream_url` replaces the public Jetstream instance."""

    pds: str = ""
    jetstream_url: str = ""

    def __post_init__(self) -> None:
        if self.jetstream_url and not self.jetstream_url.startswith(("wss://", "ws://")):
            raise ValueError("config jetstream_url: expected a wss:// address")
