"""What the queue's counts read instead of every incident.

A covering index of the open incidents: by state, priority, service, assignee, major or not and
time to breach, read without touching the table.

`IncidentStateTally` holds rows of changes to how many incidents are in each state. On
PostgreSQL, statement-level triggers on the incidents table insert, for each INSERT, UPDATE and
DELETE statement, one row per state whose count it changed (from its transition tables); rows are
only ever inserted, so concurrent writers never wait for one another on them. The table starts
with one row per state of the incidents already stored. Other databases get the table but no
triggers; the queue counts the incidents there.
"""

from django.conf import settings
from django.db import migrations, models

UPKEEP = """
CREATE FUNCTION socialitsm_incident_state_upkeep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO socialitsm_incidentstatetally (state, incidents)
        SELECT state, count(*) FROM new_rows GROUP BY state;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO socialitsm_incidentstatetally (state, incidents)
        SELECT state, -count(*) FROM old_rows GROUP BY state;
    ELSE
        INSERT INTO socialitsm_incidentstatetally (state, incidents)
        SELECT state, sum(change) FROM (
            SELECT state, 1 AS change FROM new_rows
            UNION ALL
            SELECT state, -1 FROM old_rows
        ) AS moved GROUP BY state HAVING sum(change) <> 0;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER socialitsm_incident_state_insert AFTER INSERT ON socialitsm_incident
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION socialitsm_incident_state_upkeep();
CREATE TRIGGER socialitsm_incident_state_update AFTER UPDATE ON socialitsm_incident
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION socialitsm_incident_state_upkeep();
CREATE TRIGGER socialitsm_incident_state_delete AFTER DELETE ON socialitsm_incident
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION socialitsm_incident_state_upkeep();
INSERT INTO socialitsm_incidentstatetally (state, incidents)
SELECT state, count(*) FROM socialitsm_incident GROUP BY state;
"""

REMOVE = """
DROP TRIGGER IF EXISTS socialitsm_incident_state_insert ON socialitsm_incident;
DROP TRIGGER IF EXISTS socialitsm_incident_state_update ON socialitsm_incident;
DROP TRIGGER IF EXISTS socialitsm_incident_state_delete ON socialitsm_incident;
DROP FUNCTION IF EXISTS socialitsm_incident_state_upkeep();
"""


def upkeep_install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UPKEEP)


def upkeep_remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REMOVE)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("socialitsm", "0025_scale_aggregates"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="incident",
            index=models.Index(
                condition=models.Q(("state__in", ["new", "in_progress", "on_hold"])),
                fields=["state", "priority", "service", "assignee", "is_major", "breach_due_at"],
                name="incident_open_counts_idx",
            ),
        ),
        migrations.CreateModel(
            name="IncidentStateTally",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("new", "New"),
                            ("in_progress", "In progress"),
                            ("on_hold", "On hold"),
                            ("resolved", "Resolved"),
                            ("closed", "Closed"),
                            ("canceled", "Canceled"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "incidents",
                    models.IntegerField(help_text="Incidents that came into the state (negative: that left it)."),
                ),
            ],
        ),
        migrations.RunPython(upkeep_install, upkeep_remove),
    ]
