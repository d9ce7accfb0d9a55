"""Security headers Django 5.2 does not set itself: Content-Security-Policy and Permissions-Policy."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def _header(directives: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}".strip() for name, value in directives.items())


class SecurityHeadersMiddleware:
    """Adds CONTENT_SECURITY_POLICY and PERMISSIONS_POLICY (settings, as directive -> value
    dicts) to every response that does not carry its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.csp = _header(getattr(settings, "CONTENT_SECURITY_POLICY", {}))
        self.permissions = ", ".join(
            f"{feature}={allow}" for feature, allow in getattr(settings, "PERMISSIONS_POLICY", {}).items()
        )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.csp:
            response.headers.setdefault("Content-Security-Policy", self.csp)
        if self.permissions:
            response.headers.setdefault("Permissions-Policy", self.permissions)
        return response


def csp_update(**directives: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A view's own policy: the site's with these directives replaced (underscores for dashes)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            response = view(request, *args, **kwargs)
            policy = {
                **getattr(settings, "CONTENT_SECURITY_POLICY", {}),
                **{name.replace("_", "-"): value for name, value in directives.items()},
            }
            response.headers["Content-Security-Policy"] = _header(policy)
            return response

        return wrapped

    return decorator
