"""API permissions: every endpoint needs an authenticated agent (or lead); SLA reports and
policies need a lead; configuration needs the model's Django permissions."""

from __future__ import annotations

from rest_framework.permissions import BasePermission, DjangoModelPermissions

from socialitsm.roles import is_agent, is_lead


class IsAgent(BasePermission):
    message = "You need the agent role for this."

    def has_permission(self, request, view) -> bool:
        return is_agent(request.user)


class IsLead(BasePermission):
    message = "You need the team lead role for this."

    def has_permission(self, request, view) -> bool:
        return is_lead(request.user)


class CanManage(DjangoModelPermissions):
    """Configuration (ITSM connections): the model's Django permissions, reading included.

    Superusers have them all; an integrator gets e.g. "Can change ITSM connection" in the admin."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }
