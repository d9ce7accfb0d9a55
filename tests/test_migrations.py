from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, verbosity=1)
    except SystemExit:
        pytest.fail(f"models changed without a migration:\n{out.getvalue()}")
    assert out.getvalue().strip() == "No changes detected"


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


DEFAULTS = ("socialitsm", "0011_default_sla")
SHIPPED_POLICIES = [
    # name, priority, position, first response, next response, resolution (minutes), calendar, pause states
    ("P1 Critical", 1, 10, 15, 15, 240, None, ["on_hold"]),
    ("P2 High", 2, 20, 60, 60, 480, None, ["on_hold"]),
    ("P3 Moderate", 3, 30, 240, 240, 4320, None, ["on_hold"]),
    ("P4 Low", 4, 40, 480, 480, 7200, None, ["on_hold"]),
    ("P5 Planning", 5, 50, 1440, 1440, 14400, None, ["on_hold"]),
]
NOTICE = """
SocialITSM: default SLA policies are in place: ITIL-style targets around the clock (24x7),
  first response / resolution: P1 15 min / 4 h, P2 1 h / 8 h, P3 4 h / 3 days, P4 8 h / 5 days, P5 24 h / 10 days.
  On hold pauses the resolution clock.
  Incidents that no service owner group or watch rule routes go to the "Service Desk" group.
  Leads edit them in the admin (/admin/socialitsm/slapolicy/; business hours
  are an SLA calendar) or through the API (/api/v1/sla/policies/).
"""


def _policies() -> list[tuple]:
    from socialitsm.models import SlaPolicy

    fields = ("name", "priority", "position", "first_response_minutes", "next_response_minutes")
    fields += ("resolution_minutes", "calendar", "pause_states")
    return list(SlaPolicy.objects.order_by("priority").values_list(*fields))


