from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection

from socialitsm import selectors
from socialitsm.models import Incident, Post, SlaClock
from socialitsm.selectors import QueueView
from socialitsm.services.figures import incidents_figures_refresh

from .factories import AuthorFactory, IncidentFactory, PostFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def searchable():
    mika = AuthorFactory(handle="@mika_k", name="Mika Kallio")
    jo = AuthorFactory(handle="@jo", name="Jo Wren")
    made = {
        "printer": IncidentFactory(number="INC0001001", short_description="Printer jammed on floor 3", author=jo),
        "vpn": IncidentFactory(number="INC0001002", short_description="Cannot connect", author=mika),
        "mail": IncidentFactory(number="INC0002077", short_description="Mail slow"),
    }
    PostFactory(incident=made["vpn"], author=mika, text="The VPN gateway drops every outage hour")
    PostFactory(incident=made["mail"], author=jo, text="Outlook keeps asking for my password")
    PostFactory(author=jo, text="VPN printer mail everything")  # no incident: never found through it
    return made


def found(text: str, search=selectors.incident_search) -> set[str]:
    return set(search(Incident.objects.all(), text).values_list("number", flat=True))


@pytest.mark.parametrize("search", [selectors.incident_search, selectors.incident_search_substring])
@pytest.mark.parametrize(
    "text, expected",
    [
        ("INC0001001", {"INC0001001"}),
        ("printer", {"INC0001001"}),
        ("jammed floor", {"INC0001001"}),
        ("gateway", {"INC0001002"}),
        ("outag", {"INC0001002"}),
        ("@mika_k", {"INC0001002"}),
        ("kallio", {"INC0001002"}),
        ("wren", {"INC0001001", "INC0002077"}),
        ("password outlook", {"INC0002077"}),
        ("printer password", set()),
        ("nothing-like-this", set()),
    ],
)
def test_search_finds_numbers_titles_post_text_and_posters(searchable, search, text, expected):
    assert found(text, search) == expected


def test_search_by_the_digits_of_a_number(searchable):
    assert found("2077") == {"INC0002077"}


@pytest.mark.parametrize("text, expected", [("kallio", {"INC0001002"}), ("wren", {"INC0001001", "INC0002077"})])
def test_search_finds_posters_beyond_those_named_by_id(searchable, monkeypatch, text, expected):
    monkeypatch.setattr(selectors, "SEARCH_POSTERS_NAMED", 0)
    assert found(text) == expected


@pytest.mark.parametrize(
    "query, paging",
    [
        (selectors.IncidentQuery(), {}),
        (selectors.IncidentQuery(view=QueueView.OPEN, states=["new"]), {}),
        (selectors.IncidentQuery(words="vpn"), {"count_cap": selectors.SEARCH_COUNT_CAP}),
        (selectors.IncidentQuery(search="vpn"), {"count_cap": selectors.SEARCH_COUNT_CAP, "count_with_page": True}),
        (selectors.IncidentQuery(search=" ?! "), {}),
    ],
)
def test_searched_queues_are_counted_up_to_the_cap(query, paging):
    assert selectors.incident_queue_paging(query) == paging


def test_empty_search_narrows_nothing(searchable):
    assert found("  ?! ") == {"INC0001001", "INC0001002", "INC0002077"}


def test_search_words_are_plain_words_only():
    assert selectors.search_words("VPN & down:* | !x 'quote' VPN") == ["vpn", "down", "x", "quote"]


def test_post_search(searchable):
    texts = set(selectors.post_search(Post.objects.all(), "vpn").values_list("text", flat=True))
    assert texts == {"The VPN gateway drops every outage hour", "VPN printer mail everything"}
    by_poster = selectors.post_search(Post.objects.all(), "wren")
    assert by_poster.count() == 2


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="GIN indexes are PostgreSQL's")
def test_search_uses_the_gin_indexes(searchable):
    """The queries' expressions are exactly those indexed (else the planner could not use them)."""
    plan = ""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for queryset in (
            selectors.incident_search(Incident.objects.all(), "vpn down"),
            selectors.post_search(Post.objects.all(), "vpn down"),
        ):
            sql, params = queryset.query.sql_with_params()
            cursor.execute(f"EXPLAIN {sql}", params)
            plan += "\n".join(row[0] for row in cursor.fetchall())
    for index in ("incident_search_idx", "post_unlinked_search_idx", "author_search_idx"):
        assert f"Bitmap Index Scan on {index}" in plan


