"""Column arrays (socialitsm.db): a value taken as it is must be what the field would have made of it, an
array spelled as a literal must read back as the driver's list does, and the set-based inserts and
lookups must store and find what the ORM's own do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.safestring import mark_safe
from psycopg.types.numeric import Int2, Int8

from socialitsm import datetimes, db
from socialitsm.models import Incident, IncidentEvent, Post, SlaClock

from .factories import IncidentFactory, PostFactory

# Column arrays are written on PostgreSQL only.
pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _columns(model):
    return [f for f in model._meta.concrete_fields if not f.primary_key]


@pytest.mark.parametrize("adding", [True, False])
def test_values_taken_as_they_are_match_what_each_field_prepares(adding):
    incident = IncidentFactory()
    posts = [
        PostFactory(incident=incident, is_complaint=True, complaint_score=0.75, reasons=["outage"]),
        PostFactory(text=mark_safe("<b>safe string</b>"), url="https://social.example.com/@p/1"),
        PostFactory(posted_at=datetime(2026, 11, 26, 8, 0, tzinfo=UTC), edited_at=None, is_complaint=None),
    ]
    events = [IncidentEvent(incident=incident, kind=IncidentEvent.Kind.OPENED, message="opened")]
    clocks = [SlaClock(incident=incident, target="resolution", cycle=0, started_at=datetime(2026, 11, 26, tzinfo=UTC))]
    for model, objs in ((Post, posts), (Incident, [incident]), (IncidentEvent, events), (SlaClock, clocks)):
        columns = [c for c in _columns(model) if not getattr(c, "auto_now", False)]
        fast = db._arrays(columns, objs, adding=adding)
        with mock.patch.object(db, "_AS_IS", {}):
            slow = db._arrays(columns, objs, adding=adding)
        assert fast == slow, model
        # Integers may come wrapped in the driver's sized types from the field; either way they
        # are spelled the same in the array sent.
        assert [db.array_param(column) for column in fast] == [db.array_param(column) for column in slow]
        assert [[_kind(v) for v in column] for column in fast] == [[_kind(v) for v in column] for column in slow]


def _kind(value):
    return int if isinstance(value, int) and not isinstance(value, bool) else type(value)


NASTY_TEXTS = [
    "",
    "plain",
    'a "quoted" word',
    "back\\slash \\\\ and \\N",
    "{braces},commas",
    "NULL",
    "  spaces  ",
    "line\nbreak\ttab",
    "it's 'single'",
    "ünïcödé 🚀 ß",
    None,
]


def _through(param, db_type):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{db_type}[]", [param])
        return cursor.fetchone()[0]


@pytest.mark.parametrize(
    ("values", "db_type"),
    [
        (NASTY_TEXTS, "text"),
        (NASTY_TEXTS, "varchar(255)"),
        ([True, False, None], "boolean"),
        ([0, -1, 2**62, None], "bigint"),
        ([Int8(7), Int8(-3), None], "bigint"),
        ([Int2(7), Int2(-3)], "smallint"),
        ([0.5, -1e-05, 1e300, 0.1 + 0.2, None], "double precision"),
        (
            [
                datetime(2026, 11, 26, 8, 0, 0, 123456, tzinfo=UTC),
                datetime(2026, 11, 26, 13, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
                datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Paris")),
                datetime(1, 1, 1, 0, 0, tzinfo=UTC),
                None,
            ],
            "timestamptz",
        ),
        ([], "text"),
    ],
)
def test_array_literal_reads_back_as_the_driver_sends_the_list(values, db_type):
    literal = db.array_param(values)
    assert isinstance(literal, str)
    assert _through(literal, db_type) == _through(values, db_type)


@pytest.mark.parametrize(
    "values",
    [[1, Decimal("1.5")], [float("inf")], [float("nan")], [datetime(2026, 11, 26, 8, 0)], [b"bytes"], [1, [2]]],
)
def test_values_the_literal_does_not_spell_go_to_the_driver(values):
    assert db.array_param(values) is values


def _post_columns(post_ids):
    names = [f.attname for f in Post._meta.concrete_fields if not f.primary_key]
    return [row[1:] for row in Post.objects.filter(pk__in=post_ids).order_by("external_id").values_list("pk", *names)]


def test_values_insert_new_stores_what_rows_insert_new_stores():
    template = PostFactory(text='first "one" \\ ', raw={"a": [1, {"b": None}]}, reasons=["x"], language="en")
    now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    objs = [
        Post(
            network=template.network,
            scope=template.scope,
            external_id=f"{prefix}-{i}",
            channel_id=template.channel_id,
            rule_id=template.rule_id if i % 2 else None,
            author_id=template.author_id,
            text=text,
            raw={"n": i, "text": text},
            details=[{"kind": "quote", "text": text, "url": ""}] if i else [],
            url="https://social.example.com/@p/1" if i else "",
            posted_at=now - timedelta(minutes=i),
            ingested_at=now,
            edited_at=now if i == 2 else None,
            is_direct=bool(i % 2),
            language="de",
        )
        for prefix in ("old",)
        for i, text in enumerate(t for t in NASTY_TEXTS if t is not None)
    ]
    old = db.rows_insert_new(Post, objs, ("id", "external_id"))
    names = ("network", "scope", "channel_id", "rule_id", "author_id", "text", "raw", "details", "url")
    names += ("posted_at", "ingested_at", "edited_at", "is_direct", "language")
    columns = {name: [getattr(obj, name) for obj in objs] for name in names}
    columns["external_id"] = [obj.external_id.replace("old-", "new-") for obj in objs]
    new = db.values_insert_new(Post, columns, ("id", "external_id"))
    assert [e for _, e in new] == [e.replace("old-", "new-") for _, e in old]
    assert _post_columns([pk for pk, _ in new]) == [
        (*row[:2], row[2].replace("old-", "new-"), *row[3:]) for row in _post_columns([pk for pk, _ in old])
    ]
    # Conflicting rows are skipped and not returned.
    assert db.values_insert_new(Post, {**columns, "text": ["again"] * len(objs)}, ("id",)) == []


def test_values_insert_new_refuses_unknown_fields_and_uneven_columns():
    with pytest.raises(TypeError, match="no field"):
        db.values_insert_new(Post, {"nonsense": [1]}, ("id",))
    with pytest.raises(ValueError, match="different lengths"):
        db.values_insert_new(Post, {"text": ["a"], "url": []}, ("id",))


def test_rows_insert_sets_the_keys_and_stores_what_bulk_create_stores():
    incident = IncidentFactory()
    built = [
        IncidentEvent(incident=incident, kind=IncidentEvent.Kind.OPENED, message=text or "", new_value="x")
        for text in NASTY_TEXTS
    ]
    db.rows_insert(IncidentEvent, built)
    assert all(event.pk and not event._state.adding for event in built)
    compared = IncidentEvent.objects.bulk_create(
        [IncidentEvent(incident=incident, kind=e.kind, message=e.message, new_value="x") for e in built]
    )
    fields = ("incident_id", "kind", "actor_id", "field", "old_value", "new_value", "message")
    stored = {row[0]: row[1:] for row in IncidentEvent.objects.values_list("pk", *fields)}
    assert [stored[e.pk] for e in built] == [stored[e.pk] for e in compared]


def test_rows_insert_takes_the_key_of_an_incident_saved_after_the_event_was_built():
    incident = IncidentFactory.build()
    event = IncidentEvent(incident=incident, kind=IncidentEvent.Kind.OPENED)
    incident.save()
    db.rows_insert(IncidentEvent, [event])
    assert IncidentEvent.objects.get(pk=event.pk).incident_id == incident.pk


def test_any_lookup_finds_what_in_finds():
    incident = IncidentFactory()
    posts = [PostFactory(incident=incident if i % 2 else None, external_id=f"any-{i}") for i in range(5)]
    ids = [p.pk for p in posts]
    cases = [
        ("pk", [*ids[:3], ids[0], 10**12]),
        ("pk", set(ids[1:])),
        ("external_id", ["any-1", "any-3", "none"]),
        ("incident_id", [incident.pk]),
        ("incident", [incident]),
        ("author", [posts[0].author, posts[2].author_id]),
        ("pk", [str(ids[0]), None]),
    ]
    for name, values in cases:
        found = set(Post.objects.filter(**{f"{name}__any": values}).values_list("pk", flat=True))
        assert found == set(Post.objects.filter(**{f"{name}__in": values}).values_list("pk", flat=True)), name
        assert found
        left = set(Post.objects.exclude(**{f"{name}__any": values}).values_list("pk", flat=True))
        assert left == set(ids) - found, name


def test_any_lookup_sends_one_array_and_no_query_for_no_values(django_assert_num_queries):
    posts = [PostFactory() for _ in range(3)]
    with CaptureQueriesContext(connection) as queries:
        assert Post.objects.filter(pk__any=[p.pk for p in posts]).count() == 3
    assert "= ANY(" in queries[0]["sql"]
    with django_assert_num_queries(0):
        assert list(Post.objects.filter(pk__any=[])) == []


def test_timestamps_read_as_djangos_loader_reads_them_in_the_connections_zone():
    """The loader the connection uses parses with psycopg's own parser and gives what Django's
    gives: the same instant, in the connection's zone, clamped at the ends."""
    from psycopg.pq import Format

    stored = [
        "2026-11-26 08:00:00.123456+00",
        "2026-03-29 02:30:00+02",
        "2026-11-01 01:30:00-04",
        "1970-01-01 00:00:00+00",
        "0001-01-01 05:00:00+00",
        "9999-12-31 23:30:00-01",
        "20000-01-01 00:00:00+00",
        "4000-01-01 00:00:00+00 BC",
        "infinity",
        "-infinity",
    ]
    expected = [
        datetime(2026, 11, 26, 8, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetimes.READ_EARLIEST,
        datetimes.READ_LATEST,
        datetimes.READ_LATEST,
        datetimes.READ_EARLIEST,
        datetimes.READ_LATEST,
        datetimes.READ_EARLIEST,
    ]
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(
        connection.connection.adapters.types["timestamptz"].oid, Format.TEXT
    )
    assert loader.clamps_reads and loader.timezone is connection.timezone
    with connection.cursor() as cursor:
        cursor.execute("SELECT unnest(%s::text[])::timestamptz", [stored])
        read = [value for (value,) in cursor.fetchall()]
    assert read == expected
    assert {value.tzinfo for value in read} == {connection.timezone}