def _migrate(*args: str, verbosity: int = 1) -> str:
    from io import StringIO

    out = StringIO()
    call_command("migrate", *args, verbosity=verbosity, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_fresh_install_gets_default_sla_policies_and_group_and_is_told_once():
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from socialitsm.models import SlaPolicy

    executor = MigrationExecutor(connection)
    before = next(d for d in executor.loader.graph.nodes[DEFAULTS].dependencies if d[0] == "socialitsm")
    executor.migrate([("socialitsm", None)])

    output = _migrate("socialitsm")

    assert _policies() == SHIPPED_POLICIES
    assert Group.objects.filter(name="Service Desk").count() == 1
    assert output.endswith(NOTICE)
    assert "default SLA policies" not in _migrate()

    # Backwards takes out what is as shipped; a policy a lead edited stays.
    SlaPolicy.objects.filter(priority=2).update(first_response_minutes=30)
    _migrate(*before, verbosity=0)
    assert [row[:4] for row in _policies()] == [("P2 High", 2, 20, 30)]
    assert not Group.objects.filter(name="Service Desk").exists()

    # An install that has policies of its own keeps them: nothing is added and nothing is said.
    output = _migrate("socialitsm")
    assert [row[:4] for row in _policies()] == [("P2 High", 2, 20, 30)]
    assert (Group.objects.filter(name="Service Desk").exists(), "default SLA policies" in output) == (False, False)
    SlaPolicy.objects.all().delete()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_defaults_notice_keeps_quiet_at_verbosity_0():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from socialitsm.models import SlaPolicy

    executor = MigrationExecutor(connection)
    before = next(d for d in executor.loader.graph.nodes[DEFAULTS].dependencies if d[0] == "socialitsm")
    executor.migrate([before])

    assert _migrate("socialitsm", verbosity=0) == ""
    assert len(_policies()) == 5
    SlaPolicy.objects.all().delete()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_webhook_ids_become_unique_per_channel_and_back():
    from datetime import UTC, datetime

    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    target = ("socialitsm", "0010_ingest_quarantine")
    executor = MigrationExecutor(connection)
    before = sorted(parent.key for parent in executor.loader.graph.node_map[target].parents)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Channel, Author, Post, Incident = (
        old.get_model("socialitsm", m) for m in ("Channel", "Author", "Post", "Incident")
    )
    a = Channel.objects.create(name="A", slug="hook-a", network="webhook")
    b = Channel.objects.create(name="B", slug="hook-b", network="webhook")
    r = Channel.objects.create(name="R", slug="replay", network="replay")
    shared = Author.objects.create(network="webhook", external_id="u-1", handle="@maria", caller_email="m@example.com")
    other = Author.objects.create(network="replay", external_id="u-1")
    at = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    Post.objects.create(network="webhook", external_id="p-a", channel=a, author=shared, text="x", posted_at=at)
    Post.objects.create(network="webhook", external_id="p-b", channel=b, author=shared, text="x", posted_at=at)
    Post.objects.create(network="replay", external_id="p-r", channel=r, author=other, text="x", posted_at=at)
    Incident.objects.create(number="INC1", short_description="x", priority=4, author=shared, channel=b)

    executor = MigrationExecutor(connection)
    executor.migrate([target])
    new = executor.loader.project_state([target]).apps
    Author, Post, Incident = (new.get_model("socialitsm", m) for m in ("Author", "Post", "Incident"))
    rows = Post.objects.order_by("external_id").values_list("external_id", "scope", "author__scope", "author__pk")
    copy = Author.objects.get(network="webhook", scope=str(b.pk))
    assert list(rows) == [
        ("p-a", str(a.pk), str(a.pk), shared.pk),
        ("p-b", str(b.pk), str(b.pk), copy.pk),
        ("p-r", "", "", other.pk),
    ]
    assert (copy.external_id, copy.handle, copy.caller_email) == ("u-1", "@maria", "m@example.com")
    assert Incident.objects.get().author_id == copy.pk

    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Author, Post, Incident = (old.get_model("socialitsm", m) for m in ("Author", "Post", "Incident"))
    assert sorted(Author.objects.values_list("network", "external_id", "pk")) == [
        ("replay", "u-1", other.pk),
        ("webhook", "u-1", shared.pk),
    ]
    assert set(Post.objects.filter(network="webhook").values_list("author_id", flat=True)) == {shared.pk}
    assert Incident.objects.get().author_id == shared.pk
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_catalogue_languages_add_names_without_overwriting_edits_and_back():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("socialitsm", "0023_incident_workspace")], [("socialitsm", "0024_catalogue_languages")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("socialitsm", "Service")
    old.objects.filter(slug="email").update(name="Mail and calendars", aliases=["Outlook"])
    old.objects.filter(slug="printer").update(aliases=["Kyocera", "IMPRIMANTE"])
    old.objects.create(slug="courier", name="Courier desk", aliases=["post room"])

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    new = executor.loader.project_state(after).apps.get_model("socialitsm", "Service")
    aliases = dict(new.objects.values_list("slug", "aliases"))
    assert aliases["email"] == ["Outlook"]  # renamed by an admin: left alone
    assert aliases["courier"] == ["post room"]
    assert aliases["printer"][:2] == ["Kyocera", "IMPRIMANTE"]
    assert "imprimante" not in aliases["printer"]  # already there in other case
    assert {"Drucker", "impresora", "imprimer"} <= set(aliases["printer"])
    assert {"mot de passe", "Passwort", "contraseña", "password"} <= set(aliases["sso"])
    assert aliases["sso"][:3] == ["SSO", "login", "log in"]
    assert len(aliases["wifi"]) == len(set(aliases["wifi"]))

    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("socialitsm", "Service")
    aliases = dict(old.objects.values_list("slug", "aliases"))
    assert aliases["printer"] == ["Kyocera", "IMPRIMANTE"]
    assert aliases["email"] == ["Outlook"]
    assert "mot de passe" not in aliases["sso"]
    old.objects.filter(slug="courier").delete()
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_catalogue_products_add_names_without_overwriting_edits_and_back():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("socialitsm", "0027_search_reads")], [("socialitsm", "0028_catalogue_products")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("socialitsm", "Service")
    old.objects.filter(slug="erp").update(name="Finance and HR")
    old.objects.filter(slug="sso").update(aliases=["Okta", "AUTHENTICATOR"])

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    new = executor.loader.project_state(after).apps.get_model("socialitsm", "Service")
    aliases = dict(new.objects.values_list("slug", "aliases"))
    assert "Concur" not in aliases["erp"]  # renamed by an admin: left alone
    assert aliases["sso"][:2] == ["Okta", "AUTHENTICATOR"]
    assert "Authenticator" not in aliases["sso"]  # already there in other case
    assert {"Duo push", "Entra ID", "YubiKey"} <= set(aliases["sso"])
    assert {"ServiceNow", "GLPI"} <= set(aliases["helpdesk"])

    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("socialitsm", "Service")
    aliases = dict(old.objects.values_list("slug", "aliases"))
    assert aliases["sso"] == ["Okta", "AUTHENTICATOR"]
    assert "ServiceNow" not in aliases["helpdesk"]
    old.objects.filter(slug="erp").update(name="ERP")
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())


