"""Error answers of the API: DRF's, with a machine-readable code where a body is refused."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler; a body that cannot be parsed also names its error code (invalid_json),
    as the signed endpoints do. Anything unexpected propagates to Django's handler500."""
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, ParseError) and isinstance(response.data, dict):
        code = exc.get_codes()
        response.data = {"error": code if isinstance(code, str) else "parse_error", **response.data}
    return response
