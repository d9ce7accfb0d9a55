"""Database helpers the ORM lacks.

Timestamps PostgreSQL holds but Python cannot (it stores 4713 BC to 294276 AD; Python's datetime
years 1 to 9999) are read back clamped: a post once accepted with `0001-01-01T00:30:00+01:00`
(year 0 in UTC) made every query that read it fail, including the one that deletes it. Such
values load as the nearest instant with room for any time zone conversion (datetimes.READ_*).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, models
from django.db.models.lookups import In

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
                cursor.execute(sql, [array_param(a) for a in _arrays([pk, *columns], chunk, adding=False)])
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
    columns = [f for f in model._meta.concrete_fields if not f.primary_key]
    if connection.vendor == "postgresql":
        values = {column.attname: _column_values(column, objs, adding=True) for column in columns}
        return _insert_arrays(model, values, returning, skip_conflicts=True)
    return _insert_rows(model, columns, objs, returning, batch_size=batch_size)


def values_insert_new(
    model: type[models.Model], values: Mapping[str, Sequence[Any]], returning: Sequence[str]
) -> list[tuple[Any, ...]]:
    """`rows_insert_new` for rows given as one sequence of values per field (by attribute name,
    `author_id` for a foreign key) instead of model instances, which cost more to build than to
    write: fields left out take their default. Values go through each field as `save()` would
    prepare them; no `pre_save` runs (give `auto_now` fields their value)."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    unknown = set(values) - {f.attname for f in fields} - {f.name for f in fields}
    if unknown:
        raise TypeError(f"{model.__name__} has no field {', '.join(sorted(unknown))}")
    lengths = {len(column) for column in values.values()}
    if len(lengths) != 1:
        raise ValueError(f"the columns have different lengths: {sorted(lengths)}")
    count = lengths.pop()
    if not count:
        return []
    prepared: dict[str, list[Any]] = {}
    for column in fields:
        given = values[column.attname] if column.attname in values else values.get(column.name)
        if given is None:
            prepared[column.attname] = [column.get_db_prep_save(column.get_default(), connection)] * count
        else:
            prepared[column.attname] = _prepared(column, given)
    if connection.vendor == "postgresql":
        return _insert_arrays(model, prepared, returning, skip_conflicts=True)
    objs = [model(**{name: column[i] for name, column in values.items()}) for i in range(count)]
    return _insert_rows(model, fields, objs, returning, batch_size=500)


def rows_insert(model: type[models.Model], objs: Sequence[models.Model], *, batch_size: int | None = None) -> None:
    """Insert every one of `objs` and set their primary keys, like bulk_create, but on PostgreSQL
    as one array per column in one statement per chunk: bulk_create compiles each value of each
    row into its statement, which costs more Python than the rows take to write."""
    if not objs:
        return
    if connection.vendor != "postgresql" or any(obj.pk is not None for obj in objs):
        model._default_manager.bulk_create(objs, batch_size=batch_size)
        return
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="bulk_create")  # type: ignore[attr-defined]
    columns = [f for f in model._meta.concrete_fields if not f.primary_key]
    values = {column.attname: _column_values(column, objs, adding=True) for column in columns}
    pk = model._meta.pk
    keys = _insert_arrays(model, values, [pk.name], skip_conflicts=False)
    if len(keys) != len(objs):
        raise RuntimeError(f"{len(objs)} {model.__name__} rows sent, {len(keys)} written")
    for obj, (key,) in zip(objs, keys, strict=True):
        setattr(obj, pk.attname, key)
        obj._state.adding = False
        obj._state.db = connection.alias


