"""AT Protocol records and XRPC answers: ids, times, and the few shapes we read from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from socialitsm.exceptions import TransientError

from ..base import aware_time, same_text


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _rkey(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


def _did_of(uri: str) -> str:
    return uri[len("at://") :].split("/", 1)[0] if uri.startswith("at://") else ""


def _copies(records: Sequence[tuple[str, Mapping[str, Any]]], parent: str, text: str, since: datetime) -> list[str]:
    """Uris of the post records answering `parent` with `text`, created at or after `since`,
    oldest first."""
    found = []
    for uri, record in records:
        created = aware_time(record.get("createdAt"))
        if not uri or created is None or created < since:
            continue
        if _dict(_dict(record.get("reply")).get("parent")).get("uri") != parent:
            continue
        if same_text(text, str(record.get("text") or "")):
            found.append((created, uri))
    return [uri for _, uri in sorted(found)]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(data: Any, key: str) -> list[Any]:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, list):
        raise TransientError(f"Bluesky answered without a {key} list")
    return value
