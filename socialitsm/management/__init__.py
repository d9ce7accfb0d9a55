"""Install-time notices, run after `migrate` (as django.contrib.auth.management is)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.urls import NoReverseMatch, reverse

DEFAULTS_MIGRATION = "0011_default_sla"


def sla_defaults_notice(
    *, plan: list | None = None, verbosity: int = 1, stdout: Any = None, apps: Any = None, **kwargs: Any
) -> None:
    """Say once, on the `migrate` run that shipped them, which SLA policies and default group a
    fresh install now has, and where leads edit them."""
    if verbosity < 1 or stdout is None or apps is None:
        return
    applied = any(
        migration.app_label == "socialitsm" and migration.name == DEFAULTS_MIGRATION and not backwards
        for migration, backwards in plan or ()
    )
    if not applied:
        return
    defaults = import_module(f"socialitsm.migrations.{DEFAULTS_MIGRATION}")
    model = apps.get_model("socialitsm", "SlaPolicy")
    if not defaults.in_force(model):
        return
    policies = list(
        model.objects.order_by("priority").values("priority", "first_response_minutes", "resolution_minutes")
    )
    targets = ", ".join(
        f"P{p['priority']} {_duration(p['first_response_minutes'])} / {_duration(p['resolution_minutes'])}"
        for p in policies
    )
    group = defaults.DEFAULT_GROUP
    stdout.write(
        "\n".join(
            [
                "",
                "SocialITSM: default SLA policies are in place: ITIL-style targets around the clock (24x7),",
                f"  first response / resolution: {targets}.",
                "  On hold pauses the resolution clock.",
                f'  Incidents that no service owner group or watch rule routes go to the "{group}" group.',
                f"  Leads edit them in the admin ({_path('admin:socialitsm_slapolicy_changelist')}; business hours",
                f"  are an SLA calendar) or through the API ({_path('socialitsm-api:sla-policy-list')}).",
                "",
            ]
        )
    )


def _duration(minutes: int | None) -> str:
    if minutes is None:
        return "none"
    if minutes >= 2 * 24 * 60 and minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)} days"
    if minutes >= 60 and minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def _path(name: str) -> str:
    try:
        return reverse(name)
    except NoReverseMatch:
        return name
