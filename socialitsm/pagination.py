"""Pages of long lists that cost the same on page 1 and page 2,000.

A page deep into a list (OFFSET 100,000) makes the database build, join and throw away every row
before it. `KeyedPaginator` first reads the page's primary keys alone, in the list's order (an
index-only scan when an index serves the order, which the lists' orders have), then loads those
rows with their joins and prefetches by key. Page numbers and links stay as they were.

Counting a list of a million rows costs more than serving a page of it, so a paginator may be
given `count_cap`: `count` is then exact up to the cap and the cap itself beyond it, and pages
past the cap are still served (`next` leads on while rows follow).
"""

from __future__ import annotations

from functools import cached_property, partial
from typing import Any

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db.models import QuerySet
from rest_framework.pagination import PageNumberPagination


class KeyedPage(Page):
    def __init__(self, object_list: Any, number: int, paginator: Paginator, more: bool | None = None) -> None:
        super().__init__(object_list, number, paginator)
        self.more = more

    def has_next(self) -> bool:
        return super().has_next() if self.more is None else self.more


class KeyedPaginator(Paginator):
    # None: counted exactly. A subclass (or the count_cap argument) sets a cap.
    default_count_cap: int | None = None

    def __init__(self, *args: Any, count_cap: int | None = None, count: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.count_cap = count_cap if count_cap is not None else self.default_count_cap
        if count is not None:
            # Known already (e.g. from counts the database keeps): not counted again.
            self.__dict__["count"] = count

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if self.count_cap is None or not isinstance(rows, QuerySet):
            return super().count
        return rows.order_by().values("pk")[: self.count_cap + 1].count()

    @property
    def capped(self) -> bool:
        return self.count_cap is not None and self.count > self.count_cap

    def validate_number(self, number: Any) -> int:
        if not self.capped:
            return super().validate_number(number)
        try:
            number = int(number)
        except (TypeError, ValueError) as exc:
            raise PageNotAnInteger("That page number is not an integer") from exc
        if number < 1:
            raise EmptyPage("That page number is less than 1")
        return number

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows: Any = self.object_list
        if self.capped:
            keys = list(rows.values_list("pk", flat=True)[bottom : bottom + self.per_page + 1])
            if not keys and number > 1:
                raise EmptyPage("That page contains no results")
            return KeyedPage(self._load(keys[: self.per_page]), number, self, more=len(keys) > self.per_page)
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        if not isinstance(rows, QuerySet):
            return Page(rows[bottom:top], number, self)
        return Page(self._load(list(rows.values_list("pk", flat=True)[bottom:top])), number, self)

    def _load(self, keys: list[Any]) -> list[Any]:
        rows: Any = self.object_list
        loaded = {row.pk: row for row in rows.order_by().filter(pk__in=keys)}
        return [loaded[key] for key in keys if key in loaded]


class CappedPaginator(KeyedPaginator):
    default_count_cap = 10_000


class KeyedPageNumberPagination(PageNumberPagination):
    """The API's page-number pagination (`?page=`, `count`, `next`, `previous`), keyed pages;
    50 a page whatever the host's REST_FRAMEWORK says (as api.base.Pagination)."""

    page_size = 50
    django_paginator_class = KeyedPaginator

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> list[Any] | None:
        """As DRF's, with the list's count from the view's `list_count()` when it knows it
        without counting the rows (None: counted)."""
        known = getattr(view, "list_count", None)
        count = known() if callable(known) else None
        if count is not None:
            self.django_paginator_class = partial(self.django_paginator_class, count=count)  # type: ignore[assignment]
        return super().paginate_queryset(queryset, request, view)


class CappedPageNumberPagination(KeyedPageNumberPagination):
    """For the posts list (a million rows in a year): `count` is exact up to 10,000 (see the
    module docstring)."""

    django_paginator_class = CappedPaginator
