"""Hourly sentiment counts per network, kept by the database; a sync cursor per ITSM connection; an
index of each incident's posts in page order, and indexes for the SLA report's periods.

`PostSentimentHour` holds, per hour (UTC) and network, how many posts have a sentiment and how
many of them are negative (below -0.05) and positive (above 0.05), the thresholds of
`selectors.NEGATIVE_BELOW` / `POSITIVE_ABOVE`. On PostgreSQL, statement-level triggers on the
posts table add what each INSERT, UPDATE and DELETE statement changes (one upsert per statement
from its transition tables, in key order, so concurrent writers do not deadlock), and the table
is filled from the posts already stored. Other databases get the table but no triggers; the
reports count the posts there.

`ItsmConnection.sync_cursor` starts at the connection's discovery cursor, and links whose
incident has events past their watermark get a recheck now, so no change made before the
migration waits for a cursor that has already passed it.
"""

from django.db import migrations, models
from django.db.models import Exists, OuterRef
from django.utils import timezone

NEGATIVE_BELOW = -0.05
POSITIVE_ABOVE = 0.05

UPKEEP = f"""
CREATE FUNCTION socialitsm_post_sentiment_upkeep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO socialitsm_postsentimenthour (hour, network, rated, negative, positive)
        SELECT date_trunc('hour', posted_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', network, count(*),
               count(*) FILTER (WHERE sentiment < {NEGATIVE_BELOW}), count(*) FILTER (WHERE sentiment > {POSITIVE_ABOVE})
        FROM new_rows WHERE sentiment IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (hour, network) DO UPDATE SET rated = socialitsm_postsentimenthour.rated + EXCLUDED.rated,
            negative = socialitsm_postsentimenthour.negative + EXCLUDED.negative,
            positive = socialitsm_postsentimenthour.positive + EXCLUDED.positive;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO socialitsm_postsentimenthour (hour, network, rated, negative, positive)
        SELECT date_trunc('hour', posted_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', network, -count(*),
               -count(*) FILTER (WHERE sentiment < {NEGATIVE_BELOW}), -count(*) FILTER (WHERE sentiment > {POSITIVE_ABOVE})
        FROM old_rows WHERE sentiment IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (hour, network) DO UPDATE SET rated = socialitsm_postsentimenthour.rated + EXCLUDED.rated,
            negative = socialitsm_postsentimenthour.negative + EXCLUDED.negative,
            positive = socialitsm_postsentimenthour.positive + EXCLUDED.positive;
    ELSE
        INSERT INTO socialitsm_postsentimenthour (hour, network, rated, negative, positive)
        SELECT hour, network, sum(rated), sum(negative), sum(positive) FROM (
            SELECT date_trunc('hour', posted_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, network, 1 AS rated,
                   (sentiment < {NEGATIVE_BELOW})::int AS negative, (sentiment > {POSITIVE_ABOVE})::int AS positive
            FROM new_rows WHERE sentiment IS NOT NULL
            UNION ALL
            SELECT date_trunc('hour', posted_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', network, -1,
                   -(sentiment < {NEGATIVE_BELOW})::int, -(sentiment > {POSITIVE_ABOVE})::int
            FROM old_rows WHERE sentiment IS NOT NULL
        ) AS change GROUP BY 1, 2
        HAVING sum(rated) <> 0 OR sum(negative) <> 0 OR sum(positive) <> 0 ORDER BY 1, 2
        ON CONFLICT (hour, network) DO UPDATE SET rated = socialitsm_postsentimenthour.rated + EXCLUDED.rated,
            negative = socialitsm_postsentimenthour.negative + EXCLUDED.negative,
            positive = socialitsm_postsentimenthour.positive + EXCLUDED.positive;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER socialitsm_post_sentiment_insert AFTER INSERT ON socialitsm_post
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION socialitsm_post_sentiment_upkeep();
CREATE TRIGGER socialitsm_post_sentiment_update AFTER UPDATE ON socialitsm_post
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION socialitsm_post_sentiment_upkeep();
CREATE TRIGGER socialitsm_post_sentiment_delete AFTER DELETE ON socialitsm_post
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION socialitsm_post_sentiment_upkeep();
INSERT INTO socialitsm_postsentimenthour (hour, network, rated, negative, positive)
SELECT date_trunc('hour', posted_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', network, count(*),
       count(*) FILTER (WHERE sentiment < {NEGATIVE_BELOW}), count(*) FILTER (WHERE sentiment > {POSITIVE_ABOVE})
FROM socialitsm_post WHERE sentiment IS NOT NULL GROUP BY 1, 2;
"""

