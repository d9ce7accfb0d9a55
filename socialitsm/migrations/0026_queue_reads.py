"""A covering index of the open incidents for the queue's counts: by state, priority, service,
assignee, major or not and time to breach, read without touching the table."""

from django.conf import settings
from django.db import migrations, models


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
    ]