def _insert_arrays(
    model: type[models.Model], values: Mapping[str, list[Any]], returning: Sequence[str], *, skip_conflicts: bool
) -> list[tuple[Any, ...]]:
    """INSERT ... SELECT FROM unnest(one array per column) [ON CONFLICT DO NOTHING] RETURNING,
    in chunks; `values` holds each column's prepared values by attribute name."""
    qn = connection.ops.quote_name
    columns = [f for f in model._meta.concrete_fields if f.attname in values]
    names = ", ".join(qn(column.column) for column in columns)
    back = ", ".join(qn(_concrete_field(model, name).column) for name in returning)
    conflict = "ON CONFLICT DO NOTHING " if skip_conflicts else ""
    # Only quoted model metadata and column types are interpolated; every value is a parameter.
    sql = (
        f"INSERT INTO {qn(model._meta.db_table)} ({names}) SELECT * FROM {_unnest(columns)} "  # noqa: S608
        f"{conflict}RETURNING {back}"
    )
    count = len(values[columns[0].attname])
    written: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        for start in range(0, count, ARRAY_CHUNK):
            chunk = [_as_sent(column, values[column.attname][start : start + ARRAY_CHUNK]) for column in columns]
            cursor.execute(sql, [array_param(column) for column in chunk])
            written.extend(tuple(r) for r in cursor.fetchall())
    return written


def _insert_rows(
    model: type[models.Model],
    columns: Sequence[models.Field[Any, Any]],
    objs: Sequence[models.Model],
    returning: Sequence[str],
    *,
    batch_size: int,
) -> list[tuple[Any, ...]]:
    """The same insert as a multi-row VALUES statement (databases without arrays)."""
    qn = connection.ops.quote_name
    names = ", ".join(qn(column.column) for column in columns)
    back = ", ".join(qn(_concrete_field(model, name).column) for name in returning)
    table = qn(model._meta.db_table)
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    written: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
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
    return [_as_sent(column, _column_values(column, objs, adding=adding)) for column in columns]


def _as_sent(column: models.Field[Any, Any], values: list[Any]) -> list[Any]:
    """An array of json values goes as text and is cast by the statement."""
    if not isinstance(column, models.JSONField):
        return values
    import json

    from psycopg.types.json import Jsonb

    return [(v.dumps or json.dumps)(v.obj) if isinstance(v, Jsonb) else v for v in values]


def array_param(values: list[Any]) -> str | list[Any]:
    """One column of values as a PostgreSQL array literal ('{"a","b",NULL}'), for a parameter the
    statement casts to an array type. The driver adapts a list element by element in Python, a
    few microseconds each, which was most of the cost of sending a batch; this spells the
    values rows hold (text, booleans, integers, finite floats, aware datetimes, None) directly.
    A list holding anything else is returned as it is, for the driver to adapt."""
    parts: list[str] = []
    append = parts.append
    for value in values:
        kind = type(value)
        if value is None:
            append("NULL")
        elif kind is str:
            append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif kind is bool:
            append("t" if value else "f")
        elif isinstance(value, int):  # int, or the driver's sized integer types
            append(int.__repr__(value))
        elif kind is float and math.isfinite(value):
            append(repr(value))
        elif kind is datetime and value.tzinfo is not None and value.utcoffset() is not None:
            try:
                utc = value if value.tzinfo is UTC else value.astimezone(UTC)
            except OverflowError:
                return values
            append('"' + utc.isoformat() + '"')
        else:
            return values
    return "{" + ",".join(parts) + "}"


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


def _prepared(column: models.Field[Any, Any], values: Sequence[Any]) -> list[Any]:
    """`values` of `column` as the field prepares them for saving (see _column_values)."""
    as_is, prep = _AS_IS.get(type(column)), column.get_db_prep_save
    if as_is is None:
        return [prep(value, connection) for value in values]
    return [value if as_is(value) else prep(value, connection) for value in values]


def _text_as_is(value: Any) -> bool:
    return value is None or type(value) is str


def _aware_as_is(value: Any) -> bool:
    return value is None or (type(value) is datetime and value.utcoffset() is not None)


def _float_as_is(value: Any) -> bool:
    return value is None or type(value) is float


def _int_as_is(value: Any) -> bool:
    return value is None or type(value) is int


# Per field class (exactly; subclasses go through the field), the values whose get_db_prep_save
# on PostgreSQL is the value itself, or an integer type wrapping it that an array literal spells
# the same, and whose pre_save reads the attribute (fields set on save, auto_now ones, are
# always called).
_AS_IS: dict[type, Any] = {
    models.CharField: _text_as_is,
    models.TextField: _text_as_is,
    models.URLField: _text_as_is,
    models.EmailField: _text_as_is,
    models.SlugField: _text_as_is,
    models.BooleanField: lambda value: type(value) is bool,
    models.DateTimeField: _aware_as_is,
    models.FloatField: _float_as_is,
    models.ForeignKey: _int_as_is,
    models.IntegerField: _int_as_is,
    models.BigIntegerField: _int_as_is,
    models.PositiveIntegerField: _int_as_is,
    models.PositiveSmallIntegerField: _int_as_is,
    models.SmallIntegerField: _int_as_is,
}


