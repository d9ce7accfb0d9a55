"""Bluesky sessions: one per account and process, renewed instead of signing in again."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from socialitsm.exceptions import TransientError


@dataclass
class Session:
    did: str
    handle: str
    access: str
    refresh: str
    pds: str


_sessions: dict[tuple[str, str], Session] = {}


_sessions_lock = threading.Lock()


def sessions_forget() -> None:
    """Drop every cached session (tests, or after rotating an app password)."""
    with _sessions_lock:
        _sessions.clear()


def _pds_of(did_doc: Any) -> str:
    if not isinstance(did_doc, dict):
        return ""
    for service in did_doc.get("service") or []:
        if isinstance(service, dict) and str(service.get("id", "")).endswith("#atproto_pds"):
            endpoint = str(service.get("serviceEndpoint") or "").rstrip("/")
            if urlsplit(endpoint).scheme in ("http", "https"):
                return endpoint
    return ""


class _SessionExpired(TransientError):
    """The access token expired or was revoked: renew the session and try once more."""
