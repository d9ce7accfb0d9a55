"""Error types shared by services, connectors and adapters."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from requests import Response


class ApplicationError(Exception):
    """A request that the domain refuses; the message is safe to show to a user."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ConflictError(ApplicationError):
    """A well-formed request that the row's current state does not allow, e.g. cancelling a
    reply that was already sent; the API answers 409."""


class PrivateDataError(ApplicationError):
    """A public reply that looks like it carries private data (an e-mail address, a phone or
    account number); sent only when the agent confirms. `findings` are (kind, text) pairs."""

    code = "private_data"

    def __init__(self, message: str, *, findings: list[tuple[str, str]]) -> None:
        super().__init__(message, field="text")
        self.findings = findings


class VersionConflictError(ConflictError):
    """A change made against a version of an incident that is no longer current. `changed`
    maps each field someone else changed meanwhile to its current value, as shown."""

    def __init__(self, message: str, *, version: int, changed: dict[str, str]) -> None:
        super().__init__(message, field=next(iter(changed), None))
        self.version = version
        self.changed = changed


class ExternalError(Exception):
    """A call to a network or suite failed. `response` is the remote's answer when there was
    one (an HTTP error status), so callers can read its headers and body."""

    def __init__(self, message: str, *, status: int | None = None, response: Response | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.response = response


class TransientError(ExternalError):
    """Worth retrying: timeouts, 5xx, 429. `retry_at` is when the remote said to come back."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_at: datetime | None = None,
        response: Response | None = None,
    ) -> None:
        super().__init__(message, status=status, response=response)
        self.retry_at = retry_at


class PermanentError(ExternalError):
    """Not worth retrying: bad credentials, validation errors, unknown resources."""
