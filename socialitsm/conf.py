"""SOCIALITSM_* settings with their defaults; read through `conf.<NAME>` at call time."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Fernet keys (urlsafe base64, 32 bytes); the first encrypts, all decrypt (rotation).
    "ENCRYPTION_KEYS": [],
    # Webhook ingest limits: characters of post text, posts per batch.
    "MAX_POST_CHARS": 40_000,
    "MAX_BATCH": 500,
    # Incident numbers: prefix + zero-padded counter starting at NUMBER_START.
    "NUMBER_PREFIX": "INC",
    "NUMBER_DIGITS": 7,
    "NUMBER_START": 1001,
    "DEFAULT_IMPACT": 3,
    # Work not finished after this many seconds is picked up again by the recovery sweep.
    "STALE_AFTER_SECONDS": 120,
    # A reply claimed for sending longer ago than this is considered abandoned by a dead worker.
    "SEND_LEASE_SECONDS": 300,
    "HTTP_TIMEOUT": 10.0,
    # Outbound URLs to private, loopback or link-local addresses are refused unless this is set.
    "ALLOW_PRIVATE_URLS": False,
    "DEMO": False,
    # Complaint model retrained from agents' labels (socialitsm_train); the shipped one while absent.
    "MODEL_PATH": "",
    # Folder of the public training sets (TweetEval, VADER tweets), one sub-folder each.
    "DATA_DIR": "",
}


class _Conf:
    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(name)
        return getattr(settings, f"SOCIALITSM_{name}", DEFAULTS[name])


conf = _Conf()
