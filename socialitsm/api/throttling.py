"""API rate limits (socialitsm.ratelimit): per user after authentication, and per client address
before it, so anonymous calls and bad tokens are limited too."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from socialitsm.ratelimit import client_address, exceeded, hit


class UserRateThrottle(BaseThrottle):
    """Scope "api_user": calls per authenticated user, whether by token or session."""

    scope = "api_user"

    def __init__(self) -> None:
        self._wait: int | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return True
        self._wait = hit(self.scope, f"user:{user.pk}")
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class ThrottledTokenAuthentication(TokenAuthentication):
    """Token authentication that runs first for every API call, so it is where the per-address
    limits sit (DRF's throttles run only after authentication and permissions have passed):
    - every call counts against "api_address", anonymous ones included;
    - a call with a token, from an address that sent too many invalid ones ("api_auth_failure"),
      is refused before the token is looked up, and every invalid token counts there.
    The answer is 429 with Retry-After."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        address = client_address(request)
        wait = hit("api_address", address)
        if wait is not None:
            raise Throttled(wait)
        if get_authorization_header(request):
            wait = exceeded("api_auth_failure", address)
            if wait is not None:
                raise Throttled(wait)
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            hit("api_auth_failure", address)
            raise
