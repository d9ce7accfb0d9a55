"""Error pages: JSON under /api/, Django's HTML pages elsewhere. No trace or setting is shown."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

API_PREFIX = "/api/"


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's own refusals before any view runs: a body over DATA_UPLOAD_MAX_MEMORY_SIZE (413
    under /api/), a bad Host header and other suspicious requests."""
    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse(
                {"error": "too_large", "detail": "The body is larger than this server accepts."}, status=413
            )
        return JsonResponse({"error": "bad_request", "detail": "The request was refused."}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "You do not have permission to perform this action."}, status=403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(
            {"error": "server_error", "detail": "The server failed to answer; the error is logged."}, status=500
        )
    return defaults.server_error(request)