def _index_plan(queryset) -> str:
    """EXPLAIN of `queryset` with scans dear and the text vector dear to compute row by row, so
    the planner reads the indexes a big table would have it read."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL cpu_operator_cost = 10")
        sql, params = queryset.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="GIN indexes are PostgreSQL's")
def test_post_search_reads_the_two_text_indexes_and_no_other(searchable):
    """The posts list finds text through the indexes of unlinked and of linked posts (migration
    0030), each read for its half, and finds posts of both kinds."""
    plan = _index_plan(selectors.post_search(Post.objects.all(), "vpn"))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'socialitsm_post' AND indexdef LIKE '%%to_tsvector%%'"
        )
        indexes = {row[0] for row in cursor.fetchall()}
    assert indexes == {"post_unlinked_search_idx", "post_linked_search_idx"}
    assert "Bitmap Index Scan on post_unlinked_search_idx" in plan
    assert "Bitmap Index Scan on post_linked_search_idx" in plan
    linked = set(selectors.post_search(Post.objects.all(), "vpn").values_list("incident__number", flat=True))
    assert linked == {"INC0001002", None}


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="GIN indexes are PostgreSQL's")
def test_search_reads_the_linked_posts_index(searchable):
    """The search's linked-posts part matches the index of linked posts' text (migration 0027):
    with the text vector dear to compute row by row, the planner reads that index."""
    plan = _index_plan(selectors.incident_search(Incident.objects.all(), "gateway"))
    assert "Bitmap Index Scan on post_linked_search_idx" in plan
    assert found("gateway") == {"INC0001002"}


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes are PostgreSQL's")
def test_words_use_the_trigram_indexes(searchable):
    """`q` (icontains, UPPER(col::text) LIKE) matches the expressions of the trigram indexes."""
    queryset = selectors.incident_queue(Incident.objects.all(), selectors.IncidentQuery(words="jam"), user=None)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL cpu_operator_cost = 10")
        sql, params = queryset.order_by().query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    for index in ("incident_number_trgm_idx", "incident_short_description_trgm_idx"):
        assert f"Bitmap Index Scan on {index}" in plan
    assert [i.number for i in queryset] == ["INC0001001"]


@pytest.fixture
def views_world():
    me, other = UserFactory(username="me"), UserFactory(username="other")
    made = {
        "mine": IncidentFactory(assignee=me, state=Incident.State.IN_PROGRESS),
        "theirs_hold": IncidentFactory(assignee=other, state=Incident.State.ON_HOLD),
        "unassigned": IncidentFactory(),
        "resolved": IncidentFactory(assignee=me, state=Incident.State.RESOLVED),
        "closed": IncidentFactory(state=Incident.State.CLOSED),
        "canceled": IncidentFactory(state=Incident.State.CANCELED),
    }
    for name, minutes in (("mine", 30), ("unassigned", 600)):
        SlaClock.objects.create(
            incident=made[name],
            target=SlaClock.Target.RESOLUTION,
            state=SlaClock.State.RUNNING,
            started_at=NOW - timedelta(hours=1),
            due_at=NOW + timedelta(minutes=minutes),
            target_minutes=minutes + 60,
            computed_at=NOW,
        )
    # Clocks written straight to the table: store the incidents' figures as the services do.
    incidents_figures_refresh(incident_ids=[incident.pk for incident in made.values()])
    return me, {incident.pk: name for name, incident in made.items()}


@pytest.mark.parametrize(
    "view, expected",
    [
        (QueueView.OPEN, {"mine", "theirs_hold", "unassigned"}),
        (QueueView.MINE, {"mine"}),
        (QueueView.UNASSIGNED, {"unassigned"}),
        (QueueView.BREACHING, {"mine"}),
        (QueueView.ON_HOLD, {"theirs_hold"}),
        (QueueView.DONE, {"resolved", "closed"}),
        (QueueView.ALL, {"mine", "theirs_hold", "unassigned", "resolved", "closed", "canceled"}),
    ],
)
def test_queue_views(views_world, view, expected):
    me, names = views_world
    with time_machine.travel(NOW, tick=False):
        shown = selectors.queue_view(Incident.objects.all(), view, user=me)
        counts = selectors.queue_view_counts(me)
    assert {names[pk] for pk in shown.values_list("pk", flat=True)} == expected
    assert counts[view] == len(expected)


def test_unknown_view_is_refused(views_world):
    from socialitsm.exceptions import ApplicationError

    with pytest.raises(ApplicationError, match="unknown view"):
        selectors.queue_view(Incident.objects.all(), "everything", user=None)


def test_queue_stamp_moves_with_every_event(agent):
    from socialitsm.services.incidents import incident_assign

    incident = IncidentFactory()
    before = selectors.queue_stamp()
    incident_assign(incident=incident, actor=agent, assignee=agent)
    assert selectors.queue_stamp() > before


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the plans are PostgreSQL's")
@pytest.mark.django_db
def test_posts_by_incident_and_by_author_read_the_indexes_leading_with_them():
    """The foreign keys of posts have no index of their own (migration 0029): a lookup by
    incident reads the partial index of linked posts, one by author the conversation index."""
    incident = IncidentFactory()
    author = AuthorFactory()
    PostFactory(incident=incident, author=author)
    plans = {}
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for name, queryset in {
            "incident": Post.objects.filter(incident=incident),
            "incidents": Post.objects.filter(incident_id__in=[incident.pk, incident.pk + 1]),
            "author": Post.objects.filter(author=author),
        }.items():
            sql, params = queryset.order_by().query.sql_with_params()
            cursor.execute(f"EXPLAIN {sql}", params)
            plans[name] = "\n".join(row[0] for row in cursor.fetchall())
    assert "post_incident_order_idx" in plans["incident"]
    assert "post_incident_order_idx" in plans["incidents"]
    assert "post_author_conversation_idx" in plans["author"]
