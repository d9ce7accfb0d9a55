"""Fake: an in-memory network for tests; posts are queued in, replies are recorded."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from socialitsm.exceptions import PermanentError, TransientError

from .base import OWN_ACCOUNT_KEY, Connector, Cursor, InboundPost, Limits, StreamMark, same_text

if TYPE_CHECKING:
    from datetime import datetime

    from socialitsm.models import Post, WatchRule


class FakeNetwork:
    """Shared state, keyed by channel slug, so tests can feed posts and read replies."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.inbox: dict[str, list[InboundPost]] = defaultdict(list)
        self.sent: list[dict] = []
        self.errors: list[Exception] = []
        # Replies the network takes whose answer is then lost (a dropped connection, a worker
        # that died): recorded in `sent`, but the sender gets a TransientError.
        self.answers_lost = 0
        # Raised, one per call, by find_sent (a listing that cannot be read).
        self.lookup_errors: list[Exception] = []
        self.lookups = 0
        self.max_reply_chars = 500
        # Status posts published, and why the network would refuse them ("" when it takes them).
        self.statuses: list[dict] = []
        self.status_refusal = ""
        self.reply_unit = "characters"
        # visibility -> why the network would refuse that kind of reply
        self.refusals: dict[str, str] = {}
        # visibility -> who would see that kind of reply, as the reply box says it
        self.audiences: dict[str, str] = {}
        # Each search reports this allowance, as a network's rate-limit headers would.
        self.quota: dict = {}
        # One list per stream connection: posts, marks, an exception that drops it, or an
        # Event the connection idles on (yielding marks) until it is set.
        self.streams: list[list[InboundPost | StreamMark | Exception | threading.Event]] = []
        self.stream_resumed_from: list[Cursor] = []
        self.streams_exhausted = threading.Event()
        # What verify() learns: the account's handle and id.
        self.account = ("@ITSupport", "fake-account-1")
        # Look-ups of stored posts: external id -> "deleted" / "removed" for posts gone upstream,
        # the ids asked for per call, what the next calls raise (None: answer), posts per call.
        self.gone: dict[str, str] = {}
        self.gone_lookups: list[list[str]] = []
        self.gone_lookup_errors: list[Exception | None] = []
        self.gone_lookup_batch = 50


network = FakeNetwork()


class FakeConnector(Connector):
    network = "fake"

    def __init__(self, channel) -> None:
        super().__init__(channel)
        self.lookup_batch = network.gone_lookup_batch

    def search(self, rule: WatchRule, cursor: Cursor) -> tuple[Sequence[InboundPost], Cursor]:
        if network.quota:
            self.note_quota(**network.quota)
        if network.errors:
            raise network.errors.pop(0)
        posts = network.inbox[self.channel.slug]
        start = int(cursor.get("offset", 0))
        return posts[start:], {"offset": len(posts)}

    def verify(self) -> str:
        if network.errors:
            raise network.errors.pop(0)
        handle, account_id = network.account
        self.channel.config[OWN_ACCOUNT_KEY] = account_id
        return handle

    def stream(self, rules: Sequence[WatchRule]) -> Iterator[InboundPost | StreamMark]:
        """Plays the next scripted connection; the cursor counts items since the first one."""
        self._position = int(self.channel.stream_cursor.get("seen", 0))
        network.stream_resumed_from.append(dict(self.channel.stream_cursor))
        if not network.streams:
            network.streams_exhausted.set()
            return
        for item in network.streams.pop(0):
            if isinstance(item, Exception):
                raise item
            if isinstance(item, threading.Event):
                while not item.wait(0.01):
                    yield StreamMark()
                continue
            self._position += 1
            yield item

    def stream_cursor(self) -> Cursor:
        return {"seen": self._position}

    def reply(self, post: Post, text: str, visibility: str, *, idempotency_key: str) -> str:
        if network.errors:
            raise network.errors.pop(0)
        reply_id = f"fake-{len(network.sent) + 1}"
        network.sent.append(
            {"id": reply_id, "to": post.external_id, "text": text, "visibility": visibility, "key": idempotency_key}
        )
        if network.answers_lost:
            network.answers_lost -= 1
            raise TransientError("connection reset after the network took the reply")
        return reply_id

    def status_refusal(self) -> str:
        return network.status_refusal

    def post_status(self, text: str, *, idempotency_key: str) -> tuple[str, str]:
        if network.status_refusal:
            raise PermanentError(network.status_refusal)
        if network.errors:
            raise network.errors.pop(0)
        status_id = f"fake-status-{len(network.statuses) + 1}"
        network.statuses.append({"id": status_id, "channel": self.channel.slug, "text": text, "key": idempotency_key})
        return status_id, f"https://social.example.com/{self.channel.slug}/{status_id}"

    def find_sent(self, post: Post, text: str, visibility: str, *, since: datetime) -> list[str]:
        """What `sent` holds for this post, kind and text (the fake keeps no send times)."""
        network.lookups += 1
        if network.lookup_errors:
            raise network.lookup_errors.pop(0)
        return [
            m["id"]
            for m in network.sent
            if m["to"] == post.external_id and m["visibility"] == visibility and same_text(text, m["text"])
        ]

    def limits(self) -> Limits:
        return Limits(max_reply_chars=network.max_reply_chars, unit=network.reply_unit)

    def reply_refusal(self, post: Post, visibility: str) -> str:
        return network.refusals.get(visibility, "")

    def reply_audience(self, post: Post, visibility: str) -> str:
        return network.audiences.get(visibility, "")

    def posts_gone(self, posts: Sequence[Post]) -> dict[str, str]:
        network.gone_lookups.append([post.external_id for post in posts])
        self.note_quota()
        error = network.gone_lookup_errors.pop(0) if network.gone_lookup_errors else None
        if error is not None:
            raise error
        return {post.external_id: network.gone[post.external_id] for post in posts if post.external_id in network.gone}
