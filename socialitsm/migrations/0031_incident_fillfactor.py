"""Room on each page of incidents for their rows' next versions, PostgreSQL only.

Routing adds each batch's follow-ups to their incidents' post count, a column no index holds. On a
full page the new row version goes to another page, and each of the table's 25 indexes gets a new
entry for it; with room on its page it is a heap-only (HOT) update and no index is touched. A
fillfactor of 70 leaves that room on the pages written from now on (the incidents routing still
updates are the recent ones); pages already written keep theirs until they are rewritten.
"""

from django.db import migrations

FILLFACTOR = 70


def fillfactor_set(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE socialitsm_incident SET (fillfactor = {FILLFACTOR})")


def fillfactor_reset(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE socialitsm_incident RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("socialitsm", "0030_post_search_split"),
    ]

    operations = [
        migrations.RunPython(fillfactor_set, fillfactor_reset),
    ]
