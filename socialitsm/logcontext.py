"""What every log line carries: the request id, the Celery task id, the channel and the incident
number being worked on. Kept in context variables, so threads and tasks never mix them up, and
added to each record by `ContextFilter`; `JsonFormatter` writes one JSON object per line.

Settings (project/settings.py): the filter on the handler, `JsonFormatter` in production and
plain text in development, `RequestIdMiddleware` first in MIDDLEWARE.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest, HttpResponse
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

FIELDS = ("request_id", "task_id", "channel", "incident")
_vars: dict[str, ContextVar[str]] = {name: ContextVar(f"socialitsm_{name}", default="") for name in FIELDS}

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's request id is kept only if it looks like one: no log injection through the header.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


def current() -> dict[str, str]:
    return {name: var.get() for name, var in _vars.items()}


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Carry `values` (some of FIELDS) on every log line within the block."""
    tokens = [(_vars[name], _vars[name].set(str(value))) for name, value in values.items() if value is not None]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Adds the context fields to each record (empty when not known), and `context`: the known
    ones as " [request_id=... channel=...]" for plain-text formats ("" when none is known)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        known = " ".join(f"{name}={getattr(record, name)}" for name in FIELDS if getattr(record, name, ""))
        record.context = f" [{known}]" if known else ""
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: time, level, logger, message, the context fields that are set,
    and the exception's traceback when there is one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger", "asctime": "time"})
        kwargs.setdefault("timestamp", False)
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", *args, **kwargs)

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record.pop("context", None)
        for name in FIELDS:
            if not log_record.get(name):
                log_record.pop(name, None)


def error_summary(error: object, limit: int = 200) -> str:
    """An error fit for a log line: its first line only. Database errors go on with DETAIL lines
    quoting the failing row, which is post text (and networks may echo what we sent)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:limit]


def request_id_for(request: HttpRequest) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


class RequestIdMiddleware:
    """Gives each request an id (the caller's X-Request-ID when well-formed), logs under it and
    returns it in the response; an incident page's number is carried too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_for(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        with log_context(request_id=request_id, incident=""):
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: dict[str, Any]) -> None:
        number = kwargs.get("number")
        if isinstance(number, str):
            # Reset by the request's own context when __call__ leaves log_context.
            _vars["incident"].set(number[:32])


def celery_connect() -> None:
    """Carry each Celery task's id on the log lines it writes."""
    from celery.signals import task_postrun, task_prerun

    tokens: dict[str, list[Any]] = {}

    def started(task_id: str | None = None, **kwargs: Any) -> None:
        if task_id:
            tokens[task_id] = [_vars["task_id"].set(task_id)]

    def ended(task_id: str | None = None, **kwargs: Any) -> None:
        for token in tokens.pop(task_id or "", []):
            _vars["task_id"].reset(token)

    task_prerun.connect(started, weak=False, dispatch_uid="socialitsm-log-task-start")
    task_postrun.connect(ended, weak=False, dispatch_uid="socialitsm-log-task-end")
