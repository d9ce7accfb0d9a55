"""Indexes for the searched queue (selectors.incident_queue), PostgreSQL only.

`q` matches words anywhere in the number or short description with `icontains`, which Django
renders on PostgreSQL as `UPPER(col::text) LIKE UPPER(%s)`: trigram GIN indexes on exactly those
expressions serve it (a trigram index on the bare column would not be used).

`search` looks for the words in the text of posts linked to an incident; a GIN index of the linked
posts alone (a tenth of them in a year of data) spares reading the matches among every post, most
of which belong to no incident.
"""

from django.db import migrations

INDEXES = {
    "incident_number_trgm_idx": ("socialitsm_incident", "(UPPER(number::text)) gin_trgm_ops", ""),
    "incident_short_description_trgm_idx": (
        "socialitsm_incident",
        "(UPPER(short_description::text)) gin_trgm_ops",
        "",
    ),
    "post_linked_search_idx": (
        "socialitsm_post",
        "(to_tsvector('simple'::regconfig, COALESCE(text, '')))",
        "WHERE incident_id IS NOT NULL",
    ),
}


def search_indexes_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, (table, expression, condition) in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({expression}) {condition}")


def search_indexes_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("socialitsm", "0026_queue_reads"),
    ]

    operations = [
        migrations.RunPython(search_indexes_create, search_indexes_drop),
    ]