def _post_indexes(connection) -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "socialitsm_post")
    return {name: c["columns"] for name, c in constraints.items() if c["index"] and not c["unique"]}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_post_foreign_keys_lose_the_indexes_no_read_needs_and_back():
    """0029 drops the indexes of five foreign keys of posts, keeps the constraints, and puts the
    indexes back when reversed."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("socialitsm", "0028_catalogue_products")], [("socialitsm", "0029_post_lean_indexes")]
    single = {"author_id", "detected_service_id", "incident_id", "labelled_by_id", "rule_id"}
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    assert single <= {columns[0] for columns in _post_indexes(connection).values() if len(columns) == 1}

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    indexes = _post_indexes(connection)
    # author and incident still lead composite indexes; no index is theirs alone.
    assert not single & {
        columns[0] for name, columns in indexes.items() if len(columns) == 1 and name != "post_labelled_by_idx"
    }
    assert indexes["post_labelled_by_idx"] == ["labelled_by_id"]
    with connection.cursor() as cursor:
        keys = connection.introspection.get_constraints(cursor, "socialitsm_post")
    assert single <= {c["columns"][0] for c in keys.values() if c["foreign_key"]}

    executor = MigrationExecutor(connection)
    executor.migrate(before)
    assert single <= {columns[0] for columns in _post_indexes(connection).values() if len(columns) == 1}
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())


def _text_indexes(connection) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'socialitsm_post' AND indexdef LIKE %s",
            ["%to_tsvector%"],
        )
        return dict(cursor.fetchall())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_post_text_index_is_split_by_link_and_back():
    """0030 keeps the text index of posts linked to no incident beside that of linked ones (each
    post in one of them), and puts the index of every post back when reversed."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    if connection.vendor != "postgresql":
        pytest.skip("the text indexes are PostgreSQL's")
    before, after = [("socialitsm", "0029_post_lean_indexes")], [("socialitsm", "0030_post_search_split")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    assert set(_text_indexes(connection)) == {"post_search_idx", "post_linked_search_idx"}

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    indexes = _text_indexes(connection)
    assert set(indexes) == {"post_unlinked_search_idx", "post_linked_search_idx"}
    assert indexes["post_unlinked_search_idx"].endswith("WHERE (incident_id IS NULL)")
    assert indexes["post_linked_search_idx"].endswith("WHERE (incident_id IS NOT NULL)")

    executor = MigrationExecutor(connection)
    executor.migrate(before)
    assert set(_text_indexes(connection)) == {"post_search_idx", "post_linked_search_idx"}
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())


def _incident_options(connection) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'socialitsm_incident'")
        return cursor.fetchone()[0] or []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_incident_pages_keep_room_for_updates_and_back():
    """0031 leaves 30 % of each new page of incidents free, so updates of unindexed columns (the
    post count) stay on their page; reversed, the table's default is back."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    if connection.vendor != "postgresql":
        pytest.skip("fillfactor is PostgreSQL's")
    before, after = [("socialitsm", "0030_post_search_split")], [("socialitsm", "0031_incident_fillfactor")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    assert _incident_options(connection) == []
    executor = MigrationExecutor(connection)
    executor.migrate(after)
    assert _incident_options(connection) == ["fillfactor=70"]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    assert _incident_options(connection) == []
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())
