"""Pages of long lists that cost the same on page 1 and page 2,000.

A page deep into a list (OFFSET 100,000) makes the database build, join and throw away every row
before it. `KeyedPaginator` first reads the page's primary keys alone, in the list's order (an
index-only scan when an index serves the order, which the lists' orders have), then loads those
rows with their joins and prefetches by key. Page numbers and links stay as they were.

Counting a list of a million rows costs more than serving a page of it, so a paginator may be
given `count_cap`: `count` is then exact up to the cap and one more than the cap beyond it, and pages
past the cap are still served (`next` leads on while rows follow). A list whose matches cost
more to find than to sort (a full-text search) may also be given `count_with_page`: the capped
count is then read in the page's own query, so the matches are found once, not twice.
"""

from __future__ import annotations

from functools import cached_property, partial
from typing import Any

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import connections
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

    def __init__(
        self,
        *args: Any,
        count_cap: int | None = None,
        count: int | None = None,
        count_with_page: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.count_cap = count_cap if count_cap is not None else self.default_count_cap
        self.count_with_page = count_with_page
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
        try:
            number = int(number)
        except (TypeError, ValueError) as exc:
            raise PageNotAnInteger("That page number is not an integer") from exc
        if not self.capped:
            return super().validate_number(number)
        if number < 1:
            raise EmptyPage("That page number is less than 1")
        return number

    def get_page(self, number: Any) -> Page:
        """As Django's (page 1 for a bad number, the last page past the end), without validating
        the number first: a page read with its count (`count_with_page`) is then read once."""
        try:
            return self.page(number)
        except PageNotAnInteger:
            return self.page(1)
        except EmptyPage:
            return self.page(self.num_pages)

    def page(self, number: Any) -> Page:
        keys = self._keys_counted(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows: Any = self.object_list
        if self.capped:
            if keys is None:
                keys = list(rows.values_list("pk", flat=True)[bottom : bottom + self.per_page + 1])
            if not keys and number > 1:
                raise EmptyPage("That page contains no results")
            return KeyedPage(self._load(keys[: self.per_page]), number, self, more=len(keys) > self.per_page)
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        if not isinstance(rows, QuerySet):
            return Page(rows[bottom:top], number, self)
        if keys is None:
            keys = list(rows.values_list("pk", flat=True)[bottom:top])
        return Page(self._load(keys[: top - bottom]), number, self)

    def _keys_counted(self, number: Any) -> list[Any] | None:
        """With `count_with_page`, the keys of page `number` and of the row after it, read in one
        query with the capped count (which it then sets), when the count is not known yet and the
        page lies within the cap: a searched list then finds its matches once, not once to count
        them and again for the page. None when it does not apply, or the page is past the end."""
        rows: Any = self.object_list
        if (
            not self.count_with_page
            or "count" in self.__dict__
            or self.count_cap is None
            or self.orphans
            or not isinstance(rows, QuerySet)
        ):
            return None
        try:
            number = int(number)
        except (TypeError, ValueError):
            return None
        bottom = (number - 1) * self.per_page
        if number < 1 or bottom + self.per_page > self.count_cap:
            return None
        listed, params = rows.values_list("pk", flat=True)[: self.count_cap + 1].query.sql_with_params()
        # ROW_NUMBER() OVER () numbers the rows in the order the list gives them: an OVER () with
        # no ORDER BY reads its subquery as it comes, which PostgreSQL and SQLite keep in the
        # subquery's ORDER BY (tests/test_pagination.py compares the pages with the plain path's).
        sql = f"""
            SELECT pk, total FROM (
                SELECT listed.pk, COUNT(*) OVER () AS total, ROW_NUMBER() OVER () AS n FROM ({listed}) AS listed
            ) AS numbered WHERE n > %s ORDER BY n LIMIT %s
        """  # noqa: S608
        with connections[rows.db].cursor() as cursor:
            cursor.execute(sql, [*params, bottom, self.per_page + 1])
            found = cursor.fetchall()
        if not found and number > 1:
            return None
        self.__dict__["count"] = found[0][1] if found else 0
        return [pk for pk, _ in found]

    def _load(self, keys: list[Any]) -> list[Any]:
        listed: Any = self.object_list
        rows = listed.order_by()
        # By key alone: the list's filters chose the keys already, and kept they would run again
        # (a searched list would search once more to load fifty rows). The joins and prefetches stay.
        rows.query.clear_where()
        loaded = {row.pk: row for row in rows.filter(pk__in=keys)}
        return [loaded[key] for key in keys if key in loaded]


class ShortListPaginator(Paginator):
    """Django's Paginator, except that a first page read whole can tell the count: Django counts
    the list before reading any page, but a first page with fewer rows than it holds is all of
    them. A short list (most posters' history) then costs one query, not two; a longer one is
    counted when its count is asked for, as before."""

    def get_page(self, number: Any) -> Page:
        try:
            first = int(number) == 1
        except (TypeError, ValueError):
            first = True  # Django's get_page also gives the first page for these
        if not first or "count" in self.__dict__ or self.orphans:
            return super().get_page(number)
        rows = list(self.object_list[: self.per_page + 1])
        if len(rows) <= self.per_page:
            self.__dict__["count"] = len(rows)
        return Page(rows[: self.per_page], 1, self)


class CappedPaginator(KeyedPaginator):
    default_count_cap = 10_000


class KeyedPageNumberPagination(PageNumberPagination):
    """The API's page-number pagination (`?page=`, `count`, `next`, `previous`), keyed pages;
    50 a page whatever the host's REST_FRAMEWORK says (as api.base.Pagination)."""

    page_size = 50
    django_paginator_class = KeyedPaginator

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> list[Any] | None:
        """As DRF's, with the list's count from the view's `list_count()` when it knows it
        without counting the rows (None: counted), and the paginator's arguments from the view's
        `list_paging()` when it has any (e.g. a cap on the count)."""
        known = getattr(view, "list_count", None)
        count = known() if callable(known) else None
        if count is not None:
            self.django_paginator_class = partial(self.django_paginator_class, count=count)  # type: ignore[assignment]
        paging = getattr(view, "list_paging", None)
        arguments = paging() if callable(paging) else {}
        if arguments:
            self.django_paginator_class = partial(self.django_paginator_class, **arguments)  # type: ignore[assignment]
        return super().paginate_queryset(queryset, request, view)


class CappedPageNumberPagination(KeyedPageNumberPagination):
    """For the posts list (a million rows in a year): `count` is exact up to 10,000 (see the
    module docstring)."""

    django_paginator_class = CappedPaginator
