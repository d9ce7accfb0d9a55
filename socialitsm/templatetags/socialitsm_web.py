"""Template filters of the agents' web UI."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template

register = template.Library()


@register.filter
def http_url(value: str) -> str:
    """The URL if it is http(s), else "": URLs come from networks, and a javascript: or data:
    URL must never become a link."""
    value = (value or "").strip()
    return value if value.lower().startswith(("http://", "https://")) else ""


@register.filter
def person(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


@register.filter
def is_lead(user) -> bool:
    from socialitsm.roles import is_lead as lead

    return lead(user)


@register.filter
def minutes(value: int | None) -> str:
    """Seconds as a short duration: 95 min -> "1 h 35 min"."""
    if value is None:
        return "—"
    total = int(value) // 60
    hours, mins = divmod(total, 60)
    return f"{hours} h {mins} min" if hours else f"{mins} min"


@register.filter
def get_item(mapping: dict, key: str):
    return mapping.get(key, key)


@register.filter
def iso_utc(value: str | None) -> str:
    """An ISO 8601 instant from a report as "YYYY-MM-DD HH:MM UTC"."""
    if not value:
        return "—"
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
