from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.paginator import EmptyPage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from socialitsm.models import Post
from socialitsm.pagination import KeyedPaginator

from .factories import PostFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def posts() -> list[Post]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    # Created out of order: the pages follow the list's order, not the keys'.
    made = [PostFactory(posted_at=start + timedelta(hours=(i * 5) % 7)) for i in range(7)]
    return sorted(made, key=lambda post: (post.posted_at, post.pk))


def _pages(paginator: KeyedPaginator) -> list[list[int]]:
    return [[post.pk for post in paginator.page(n)] for n in paginator.page_range]


def test_keyed_pages_hold_the_same_rows_in_the_same_order_as_slices(posts):
    rows = Post.objects.select_related("author").order_by("posted_at", "id")

    paginator = KeyedPaginator(rows, 3)

    assert _pages(paginator) == [[p.pk for p in posts[i : i + 3]] for i in range(0, 7, 3)]
    assert (paginator.count, paginator.capped, paginator.page(3).has_next()) == (7, False, False)


def test_a_capped_count_stops_at_the_cap_but_pages_go_on(posts):
    paginator = KeyedPaginator(Post.objects.order_by("posted_at", "id"), 2, count_cap=3)

    assert (paginator.count, paginator.capped) == (4, True)
    third, fourth = paginator.page(3), paginator.page(4)
    assert ([p.pk for p in third], third.has_next()) == ([posts[4].pk, posts[5].pk], True)
    assert ([p.pk for p in fourth], fourth.has_next()) == ([posts[6].pk], False)
    with pytest.raises(EmptyPage):
        paginator.page(5)


def test_a_count_under_the_cap_is_exact(posts):
    paginator = KeyedPaginator(Post.objects.order_by("posted_at", "id"), 5, count_cap=10)

    assert (paginator.count, paginator.capped, paginator.num_pages) == (7, False, 2)
    with pytest.raises(EmptyPage):
        paginator.page(3)


@pytest.mark.parametrize("per_page, cap", [(3, 10), (3, 5), (2, 3)])
def test_a_count_read_with_the_page_gives_the_same_pages_and_count(posts, per_page, cap):
    rows = Post.objects.order_by("posted_at", "id")
    apart = KeyedPaginator(rows, per_page, count_cap=cap)
    together = KeyedPaginator(rows, per_page, count_cap=cap, count_with_page=True)

    first = together.page(1)

    assert (together.count, together.capped) == (apart.count, apart.capped)
    assert [p.pk for p in first] == [p.pk for p in apart.page(1)]
    assert first.has_next() == apart.page(1).has_next()


def test_a_count_read_with_the_page_is_one_query(posts, django_assert_num_queries):
    paginator = KeyedPaginator(Post.objects.order_by("posted_at", "id"), 3, count_cap=10, count_with_page=True)

    # One query for the keys and the count, one to load the rows.
    with django_assert_num_queries(2):
        page = paginator.page(2)

    assert ([p.pk for p in page], paginator.count, paginator.capped) == ([p.pk for p in posts[3:6]], 7, False)


def test_a_page_past_the_end_read_with_its_count_is_empty(posts):
    paginator = KeyedPaginator(Post.objects.order_by("posted_at", "id"), 3, count_cap=10, count_with_page=True)

    with pytest.raises(EmptyPage):
        paginator.page(4)
    assert [p.pk for p in paginator.get_page(4)] == [posts[6].pk]
    assert [p.pk for p in paginator.get_page("x")] == [p.pk for p in posts[:3]]


def test_an_empty_list_read_with_its_count_has_an_empty_first_page():
    paginator = KeyedPaginator(Post.objects.order_by("posted_at", "id"), 3, count_cap=10, count_with_page=True)

    assert (list(paginator.page(1)), paginator.count) == ([], 0)


def test_rows_are_loaded_by_key_without_the_lists_filters(posts):
    rows = Post.objects.filter(text__icontains=posts[0].text[:4]).order_by("posted_at", "id")
    paginator = KeyedPaginator(rows, 3)

    with CaptureQueriesContext(connection) as queries:
        page = paginator.page(1)

    assert [p.pk for p in page] == [p.pk for p in posts[:3]]
    keys, load = queries.captured_queries[-2:]
    assert "LIKE" in keys["sql"].upper()
    assert "LIKE" not in load["sql"].upper()


@pytest.mark.parametrize("size", [0, 3, 4, 5, 11])
@pytest.mark.parametrize("number", [None, 1, "1", "x", 1.5, 0, 2, 3, 99])
def test_a_short_list_paginator_pages_as_djangos(size, number):
    from django.core.paginator import Paginator

    from socialitsm.pagination import ShortListPaginator

    start = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(size):
        PostFactory(posted_at=start + timedelta(minutes=i))
    rows = Post.objects.order_by("posted_at", "id")

    ours, theirs = ShortListPaginator(rows, 4).get_page(number), Paginator(rows, 4).get_page(number)

    assert [p.pk for p in ours] == [p.pk for p in theirs]
    assert (ours.number, ours.has_next(), ours.has_previous()) == (
        theirs.number,
        theirs.has_next(),
        theirs.has_previous(),
    )
    assert (ours.paginator.count, ours.paginator.num_pages) == (theirs.paginator.count, theirs.paginator.num_pages)


@pytest.mark.parametrize(("size", "queries"), [(0, 1), (3, 1), (4, 1), (5, 2)])
def test_a_short_list_is_counted_by_its_first_page(size, queries):
    from socialitsm.pagination import ShortListPaginator

    for _ in range(size):
        PostFactory()

    with CaptureQueriesContext(connection) as captured:
        page = ShortListPaginator(Post.objects.order_by("id"), 4).get_page(None)
        shown = (len(page), page.paginator.count, page.has_next())

    assert shown == (min(size, 4), size, size > 4)
    assert len(captured) == queries