def _concrete_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"{model.__name__}.{name} is not a concrete field")
    return field


@cache
def _clamped_loader(base: type) -> type:
    """The timestamptz loader of a connection whose own loader is `base` (Django's, which sets
    the connection's zone on each value): the same values, parsed by psycopg's fastest parser
    (its C one when installed; Django subclasses the Python one, 3.2 against 0.2 us a value),
    then clamped into the range every zone conversion can hold (datetimes.clamp_read). A year
    Python cannot hold (PostgreSQL's 10000 and BC years, infinity) reads as the nearest end."""
    import psycopg
    from psycopg.adapt import Loader
    from psycopg.pq import Format

    parser = psycopg.adapters.get_loader(psycopg.adapters.types["timestamptz"].oid, Format.TEXT) or base
    zone = getattr(base, "timezone", UTC)
    earliest, latest = datetimes.READ_EARLIEST, datetimes.READ_LATEST

    class ClampedTimestamptzLoader(Loader):
        clamps_reads = True
        timezone = zone

        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            self._parse = parser(oid, context).load

        def load(self, data: Any) -> datetime:
            try:
                value = self._parse(data)
            except psycopg.DataError:
                text = bytes(data)
                if text in (b"infinity", b"-infinity"):
                    late = text == b"infinity"
                else:
                    late = not text.endswith(b"BC") and text[:1].isdigit() and int(text.split(b"-", 1)[0]) >= 9999
                value = latest if late else earliest
                return value.astimezone(zone) if zone is not None else value.replace(tzinfo=None)
            # As Django's loader: the value in the connection's zone, or naive without one.
            value = value.replace(tzinfo=zone)
            if zone is None or earliest <= value <= latest:
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


@models.Field.register_lookup
class AnyOf(In):
    """`field__any=values`: `field = ANY(%s::type[])` on PostgreSQL, one array parameter however
    many values, instead of IN with a placeholder (and a call of the field) per value, which
    costs milliseconds of Python for the few hundred ids of a batch. Elsewhere it is `__in`.
    Values of the field's own Python type (int for keys, str for text) are sent as they are."""

    lookup_name = "any"

    def get_prep_lookup(self) -> Any:
        if connection.vendor != "postgresql" or not self.rhs_is_direct_value():
            return super().get_prep_lookup()
        values = self.rhs if isinstance(self.rhs, list | tuple | set | frozenset) else list(self.rhs)
        kinds = {type(value) for value in values}
        if self.lhs.output_field.is_relation and not kinds <= {int}:
            # Model instances (or their keys in another type) stand for their primary keys.
            from django.db.models.fields.related_lookups import get_normalized_value

            values = [get_normalized_value(value, self.lhs)[0] for value in values]
            self.rhs = values
            kinds = {type(value) for value in values}
        db_type = self.lhs.output_field.db_type(connection) or ""
        if kinds <= {int} and db_type in ("bigint", "integer", "smallint"):
            return list(dict.fromkeys(values))
        if kinds <= {str} and (db_type == "text" or db_type.startswith("varchar")):
            return list(dict.fromkeys(values))
        return super().get_prep_lookup()

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        db_type = self.lhs.output_field.db_type(connection) or ""
        if connection.vendor != "postgresql" or not self.rhs_is_direct_value() or not db_type or "[" in db_type:
            return super().as_sql(compiler, connection)
        values = [value for value in self.rhs if value is not None]
        if not values:
            raise EmptyResultSet
        if any(type(value) not in (int, str) for value in values):
            values = [self.lhs.output_field.get_db_prep_value(value, connection, prepared=True) for value in values]
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::{db_type}[])", [*lhs_params, array_param(values)]


models.ForeignObject.register_lookup(AnyOf)
