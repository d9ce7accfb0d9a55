"""Fewer indexes on posts: routing updates columns that indexes hold, so each routed post is a new
entry in every index of the table, and five of them served no read.

- `author` and `incident` are served by the indexes that lead with them
  (post_author_conversation_idx; post_incident_order_idx, which a lookup by incident can use
  because it implies the incident is set).
- `rule` and `detected_service` are read by no query that an index would help; deleting a rule or
  a service sets its posts' column to null in one statement, a scan of the table.
- `labelled_by` keeps an index of the labelled posts only, for deleting a user.

The foreign keys themselves are left alone: altering the fields as Django does would drop and add
each constraint again, checking every post under a lock. Only the indexes are dropped, by the
names Django gave them.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

COLUMNS = ("author_id", "detected_service_id", "incident_id", "labelled_by_id", "rule_id")


def _index_names(apps, schema_editor):
    table = apps.get_model("socialitsm", "Post")._meta.db_table
    return {column: schema_editor._create_index_name(table, [column]) for column in COLUMNS}


def foreign_key_indexes_drop(apps, schema_editor):
    for name in _index_names(apps, schema_editor).values():
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def foreign_key_indexes_create(apps, schema_editor):
    post = apps.get_model("socialitsm", "Post")
    table = schema_editor.quote_name(post._meta.db_table)
    for column, name in _index_names(apps, schema_editor).items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {schema_editor.quote_name(name)} ON {table} ({schema_editor.quote_name(column)})"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("socialitsm", "0028_catalogue_products"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="post",
                    name="author",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="posts",
                        to="socialitsm.author",
                    ),
                ),
                migrations.AlterField(
                    model_name="post",
                    name="detected_service",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="socialitsm.service",
                    ),
                ),
                migrations.AlterField(
                    model_name="post",
                    name="incident",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="posts",
                        to="socialitsm.incident",
                    ),
                ),
                migrations.AlterField(
                    model_name="post",
                    name="labelled_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="post",
                    name="rule",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="posts",
                        to="socialitsm.watchrule",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(foreign_key_indexes_drop, foreign_key_indexes_create)],
        ),
        migrations.AddIndex(
            model_name="post",
            index=models.Index(
                condition=models.Q(("labelled_by__isnull", False)), fields=["labelled_by"], name="post_labelled_by_idx"
            ),
        ),
    ]
