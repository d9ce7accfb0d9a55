"""Fake: an in-memory suite for tests and the demo; records every call it receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from socialitsm.exceptions import PermanentError

from .base import ExternalTicket, ItsmAdapter, TicketFields


@dataclass
class FakeTicket:
    remote_id: str
    external_ref: str
    fields: dict[str, Any]
    status: str
    comments: list[dict[str, Any]] = field(default_factory=list)
    major: bool = False
    parent: str = ""


class FakeSuite:
    """Shared state so tests can read what was sent, change tickets "in the suite" and queue errors."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.tickets: dict[str, FakeTicket] = {}
        self.calls: list[tuple[str, str]] = []
        self.events: list[dict[str, Any]] = []
        # Exceptions raised by the next calls, in order; (exception, after) raises after doing the work.
        self.errors: list[Exception | tuple[Exception, str]] = []

    def _fail(self, when: str) -> None:
        if not self.errors:
            return
        head = self.errors[0]
        after = isinstance(head, tuple)
        if (when == "after") == after:
            self.errors.pop(0)
            raise head[0] if isinstance(head, tuple) else head


suite = FakeSuite()


class FakeAdapter(ItsmAdapter):
    kind = "fake"
    STATES_OUT = {s: s for s in ("new", "in_progress", "on_hold", "resolved", "closed", "canceled")}
    STATES_IN = dict(STATES_OUT)

    def _ticket(self, ticket: FakeTicket) -> ExternalTicket:
        return ExternalTicket(
            remote_id=ticket.remote_id,
            key=f"FAKE-{ticket.remote_id}",
            url=f"https://suite.example.com/t/{ticket.remote_id}",
            status=ticket.status,
        )

    def _call(self, name: str, remote_id: str = "") -> None:
        suite.calls.append((name, remote_id))
        suite._fail("before")

    def find(self, external_ref: str) -> ExternalTicket | None:
        self._call("find")
        found = next((t for t in suite.tickets.values() if t.external_ref == external_ref), None)
        return self._ticket(found) if found else None

    def create(self, fields: TicketFields, *, idempotency_key: str) -> ExternalTicket:
        self._call("create")
        remote_id = str(len(suite.tickets) + 1)
        ticket = FakeTicket(remote_id, fields.external_ref, dict(fields.synced()), self.state_out(fields.state))
        ticket.fields["description"] = fields.description
        suite.tickets[remote_id] = ticket
        suite._fail("after")
        return self._ticket(ticket)

    def update(self, remote_id: str, fields: TicketFields, changed: tuple[str, ...]) -> None:
        self._call("update", remote_id)
        ticket = suite.tickets[remote_id]
        for name in changed:
            ticket.fields[name] = getattr(fields, name)
        if "state" in changed:
            ticket.status = self.state_out(fields.state)

    def comment(self, remote_id: str, text: str, *, public: bool) -> str:
        self._call("comment", remote_id)
        ticket = suite.tickets[remote_id]
        ticket.comments.append({"text": text, "public": public})
        return str(len(ticket.comments))

    def major_mark(self, remote_id: str, is_major: bool) -> None:
        self._call("major_mark", remote_id)
        suite.tickets[remote_id].major = is_major

    def parent_link(self, remote_id: str, parent_id: str) -> None:
        self._call("parent_link", remote_id)
        if not suite.tickets[parent_id].major:
            raise PermanentError(f"ticket {parent_id} is not a major incident")
        suite.tickets[remote_id].parent = parent_id

    def parent_unlink(self, remote_id: str, parent_id: str) -> None:
        self._call("parent_unlink", remote_id)
        if suite.tickets[remote_id].parent == parent_id:
            suite.tickets[remote_id].parent = ""

    def fetch(self, remote_id: str) -> ExternalTicket:
        self._call("fetch", remote_id)
        return self._ticket(suite.tickets[remote_id])
