"""Posts' full-text index split by whether the post is linked to an incident, PostgreSQL only.

A post was an entry in two text indexes once routed: the index of every post's text
(post_search_idx, for the posts list) and that of linked posts' text (post_linked_search_idx, for
the incident search, migration 0027). Routing rewrites indexed columns, so each routed post was
indexed three times over its life, each entry a text vector to compute: at ingest in the first,
and when routed in both. With the first kept to posts linked to no incident, a post is in one of
the two at any time and indexed twice; the posts list reads both (selectors.post_search).

The new index is built before the old one is dropped, both without blocking writes
(CONCURRENTLY, hence outside a transaction).
"""

from django.db import migrations

VECTOR = "(to_tsvector('simple'::regconfig, COALESCE(text, '')))"


def unlinked_index_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS post_unlinked_search_idx "
        f"ON socialitsm_post USING gin {VECTOR} WHERE incident_id IS NULL"
    )
    schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS post_search_idx")


def whole_index_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS post_search_idx ON socialitsm_post USING gin {VECTOR}"
    )
    schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS post_unlinked_search_idx")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("socialitsm", "0029_post_lean_indexes"),
    ]

    operations = [
        migrations.RunPython(unlinked_index_create, whole_index_create),
    ]
