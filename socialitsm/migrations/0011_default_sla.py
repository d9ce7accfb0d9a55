"""Ship SLA policies per priority (ITIL-style targets, around the clock) and a "Service Desk" group
for incidents no service owner or watch rule routes, so a fresh install's incidents get due times
and a group. Leads edit both in the admin or the API. An install that already has SLA policies
keeps them and gets nothing."""

from django.conf import settings
from django.db import migrations

DEFAULT_GROUP = "Service Desk"
PAUSE_STATES = ["on_hold"]
# name, priority, first (and next) response minutes, resolution minutes; no calendar: 24x7.
POLICIES = [
    ("P1 Critical", 1, 15, 4 * 60),
    ("P2 High", 2, 60, 8 * 60),
    ("P3 Moderate", 3, 4 * 60, 3 * 24 * 60),
    ("P4 Low", 4, 8 * 60, 5 * 24 * 60),
    ("P5 Planning", 5, 24 * 60, 10 * 24 * 60),
]


def shipped(name, priority, response, resolution):
    """The row as shipped, field by field."""
    return {
        "name": name,
        "priority": priority,
        "position": priority * 10,
        "active": True,
        "service_id": None,
        "network": "",
        "assignment_group_id": None,
        "first_response_minutes": response,
        "next_response_minutes": response,
        "resolution_minutes": resolution,
        "calendar_id": None,
        "pause_states": PAUSE_STATES,
    }


def untouched(policies) -> bool:
    """Whether `policies` (dicts of the fields above) are exactly the shipped ones."""
    expected = sorted((shipped(*row) for row in POLICIES), key=lambda p: p["priority"])
    return sorted(policies, key=lambda p: p["priority"]) == expected


def in_force(SlaPolicy) -> bool:
    """Whether `SlaPolicy`'s rows are still exactly the shipped ones."""
    return untouched(list(SlaPolicy.objects.values(*shipped(*POLICIES[0]))))


def seed(apps, schema_editor):
    SlaPolicy = apps.get_model("socialitsm", "SlaPolicy")
    Group = apps.get_model("auth", "Group")
    if SlaPolicy.objects.exists():
        return
    SlaPolicy.objects.bulk_create([SlaPolicy(**shipped(*row)) for row in POLICIES])
    Group.objects.get_or_create(name=DEFAULT_GROUP)


def unseed(apps, schema_editor):
    """Remove what is still as shipped: edited policies and a group in use stay."""
    SlaPolicy = apps.get_model("socialitsm", "SlaPolicy")
    fields = list(shipped(*POLICIES[0]))
    for row in POLICIES:
        expected = shipped(*row)
        for policy in SlaPolicy.objects.filter(name=expected["name"]).values("pk", *fields):
            if {name: policy[name] for name in fields} == expected:
                SlaPolicy.objects.filter(pk=policy["pk"]).delete()
    group = apps.get_model("auth", "Group").objects.filter(name=DEFAULT_GROUP).first()
    if group is None:
        return
    # Through the user model's own relation: a custom AUTH_USER_MODEL names it differently.
    in_use = (
        apps.get_model(settings.AUTH_USER_MODEL).objects.filter(groups=group).exists()
        or apps.get_model("socialitsm", "Service").objects.filter(owner_group=group).exists()
        or apps.get_model("socialitsm", "WatchRule").objects.filter(assignment_group=group).exists()
        or apps.get_model("socialitsm", "Incident").objects.filter(assignment_group=group).exists()
        or SlaPolicy.objects.filter(assignment_group=group).exists()
        or apps.get_model("socialitsm", "ItsmConnection").objects.filter(rule_groups=group).exists()
    )
    if not in_use:
        group.delete()


class Migration(migrations.Migration):
    dependencies = [("socialitsm", "0010_ingest_quarantine"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(seed, unseed)]
