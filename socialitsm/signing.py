"""The one HMAC signature scheme of our signed calls, both ways: the webhook channels' ingest and
replies, and the ITSM suites' webhooks and events.

    X-SocialITSM-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by the shared secret>
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-SocialITSM-Signature"


def sign(secret: str, body: bytes) -> str:
    """The header value for `body` under `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` signs `body` under `secret`; never with an empty secret or header."""
    if not secret or not header:
        return False
    # As bytes: compare_digest refuses str with non-ASCII characters, which a caller can send.
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode("utf-8", "surrogateescape"))
