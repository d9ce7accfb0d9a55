"""Database helpers the ORM lacks.

Timestamps PostgreSQL holds but Python cannot (it stores 4713 BC to 294276 AD; Python's datetime
years 1 to 9999) are read back clamped: a post once accepted with `0001-01-01T00:30:00+01:00`
(year 0 in UTC) made every query that read it fail, including the one that deletes it. Such
values load as the nearest instant with room for any time zone conversion (datetimes.READ_*).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.db import connection, models

from socialitsm import datetimes


def rows_update(model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write `fields` of each object by primary key.

    QuerySet.bulk_update builds a CASE expression per field and row, which costs seconds of
    Python for a few thousand rows. On PostgreSQL the rows go as one array per column in one
    short statement per chunk (`UPDATE ... FROM unnest(...)`); elsewhere a prepared UPDATE is
    sent with executemany."""
    if not objs:
        return
    qn = connection.ops.quote_name
    columns = [_concrete_field(model, name) for name in fields]
    table, pk = qn(model._meta.db_table), model._meta.pk
    if connection.vendor == "postgresql":
        assignments = ", ".join(f"{qn(column.column)} = v.{qn(column.column)}" for column in columns)
        names = ", ".join(qn(column.column) for column in [pk, *columns])
        # Only quoted model metadata and column types are interpolated; every value is a parameter.
        sql = (
            f"UPDATE {table} SET {assignments} FROM {_unnest([pk, *columns])} AS v({names}) "  # noqa: S608
            f"WHERE {table}.{qn(pk.column)} = v.{qn(pk.column)}"
        )
        with connection.cursor() as cursor:
            for start in range(0, len(objs), ARRAY_CHUNK):
                chunk = objs[start : start + ARRAY_CHUNK]
                cursor.execute(sql, _arrays([pk, *columns], chunk, adding=False))
        return
    assignments = ", ".join(f"{qn(column.column)} = %s" for column in columns)
    sql = f"UPDATE {table} SET {assignments} WHERE {qn(pk.column)} = %s"  # noqa: S608
    params = [
        [column.get_db_prep_save(getattr(obj, column.attname), connection) for column in columns] + [obj.pk]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def rows_insert_new(
    model: type[models.Model], objs: Sequence[models.Model], returning: Sequence[str], *, batch_size: int = 500
) -> list[tuple[Any, ...]]:
    """Insert `objs`, skipping any that would break a unique constraint, and return `returning`
    of the rows this call wrote. Counting these says what the database did: a concurrent
    writer's row is skipped here, never counted twice (bulk_create with ignore_conflicts
    cannot tell which rows it wrote). On PostgreSQL each chunk goes as one array per column."""
    if not objs:
        return []
    qn = connection.ops.quote_name
    columns = [f for f in model._meta.concrete_fields if not f.primary_key]
    names = ", ".join(qn(column.column) for column in columns)
    back = ", ".join(qn(_concrete_field(model, name).column) for name in returning)
    table = qn(model._meta.db_table)
    written: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Only quoted model metadata and column types are interpolated; every value is a parameter.
            sql = (
                f"INSERT INTO {table} ({names}) SELECT * FROM {_unnest(columns)} "  # noqa: S608
                f"ON CONFLICT DO NOTHING RETURNING {back}"
            )
            for start in range(0, len(objs), ARRAY_CHUNK):
                cursor.execute(sql, _arrays(columns, objs[start : start + ARRAY_CHUNK], adding=True))
                written.extend(tuple(r) for r in cursor.fetchall())
            return written
        row = "(" + ", ".join(["%s"] * len(columns)) + ")"
        for start in range(0, len(objs), batch_size):
            chunk = objs[start : start + batch_size]
            # Only quoted model metadata is interpolated; every value is a parameter.
            sql = (
                f"INSERT INTO {table} ({names}) VALUES {', '.join([row] * len(chunk))} "  # noqa: S608
                f"ON CONFLICT DO NOTHING RETURNING {back}"
            )
            params = [
                column.get_db_prep_save(column.pre_save(obj, True), connection) for obj in chunk for column in columns
            ]
            cursor.execute(sql, params)
            written.extend(tuple(r) for r in cursor.fetchall())
    return written


# Rows per statement when rows go as column arrays: the statement text stays the same whatever
# the count (so the driver parses it once), and the arrays stay a few megabytes at most.
ARRAY_CHUNK = 2000


def _unnest(columns: Sequence[models.Field[Any, Any]]) -> str:
    """`unnest(%s::type[], ...)`: one array parameter per column, zipped into rows. Arrays of
    arrays would be flattened by unnest, so array columns are refused."""
    types = []
    for column in columns:
        db_type = column.db_type(connection) or ""
        if not db_type or db_type.endswith("]"):
            raise TypeError(f"{column.name} ({db_type!r}) cannot be written as a column array")
        types.append(f"%s::{db_type}[]")
    return f"unnest({', '.join(types)})"


def _arrays(
    columns: Sequence[models.Field[Any, Any]], objs: Sequence[models.Model], *, adding: bool
) -> list[list[Any]]:
    import json

    from psycopg.types.json import Jsonb

    arrays: list[list[Any]] = []
    for column in columns:
        values = _column_values(column, objs, adding=adding)
        if any(isinstance(v, Jsonb) for v in values):
            # An array of json values goes as text and is cast by the statement.
            values = [(v.dumps or json.dumps)(v.obj) if isinstance(v, Jsonb) else v for v in values]
        arrays.append(values)
    return arrays


def _column_values(column: models.Field[Any, Any], objs: Sequence[models.Model], *, adding: bool) -> list[Any]:
    """Each object's value of `column` as the field prepares it for saving on PostgreSQL. A value
    the field would hand back unchanged (see _AS_IS) is taken as it is: calling the field for
    each of thousands of rows and dozens of columns was most of the Python time of a batch."""
    as_is = _AS_IS.get(type(column))
    if as_is is None or (adding and (getattr(column, "auto_now", False) or getattr(column, "auto_now_add", False))):
        return [
            column.get_db_prep_save(column.pre_save(obj, True) if adding else getattr(obj, column.attname), connection)
            for obj in objs
        ]
    prep, attname = column.get_db_prep_save, column.attname
    return [value if as_is(value) else prep(value, connection) for value in (getattr(obj, attname) for obj in objs)]


def _text_as_is(value: Any) -> bool:
    return value is None or type(value) is str


def _aware_as_is(value: Any) -> bool:
    return value is None or (type(value) is datetime and value.utcoffset() is not None)


def _float_as_is(value: Any) -> bool:
    return value is None or type(value) is float


def _null_as_is(value: Any) -> bool:
    return value is None


# Per field class (exactly; subclasses go through the field), the values whose get_db_prep_save
# on PostgreSQL is the value itself and whose pre_save reads the attribute (fields set on save,
# auto_now ones, are always called). Integers are not among them: PostgreSQL's operations wrap
# them in sized types.
_AS_IS: dict[type, Any] = {
    models.CharField: _text_as_is,
    models.TextField: _text_as_is,
    models.URLField: _text_as_is,
    models.EmailField: _text_as_is,
    models.SlugField: _text_as_is,
    models.BooleanField: lambda value: type(value) is bool,
    models.DateTimeField: _aware_as_is,
    models.FloatField: _float_as_is,
    models.ForeignKey: _null_as_is,
    models.IntegerField: _null_as_is,
    models.BigIntegerField: _null_as_is,
    models.PositiveIntegerField: _null_as_is,
    models.PositiveSmallIntegerField: _null_as_is,
    models.SmallIntegerField: _null_as_is,
}


def _concrete_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"{model.__name__}.{name} is not a concrete field")
    return field


