"""The ITSM adapter interface: what every suite module provides, and the shapes it speaks."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import requests

from socialitsm import http
from socialitsm.exceptions import ExternalError, PermanentError
from socialitsm.signing import SIGNATURE_HEADER as SIGNATURE_HEADER
from socialitsm.signing import sign as sign
from socialitsm.signing import signature_valid

if TYPE_CHECKING:
    from socialitsm.models import ItsmConnection

# The calls every adapter answers under the error contract (see ItsmAdapter.__init_subclass__).
INTERFACE = ("find", "create", "update", "comment", "fetch", "deliver", "major_mark", "parent_link", "parent_unlink")

# Fields pushed again whenever they change here; the description goes out only on create.
SYNCED_FIELDS = ("short_description", "state", "impact", "urgency", "priority", "group", "assignee")


@dataclass(frozen=True, slots=True)
class TicketFields:
    """An incident as the suites see it: plain values, no ORM."""

    external_ref: str
    number: str
    short_description: str
    description: str
    state: str
    impact: int
    urgency: int
    priority: int
    service: str = ""
    group: str = ""
    assignee: str = ""
    url: str = ""

    def synced(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SYNCED_FIELDS}


@dataclass(frozen=True, slots=True)
class ExternalTicket:
    """A suite's record as we read it back. `status` is in the suite's own words."""

    remote_id: str
    key: str = ""
    url: str = ""
    status: str = ""
    updated_at: datetime | None = None


F = TypeVar("F", bound=Callable[..., Any])


def _contract(method: F) -> F:
    """Hold an interface method to the error contract: an answer the adapter could not read (not
    JSON, a missing key, a list where an object was expected, a date that does not parse) is a
    PermanentError naming what went wrong, never a KeyError escaping into the sync."""

    @functools.wraps(method)
    def guarded(self: ItsmAdapter, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except ExternalError:
            raise
        except (LookupError, TypeError, AttributeError, ValueError) as exc:
            raise PermanentError(
                f"{self.kind} answered in a shape this adapter cannot read ({type(exc).__name__}: {exc})"
            ) from exc

    return guarded  # type: ignore[return-value]


class ItsmAdapter(ABC):
    """One suite behind one small interface. Adapters call the suite through `send` (which goes
    through socialitsm.http) and read bodies with `json`; they raise only TransientError (retry
    later) or PermanentError (fix the connection or the data), and never write the ORM. Every
    interface method of a subclass is held to that contract by `_contract`."""

    kind: ClassVar[str] = ""
    # Our incident state -> the suite's state, and back; ItsmConnection.state_map overrides both.
    STATES_OUT: ClassVar[dict[str, str]] = {}
    STATES_IN: ClassVar[dict[str, str]] = {}
    # An outbound webhook has no record to update: it receives every audit event instead.
    delivers_events: ClassVar[bool] = False
    # Links a child's record to its major incident's record (`parent_link`).
    links_parents: ClassVar[bool] = True
    can_pull: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in INTERFACE:
            if name in cls.__dict__:
                setattr(cls, name, _contract(cls.__dict__[name]))

    def __init__(self, connection: ItsmConnection) -> None:
        self.connection = connection
        self.config: Mapping[str, Any] = connection.config or {}
        self.credentials: Mapping[str, Any] = connection.credentials or {}

    # -- the interface ---------------------------------------------------------------------------

    @abstractmethod
    def find(self, external_ref: str) -> ExternalTicket | None:
        """The suite's record carrying our reference, or None. Called before every create, so a
        retry after a create that timed out links the record instead of making a second one."""

    @abstractmethod
    def create(self, fields: TicketFields, *, idempotency_key: str) -> ExternalTicket:
        """Create the record, storing `fields.external_ref` where `find` looks for it, and sending
        `idempotency_key` where the suite accepts one."""

    @abstractmethod
    def update(self, remote_id: str, fields: TicketFields, changed: tuple[str, ...]) -> None:
        """Send the `changed` fields (names from SYNCED_FIELDS) of `fields`."""

    @abstractmethod
    def comment(self, remote_id: str, text: str, *, public: bool) -> str:
        """Add a comment: public ones reach the requester, the others are internal notes.
        Returns the suite's id of the comment where it gives one, else ""."""

    @abstractmethod
    def fetch(self, remote_id: str) -> ExternalTicket:
        """The record as it is now in the suite."""

    def deliver(self, payload: dict[str, Any], *, idempotency_key: str) -> str:
        """Deliver one audit event (only adapters with `delivers_events`)."""
        raise NotImplementedError(f"{self.kind} does not take events")

    # -- major incidents -------------------------------------------------------------------------
    # A major incident's record is the parent of its children's records. The sync pushes the
    # parent first, marks it (`major_mark`), then links each child to it (`parent_link`); a child
    # moved to another parent or taken out is unlinked from the old one (`parent_unlink`).

    def major_mark(self, remote_id: str, is_major: bool) -> None:
        """Make the record a parent that children can be linked to (`is_major`), or an ordinary
        record again, where the suite needs that first (Zendesk's problem tickets); elsewhere
        nothing is sent. Idempotent."""
        return

    def parent_link(self, remote_id: str, parent_id: str) -> None:
        """Link the record `remote_id` to its major incident's record `parent_id` the way the
        suite models it. Idempotent: linking again leaves one link."""
        raise NotImplementedError(f"{self.kind} does not link records")

    def parent_unlink(self, remote_id: str, parent_id: str) -> None:
        """Remove the link `parent_link` made; a link already gone is no error."""
        raise NotImplementedError(f"{self.kind} does not link records")

    # -- inbound webhooks ------------------------------------------------------------------------

    def webhook_signature_valid(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Our scheme: X-SocialITSM-Signature: sha256=<hex HMAC-SHA256 of the body, keyed by the
        connection's webhook_secret>. Suites with their own scheme override this."""
        return signature_valid(str(self.credentials.get("webhook_secret", "")), body, headers.get(SIGNATURE_HEADER))

    def webhook_remote_id(self, payload: Any) -> str:
        """The id of the suite's record an inbound call is about; "" when it names none."""
        if isinstance(payload, dict):
            for key in ("remote_id", "id", "ticket_id"):
                value = payload.get(key)
                if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                    return str(value)
        return ""

    # -- the transport ---------------------------------------------------------------------------

    def send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One call to the suite through socialitsm.http (timeouts, 429/5xx -> TransientError,
        other 4xx -> PermanentError). Redirects are not followed, so the credentials never go to
        another address, and an API that answers with one (http to https, a login page, a moved
        site) is misconfigured: PermanentError naming the target."""
        response = http.request(method, url, **kwargs)
        if 300 <= response.status_code < 400:
            target = response.headers.get("Location", "")
            raise PermanentError(
                f"{self.kind} answered HTTP {response.status_code} from {urlsplit(response.url).netloc}, "
                f"redirecting to {target or 'nowhere'}: API calls do not follow redirects; "
                "set the connection's base URL to the suite's API address",
                status=response.status_code,
            )
        return response

    def json(self, response: requests.Response, expect: type | tuple[type, ...] = dict) -> Any:
        """The body as JSON of the type `expect`. An empty body, HTML (a proxy's or login page) or
        JSON of another type is a PermanentError saying what came instead."""
        where = f"{self.kind} answered HTTP {response.status_code} from {urlsplit(response.url).netloc}"
        text = response.text.strip()
        if not text:
            raise PermanentError(f"{where} with an empty body where JSON was expected", status=response.status_code)
        try:
            data = response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type").split(";")[0].strip()
            raise PermanentError(
                f"{where} with {kind}, not JSON (is the base URL the suite's API?): {text[:200]}",
                status=response.status_code,
            ) from None
        if not isinstance(data, expect):
            raise PermanentError(
                f"{where} with JSON of an unexpected shape ({type(data).__name__}): {text[:200]}",
                status=response.status_code,
            )
        return data

    # -- helpers for the suite modules -----------------------------------------------------------

    def state_out(self, state: str) -> str:
        table = {**self.STATES_OUT, **(self.connection.state_map or {}).get("out", {})}
        try:
            return str(table[state])
        except KeyError:
            raise PermanentError(f"no {self.kind} state is mapped for {state!r}; set state_map.out") from None

    def state_in(self, status: str) -> str | None:
        """Our state for the suite's `status`, or None when it has no counterpart here."""
        table = {**self.STATES_IN, **(self.connection.state_map or {}).get("in", {})}
        return table.get(status)

    def mapped(self, table: str, name: str) -> str | None:
        """The suite's id for our group or user `name` from ItsmConnection.field_map."""
        if not name:
            return None
        value = (self.connection.field_map or {}).get(table, {}).get(name)
        return str(value) if value not in (None, "") else None

    def url(self, path: str) -> str:
        return self.connection.base_url.rstrip("/") + path

    def setting(self, name: str, default: Any = None) -> Any:
        value = self.config.get(name, default)
        if value is None:
            raise PermanentError(f"the {self.kind} connection needs config {name!r}")
        return value
