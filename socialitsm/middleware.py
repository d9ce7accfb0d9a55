"""Shows times in each user's time zone: their profile's, else the one their browser reported."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from socialitsm.services.profiles import time_zone_valid

COOKIE = "socialitsm_tz"
SESSION_KEY = "socialitsm:time_zone"


def time_zone_remember(request: HttpRequest, name: str) -> None:
    """Keep the user's zone for the session, so pages need no query to find it."""
    request.session[SESSION_KEY] = name


def time_zone_on_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """At login, the profile's zone is read once into the session."""
    if request is None or not hasattr(request, "session"):
        return
    from socialitsm.models import AgentProfile

    name = AgentProfile.objects.filter(user_id=user.pk).values_list("time_zone", flat=True).first() or ""
    time_zone_remember(request, name)


class TimezoneMiddleware:
    """Activates the user's zone for the request (Django then renders times in it): the
    profile's (read into the session at login, and kept there when the profile changes), else
    the browser's from the cookie the pages set, else the site's TIME_ZONE. Costs no query.
    Goes after the session and authentication middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = self._zone(request)
        if name:
            timezone.activate(zoneinfo.ZoneInfo(name))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

    def _zone(self, request: HttpRequest) -> str:
        session = getattr(request, "session", None)
        name = session.get(SESSION_KEY, "") if session is not None else ""
        if name and time_zone_valid(name):
            return name
        cookie = request.COOKIES.get(COOKIE, "")
        return cookie if time_zone_valid(cookie) else ""