@cache
def _clamped_loader(base: type) -> type:
    import psycopg

    class ClampedTimestamptzLoader(base):
        clamps_reads = True

        def load(self, data: Any) -> datetime:
            try:
                value = super().load(data)
            except psycopg.DataError:
                text = bytes(data)
                late = not text.endswith(b"BC") and text[:1].isdigit() and int(text.split(b"-", 1)[0]) >= 9999
                value = datetimes.READ_LATEST if late else datetimes.READ_EARLIEST
                tz = getattr(self, "timezone", UTC)
                return value.astimezone(tz) if tz is not None else value.replace(tzinfo=None)
            if value.tzinfo is None:
                return value
            return datetimes.clamp_read(value)

    return ClampedTimestamptzLoader


def clamp_timestamps(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created receiver: wrap the connection's timestamptz loader (PostgreSQL only)."""
    if connection.vendor != "postgresql" or not hasattr(connection.connection, "adapters"):
        return
    from psycopg import adapters
    from psycopg.pq import Format

    timestamptz = adapters.types["timestamptz"].oid
    context = connection.connection.adapters
    current = context.get_loader(timestamptz, Format.TEXT)
    if current is None or getattr(current, "clamps_reads", False):
        return
    context.register_loader(timestamptz, _clamped_loader(current))
