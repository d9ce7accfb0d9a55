"""Saved queue views: an agent names the queue's current filter to pick it again."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from socialitsm.exceptions import ApplicationError
from socialitsm.models import SavedView
from socialitsm.selectors import QueueView
from socialitsm.text import clean_text

# The filters a view keeps, as the queue's query string and the API's name them.
QUERY_KEYS = ("view", "q", "search", "sort", "mine", "unassigned", "service", "priority", "state")
MAX_VIEWS = 100


def saved_view_query(raw: dict[str, Any]) -> dict[str, str]:
    """The filters of `raw` a view keeps: known keys with non-empty text values, in key order.

    Raises ApplicationError for an unknown key, an over-long value or an unknown view."""
    if not isinstance(raw, dict):
        raise ApplicationError("query must be an object of filters", field="query")
    unknown = sorted(set(raw) - set(QUERY_KEYS))
    if unknown:
        raise ApplicationError(f"unknown filter {clean_text(unknown[0])[:40]!r}", field="query")
    query: dict[str, str] = {}
    for key in QUERY_KEYS:
        value = raw.get(key)
        if value in (None, "", False):
            continue
        if isinstance(value, bool):
            value = "on"
        if not isinstance(value, (str, int)) or len(str(value)) > 200:
            raise ApplicationError(f"{key} must be a short text", field="query")
        query[key] = clean_text(str(value))
    if query.get("view", QueueView.OPEN) not in QueueView.values:
        raise ApplicationError(f"unknown view {query['view'][:40]!r}", field="query")
    return query


def saved_view_create(*, user, name: str, query: dict[str, Any], shared: bool = False) -> SavedView:
    """Save `query` (see saved_view_query) as `user`'s view `name`.

    Raises ApplicationError for an empty or taken name, bad filters, or too many views."""
    name = clean_text(name or "").strip()
    if not name:
        raise ApplicationError("give the view a name", field="name")
    if len(name) > 80:
        raise ApplicationError("a name has at most 80 characters", field="name")
    cleaned = saved_view_query(query)
    if SavedView.objects.filter(user=user).count() >= MAX_VIEWS:
        raise ApplicationError(f"at most {MAX_VIEWS} saved views; delete one first", field="name")
    try:
        with transaction.atomic():
            return SavedView.objects.create(user=user, name=name, query=cleaned, shared=shared)
    except IntegrityError:
        raise ApplicationError(f"you already have a view named {name!r}", field="name") from None


def saved_view_delete(*, view: SavedView, user) -> None:
    """Delete `view`; only its owner may. Raises ApplicationError otherwise."""
    if view.user_id != user.pk:
        raise ApplicationError("only the agent who saved a view can delete it")
    view.delete()
