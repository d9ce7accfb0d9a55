"""Zendesk Support: tickets through the Ticketing API, our reference in external_id.

Connection: base_url https://<subdomain>.zendesk.com; credentials {"email", "api_token"} (Basic
"<email>/token") or {"token"} (OAuth bearer), plus webhook_secret (a Zendesk webhook's signing
secret works too); config {"type": "incident", "tags": ["socialitsm"]}. field_map groups and
users map our names to group_id and assignee_id. Creates carry an Idempotency-Key.
A major incident is a problem ticket (type "problem"); its children are incident tickets with
its id in problem_id (Zendesk solves them when the problem is solved).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import requests

from socialitsm.exceptions import PermanentError

from .base import ExternalTicket, ItsmAdapter, TicketFields

PRIORITIES = {1: "urgent", 2: "high", 3: "normal", 4: "low", 5: "low"}
SIGNATURE = "X-Zendesk-Webhook-Signature"
SIGNATURE_TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"


class ZendeskAdapter(ItsmAdapter):
    kind = "zendesk"
    # Zendesk closes solved tickets itself; the API cannot set closed.
    STATES_OUT = {
        "new": "new",
        "in_progress": "open",
        "on_hold": "hold",
        "resolved": "solved",
        "closed": "solved",
        "canceled": "solved",
    }
    STATES_IN = {
        "new": "new",
        "open": "in_progress",
        "pending": "on_hold",
        "hold": "on_hold",
        "solved": "resolved",
        "closed": "closed",
    }

    def _call(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        sent = {"Accept": "application/json", **(headers or {})}
        auth = None
        if self.credentials.get("token"):
            sent["Authorization"] = f"Bearer {self.credentials['token']}"
        elif self.credentials.get("email"):
            auth = (f"{self.credentials['email']}/token", str(self.credentials.get("api_token", "")))
        else:
            raise PermanentError("the Zendesk connection needs credentials: email and api_token, or token")
        return self.send(method, self.url(f"/api/v2{path}"), headers=sent, auth=auth, **kwargs)

    def _ticket(self, data: dict[str, Any]) -> ExternalTicket:
        remote_id = str(data["id"])
        updated = data.get("updated_at")
        return ExternalTicket(
            remote_id=remote_id,
            key=f"#{remote_id}",
            url=self.url(f"/agent/tickets/{remote_id}"),
            status=str(data.get("status", "")),
            updated_at=datetime.fromisoformat(updated) if updated else None,
        )

    def _one(self, response: requests.Response) -> ExternalTicket:
        ticket = self.json(response).get("ticket")
        if not isinstance(ticket, dict):
            raise PermanentError(f"Zendesk answered without a ticket: {response.text[:200]}")
        return self._ticket(ticket)

    def find(self, external_ref: str) -> ExternalTicket | None:
        tickets = self.json(self._call("GET", "/tickets", params={"external_id": external_ref})).get("tickets") or []
        return self._ticket(tickets[0]) if tickets else None

    def create(self, fields: TicketFields, *, idempotency_key: str) -> ExternalTicket:
        ticket: dict[str, Any] = {
            "subject": fields.short_description,
            "comment": {"body": f"{fields.description}\n\nSocialITSM {fields.number}: {fields.url}", "public": False},
            "priority": PRIORITIES[fields.priority],
            "type": str(self.config.get("type", "incident")),
            "external_id": fields.external_ref,
            "tags": list(self.config.get("tags", ["socialitsm"])),
        }
        if fields.state != "new":
            ticket["status"] = self.state_out(fields.state)
        ticket.update({name: value for name, value in self._people(fields, ("group", "assignee")).items() if value})
        response = self._call("POST", "/tickets", headers={"Idempotency-Key": idempotency_key}, json={"ticket": ticket})
        return self._one(response)

    def _people(self, fields: TicketFields, changed: tuple[str, ...]) -> dict[str, int | None]:
        body: dict[str, int | None] = {}
        for name, table, key in (("group", "groups", "group_id"), ("assignee", "users", "assignee_id")):
            if name not in changed:
                continue
            value = getattr(fields, name)
            mapped = self.mapped(table, value)
            if mapped:
                body[key] = int(mapped)
            elif not value:
                body[key] = None
        return body

    def update(self, remote_id: str, fields: TicketFields, changed: tuple[str, ...]) -> None:
        ticket: dict[str, Any] = {}
        if "short_description" in changed:
            ticket["subject"] = fields.short_description
        if "priority" in changed:
            ticket["priority"] = PRIORITIES[fields.priority]
        if "state" in changed:
            ticket["status"] = self.state_out(fields.state)
        ticket.update(self._people(fields, changed))
        if ticket:
            self._call("PUT", f"/tickets/{remote_id}", json={"ticket": ticket})

    def comment(self, remote_id: str, text: str, *, public: bool) -> str:
        response = self._call(
            "PUT", f"/tickets/{remote_id}", json={"ticket": {"comment": {"body": text, "public": public}}}
        )
        audit = self.json(response).get("audit") or {}
        return str(audit.get("id", ""))

    def major_mark(self, remote_id: str, is_major: bool) -> None:
        kind = "problem" if is_major else str(self.config.get("type", "incident"))
        self._call("PUT", f"/tickets/{remote_id}", json={"ticket": {"type": kind}})

    def parent_link(self, remote_id: str, parent_id: str) -> None:
        self._call("PUT", f"/tickets/{remote_id}", json={"ticket": {"type": "incident", "problem_id": int(parent_id)}})

    def parent_unlink(self, remote_id: str, parent_id: str) -> None:
        self._call("PUT", f"/tickets/{remote_id}", json={"ticket": {"problem_id": None}})

    def fetch(self, remote_id: str) -> ExternalTicket:
        return self._one(self._call("GET", f"/tickets/{remote_id}"))

    def webhook_signature_valid(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Our signature, or Zendesk's own: base64(HMAC-SHA256(secret, timestamp + body))."""
        if super().webhook_signature_valid(headers, body):
            return True
        secret = str(self.credentials.get("webhook_secret", ""))
        signature, timestamp = headers.get(SIGNATURE), headers.get(SIGNATURE_TIMESTAMP)
        if not secret or not signature or not timestamp:
            return False
        expected = base64.b64encode(hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest())
        return hmac.compare_digest(expected, signature.strip().encode("utf-8", "surrogateescape"))

    def webhook_remote_id(self, payload: Any) -> str:
        if isinstance(payload, dict) and payload.get("ticket_id"):
            return str(payload["ticket_id"])
        return super().webhook_remote_id(payload)
