"""Roles: agents work incident queues, leads also review SLAs. Both are auth groups; a lead is an
agent too (every agent page is open to leads), superusers are both."""

from __future__ import annotations

AGENT_GROUP = "socialitsm-agents"
LEAD_GROUP = "socialitsm-leads"


def is_agent(user) -> bool:
    if not user or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=(AGENT_GROUP, LEAD_GROUP)).exists()


def is_lead(user) -> bool:
    if not user or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=LEAD_GROUP).exists()
