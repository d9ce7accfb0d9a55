"""Outbound webhook: every audit event of a linked incident, as signed JSON, for suites without
an adapter.

Connection: base_url is the receiver's URL; credentials {"secret": ...} signs each body:
    X-SocialITSM-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by the secret>
    X-SocialITSM-Event: <event kind>    Idempotency-Key: <connection slug>:<event id>
The body is {"id", "event", "occurred_at", "actor", "field", "old_value", "new_value", "message",
"incident": {...the incident now...}}. Any 2xx is a delivery; 429 and 5xx are retried with
backoff (Retry-After honoured), other answers fail the link until retried. Receivers must
de-duplicate on Idempotency-Key: a delivery whose answer was lost is sent again.
"""

from __future__ import annotations

import json
from typing import Any

from socialitsm.exceptions import PermanentError
from socialitsm.signing import SIGNATURE_HEADER, sign

from .base import ExternalTicket, ItsmAdapter, TicketFields


class WebhookAdapter(ItsmAdapter):
    kind = "webhook"
    delivers_events = True
    links_parents = False
    can_pull = False

    def find(self, external_ref: str) -> ExternalTicket | None:
        return ExternalTicket(remote_id=external_ref)

    def create(self, fields: TicketFields, *, idempotency_key: str) -> ExternalTicket:
        return ExternalTicket(remote_id=fields.external_ref)

    def update(self, remote_id: str, fields: TicketFields, changed: tuple[str, ...]) -> None:
        """Changes reach the receiver as events."""

    def comment(self, remote_id: str, text: str, *, public: bool) -> str:
        """Replies reach the receiver as events."""
        return ""

    def fetch(self, remote_id: str) -> ExternalTicket:
        raise PermanentError("an outbound webhook has nothing to read back")

    def deliver(self, payload: dict[str, Any], *, idempotency_key: str) -> str:
        secret = str(self.credentials.get("secret", ""))
        if not secret:
            raise PermanentError('the webhook connection needs credentials {"secret": ...} to sign deliveries')
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        response = self.send(
            "POST",
            self.connection.base_url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": idempotency_key,
                "X-SocialITSM-Event": str(payload.get("event", "")),
                SIGNATURE_HEADER: sign(secret, body),
            },
        )
        return f"HTTP {response.status_code}"
