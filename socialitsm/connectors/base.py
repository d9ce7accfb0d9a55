"""The connector interface: what every network module provides, and the shapes it speaks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from socialitsm.models import Channel, Post, WatchRule

Cursor = dict[str, Any]


@dataclass(frozen=True, slots=True)
class InboundAuthor:
    external_id: str
    handle: str = ""
    name: str = ""
    profile_url: str = ""


@dataclass(frozen=True, slots=True)
class InboundPost:
    """A post as our pipeline sees it, whatever network it came from. Text is plain text."""

    external_id: str
    author: InboundAuthor
    text: str
    posted_at: datetime
    url: str = ""
    in_reply_to: str = ""
    conversation_id: str = ""
    language: str = ""
    is_direct: bool = False
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Limits:
    """What a network allows a reply to be."""

    max_reply_chars: int
    supports_direct: bool = True
    supports_public: bool = True


class Connector(ABC):
    """One network behind one small interface. Connectors never touch the ORM for writes."""

    network: str = ""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    @abstractmethod
    def search(self, rule: WatchRule, cursor: Cursor) -> tuple[Sequence[InboundPost], Cursor]:
        """Posts matching `rule` after `cursor`, oldest first, and the cursor to save once they
        are stored. Raises TransientError (retry later) or PermanentError (fix the channel)."""

    def stream(self, rules: Sequence[WatchRule]) -> Iterator[InboundPost]:
        """Posts as the network pushes them; only for networks with a streaming API."""
        raise NotImplementedError(f"{self.network} has no streaming listener")

    @abstractmethod
    def reply(self, post: Post, text: str, visibility: str, *, idempotency_key: str) -> str:
        """Send `text` to the poster of `post`, publicly or by direct message, and return the
        network's id of what was sent. Raises TransientError or PermanentError."""

    @abstractmethod
    def limits(self) -> Limits:
        """The reply limits of this network."""