REMOVE = """
DROP TRIGGER IF EXISTS socialitsm_post_sentiment_insert ON socialitsm_post;
DROP TRIGGER IF EXISTS socialitsm_post_sentiment_update ON socialitsm_post;
DROP TRIGGER IF EXISTS socialitsm_post_sentiment_delete ON socialitsm_post;
DROP FUNCTION IF EXISTS socialitsm_post_sentiment_upkeep();
"""


def upkeep_install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UPKEEP)


def upkeep_remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REMOVE)


def sync_cursors_start(apps, schema_editor):
    ItsmConnection = apps.get_model("socialitsm", "ItsmConnection")
    ItsmLink = apps.get_model("socialitsm", "ItsmLink")
    IncidentEvent = apps.get_model("socialitsm", "IncidentEvent")
    ItsmConnection.objects.update(sync_cursor=models.F("event_cursor"))
    newer = IncidentEvent.objects.filter(incident=OuterRef("incident"), pk__gt=OuterRef("event_watermark"))
    ItsmLink.objects.exclude(status="failed").filter(Exists(newer)).update(recheck_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [
        ("socialitsm", "0024_catalogue_languages"),
    ]

    operations = [
        migrations.CreateModel(
            name="PostSentimentHour",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("hour", models.DateTimeField()),
                (
                    "network",
                    models.CharField(
                        choices=[
                            ("mastodon", "Mastodon"),
                            ("bluesky", "Bluesky"),
                            ("x", "X"),
                            ("reddit", "Reddit"),
                            ("webhook", "Webhook"),
                            ("replay", "Replay"),
                        ],
                        max_length=16,
                    ),
                ),
                ("rated", models.IntegerField(default=0, help_text="Posts with a sentiment.")),
                ("negative", models.IntegerField(default=0)),
                ("positive", models.IntegerField(default=0)),
            ],
        ),
        migrations.AddConstraint(
            model_name="postsentimenthour",
            constraint=models.UniqueConstraint(fields=("hour", "network"), name="postsentimenthour_uniq"),
        ),
        migrations.RunPython(upkeep_install, upkeep_remove),
        migrations.AddField(
            model_name="itsmconnection",
            name="sync_cursor",
            field=models.PositiveBigIntegerField(default=0, editable=False),
        ),
        migrations.AddIndex(
            model_name="itsmlink",
            index=models.Index(
                condition=models.Q(("recheck_at__isnull", False), models.Q(("status", "failed"), _negated=True)),
                fields=["recheck_at"],
                name="itsmlink_recheck_idx",
            ),
        ),
        migrations.RunPython(sync_cursors_start, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="post",
            index=models.Index(
                condition=models.Q(("incident__isnull", False)),
                fields=["incident", "posted_at", "id"],
                name="post_incident_order_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="incident",
            index=models.Index(fields=["opened_at"], name="incident_opened_idx"),
        ),
        migrations.AddIndex(
            model_name="incident",
            index=models.Index(
                condition=models.Q(("resolved_at__isnull", False)), fields=["resolved_at"], name="incident_resolved_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="incident",
            index=models.Index(
                fields=["sla_started_at"], include=("ingest_lag_seconds",), name="incident_sla_started_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="incident",
            index=models.Index(
                fields=["id"],
                include=("priority", "service", "assignee", "assignment_group", "first_response_at"),
                name="incident_report_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="slaclock",
            index=models.Index(
                condition=models.Q(("state", "running")), fields=["due_at", "id"], name="slaclock_at_risk_idx"
            ),
        ),
    ]
