"""ITSM adapter registry: connection kind -> adapter class, imported lazily."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from .base import SYNCED_FIELDS, ExternalTicket, ItsmAdapter, TicketFields

if TYPE_CHECKING:
    from socialitsm.models import ItsmConnection

ADAPTERS: dict[str, str] = {
    "rt": "socialitsm.itsm.rt.RtAdapter",
    "servicenow": "socialitsm.itsm.servicenow.ServiceNowAdapter",
    "jira": "socialitsm.itsm.jira.JiraAdapter",
    "zendesk": "socialitsm.itsm.zendesk.ZendeskAdapter",
    "webhook": "socialitsm.itsm.webhook.WebhookAdapter",
    "fake": "socialitsm.itsm.fake.FakeAdapter",
}

__all__ = ["ADAPTERS", "SYNCED_FIELDS", "ExternalTicket", "ItsmAdapter", "TicketFields", "adapter_for"]


def adapter_class(kind: str) -> type[ItsmAdapter]:
    try:
        dotted = ADAPTERS[kind]
    except KeyError:
        raise LookupError(f"no ITSM adapter for {kind!r}") from None
    module, _, name = dotted.rpartition(".")
    return getattr(import_module(module), name)


def adapter_for(connection: ItsmConnection) -> ItsmAdapter:
    return adapter_class(connection.kind)(connection)
