"""API permissions: every endpoint needs an authenticated agent (or lead); SLA reports and
policies need a lead."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from socialitsm.roles import is_agent, is_lead


class IsAgent(BasePermission):
    message = "You need the agent role for this."

    def has_permission(self, request, view) -> bool:
        return is_agent(request.user)


class IsLead(BasePermission):
    message = "You need the team lead role for this."

    def has_permission(self, request, view) -> bool:
        return is_lead(request.user)
