"""Database helpers the ORM lacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models


def rows_update(model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write `fields` of each object by primary key with one executemany.

    QuerySet.bulk_update builds a CASE expression per field and row, which costs seconds of
    Python for a few thousand rows; a prepared UPDATE sent in a pipeline costs milliseconds."""
    if not objs:
        return
    qn = connection.ops.quote_name
    columns = [_concrete_field(model, name) for name in fields]
    assignments = ", ".join(f"{qn(column.column)} = %s" for column in columns)
    # Only quoted model metadata is interpolated; every value is a parameter.
    sql = f"UPDATE {qn(model._meta.db_table)} SET {assignments} WHERE {qn(model._meta.pk.column)} = %s"  # noqa: S608
    params = [
        [column.get_db_prep_save(getattr(obj, column.attname), connection) for column in columns] + [obj.pk]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _concrete_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"{model.__name__}.{name} is not a concrete field")
    return field
