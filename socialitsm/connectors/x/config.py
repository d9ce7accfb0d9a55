"""The settings an X channel keeps in its config."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..base import ChannelConfig

REPLY_POLICIES = ("summoned", "any")


@dataclass(frozen=True, slots=True)
class XConfig(ChannelConfig):
    """See the X connector's module docstring for what each key does."""

    reply_policy: str = "summoned"
    prices: dict[str, float] = field(default_factory=dict)
    max_pages: int = 5
    max_query_length: int = 0
    stream_backfill_minutes: int = 0
    stream_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.reply_policy not in REPLY_POLICIES:
            raise ValueError(f"config reply_policy: expected one of {', '.join(REPLY_POLICIES)}")
