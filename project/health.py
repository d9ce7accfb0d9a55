"""Liveness (/healthz: the database answers) and readiness (/readyz: the database and the broker
answer) for load balancers, container health checks and orchestrators."""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from socialitsm.broker import broker_ping

logger = logging.getLogger(__name__)


def _database_up() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    if not _database_up():
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to take work: the database answers and so does the broker (a Redis ping within
    SOCIALITSM_READY_TIMEOUT; the embedded broker always does). Says which is down, not why:
    the reason (hosts, errors) is logged, not shown to an anonymous caller."""
    checks = {"database": "ok" if _database_up() else "unavailable"}
    problem = broker_ping()
    if problem:
        logger.warning("readyz: the broker does not answer: %s", problem)
    checks["broker"] = "unavailable" if problem else "ok"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", **checks}, status=200 if ready else 503)
