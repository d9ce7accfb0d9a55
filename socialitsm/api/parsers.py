"""JSON from callers, parsed with limits: finite numbers only and a bounded nesting depth.

Python's json module reads `1e400` as infinity and accepts NaN and Infinity, none of which
PostgreSQL's jsonb or numeric columns store; and a value nested hundreds of levels deep costs
recursion in every later step that walks it. Both are refused as invalid JSON (400).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Our payloads nest a few levels; suites' webhook payloads a dozen at most.
MAX_DEPTH = 64


class JsonLimitError(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise JsonLimitError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonLimitError(f"the number {text[:32]} is too large")
    return value


def _check_depth(value: Any, limit: int) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            raise JsonLimitError(f"nested deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads that raises ValueError for non-finite numbers and nesting past `max_depth`
    (RecursionError, a RuntimeError, is turned into a ValueError too)."""
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError as exc:
        raise JsonLimitError(f"nested deeper than {max_depth} levels") from exc
    _check_depth(value, max_depth)
    return value


def decode(body: bytes) -> Any:
    """The JSON value of a request body; UnicodeDecodeError or ValueError when it is not."""
    return loads(body.decode("utf-8-sig"))


class InvalidJson(ParseError):
    default_code = "invalid_json"


class StrictJSONParser(JSONParser):
    """DRF's JSON parser with the limits above; errors are 400 invalid_json."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            body = stream.read() if stream is not None else b""
            return loads(body.decode(encoding))
        except UnicodeDecodeError as exc:
            raise InvalidJson(f"The body is not {encoding}.") from exc
        except ValueError as exc:
            raise InvalidJson(f"The body is not JSON: {exc}") from exc
