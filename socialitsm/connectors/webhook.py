"""Webhook: any source pushes signed JSON posts to us; replies go back to its reply_url.

Inbound: POST /api/v1/ingest/<channel-slug>/ with header
    X-SocialITSM-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by the channel secret>
Outbound replies (optional): channel config "reply_url"; we POST
    {"idempotency_key", "in_reply_to", "to", "visibility", "text"} signed the same way and expect
    {"id": "..."} back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from socialitsm import http
from socialitsm.exceptions import PermanentError
from socialitsm.signing import SIGNATURE_HEADER as SIGNATURE_HEADER
from socialitsm.signing import sign as sign
from socialitsm.signing import signature_valid as signature_valid

from .base import Connector, Cursor, InboundPost, Limits

if TYPE_CHECKING:
    from socialitsm.models import Post, WatchRule


class WebhookConnector(Connector):
    network = "webhook"

    def search(self, rule: WatchRule, cursor: Cursor) -> tuple[Sequence[InboundPost], Cursor]:
        return [], cursor

    def reply(self, post: Post, text: str, visibility: str, *, idempotency_key: str) -> str:
        url = self.channel.config.get("reply_url")
        if not url:
            raise PermanentError("this webhook channel has no reply_url configured")
        body = json.dumps(
            {
                "idempotency_key": idempotency_key,
                "in_reply_to": post.external_id,
                "to": post.author.external_id,
                "visibility": visibility,
                "text": text,
            }
        ).encode()
        response = http.request(
            "POST",
            url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": idempotency_key,
                SIGNATURE_HEADER: sign(self.channel.credentials.get("secret", ""), body),
            },
        )
        try:
            reply_id = response.json()["id"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError('reply_url answered without a JSON {"id": ...}') from exc
        return str(reply_id)

    def limits(self) -> Limits:
        return Limits(max_reply_chars=int(self.channel.config.get("max_reply_chars", 10_000)))
