"""The major incident's broadcast card on the incident page: `{% major_broadcasts incident %}`."""

from __future__ import annotations

from typing import Any

from django import template

from socialitsm import selectors
from socialitsm.models import Incident

register = template.Library()


@register.inclusion_tag("socialitsm/_major_broadcasts.html")
def major_broadcasts(incident: Incident) -> dict[str, Any]:
    """How many posters the outage affects, the "fixed" draft waiting for confirmation, and the
    latest broadcasts with their replies counted; nothing for an incident that is not major."""
    if not incident.is_major:
        return {"incident": incident, "major": False}
    return {
        "incident": incident,
        "major": True,
        "posters": len(selectors.major_poster_posts(incident)),
        "fixed_draft": selectors.broadcast_fixed_draft(incident),
        "broadcasts": list(selectors.broadcast_list(incident)[:5]),
    }
