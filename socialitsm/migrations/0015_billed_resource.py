from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    dependencies = [
        ("socialitsm", "0014_post_revisions"),
    ]

    operations = [
        migrations.CreateModel(
            name="BilledResource",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField(help_text="The UTC day of the charge.")),
                ("item", models.CharField(help_text='The price item, e.g. "post_read".', max_length=32)),
                ("resource_id", models.CharField(max_length=64)),
                (
                    "channel",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="socialitsm.channel"
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("channel", "day", "item", "resource_id"), name="billedresource_once_per_day"
                    )
                ],
            },
        ),
    ]
