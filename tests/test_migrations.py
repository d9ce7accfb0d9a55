from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_and_migrations_agree():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_sla_migration_gives_business_hours_policies_a_calendar_and_back():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("socialitsm", "0003_channel_quota")], [("socialitsm", "0004_sla")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("socialitsm", "SlaPolicy")
    old.objects.create(
        name="P3",
        priority=3,
        first_response_minutes=60,
        resolution_minutes=480,
        calendar="business",
        timezone="Europe/Berlin",
    )
    old.objects.create(name="P1", priority=1, first_response_minutes=15, resolution_minutes=240)

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    new = executor.loader.project_state(after).apps.get_model("socialitsm", "SlaPolicy")
    assert list(new.objects.order_by("priority").values_list("name", "calendar__name", "calendar__timezone")) == [
        ("P1", None, None),
        ("P3", "Business hours (Europe/Berlin)", "Europe/Berlin"),
    ]
    assert new.objects.get(name="P3").calendar.hours["fri"] == [["09:00", "17:00"]]

    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("socialitsm", "SlaPolicy")
    assert list(old.objects.order_by("priority").values_list("name", "calendar", "timezone")) == [
        ("P1", "24x7", "UTC"),
        ("P3", "business", "Europe/Berlin"),
    ]
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())
