from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.paginator import EmptyPage

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
