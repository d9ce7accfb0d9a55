"""Roles: agents work incident queues, leads also review SLAs. Both are auth groups; a lead is an
agent too (every agent page is open to leads), superusers are both."""

from __future__ import annotations

AGENT_GROUP = "socialitsm-agents"
LEAD_GROUP = "socialitsm-leads"

# The user's role groups, read once for the user object: a page asks both questions (may this
# agent see it, and does the menu show the leads' pages), and a request has its own user object.
_GROUPS_READ = "_socialitsm_role_groups"


def _role_groups(user) -> frozenset[str]:
    groups = getattr(user, _GROUPS_READ, None)
    if groups is None:
        groups = frozenset(user.groups.filter(name__in=(AGENT_GROUP, LEAD_GROUP)).values_list("name", flat=True))
        setattr(user, _GROUPS_READ, groups)
    return groups


def is_agent(user) -> bool:
    if not user or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return bool(_role_groups(user))


def is_lead(user) -> bool:
    if not user or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return LEAD_GROUP in _role_groups(user)
