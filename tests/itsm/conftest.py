from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Group

from socialitsm.models import ItsmConnection, ItsmLink

from ..factories import IncidentFactory

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
DESCRIPTION = "@maria on Replay at 2026-11-26 08:00 UTC:\n\nVPN down again, third time this week"


@pytest.fixture
def suite_settings(suite_settings):
    suite_settings.SOCIALITSM_SITE_URL = "https://social.example.com"
    return suite_settings


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def incident(db):
    return IncidentFactory(
        number="INC0001001",
        short_description="VPN down again",
        description=DESCRIPTION,
        impact=2,
        urgency=1,
        assignment_group=Group.objects.create(name="Network"),
    )


def make_link(connection: ItsmConnection, incident) -> ItsmLink:
    return ItsmLink.objects.create(
        connection=connection, incident=incident, external_ref=f"socialitsm:{incident.number}"
    )


def body(call) -> dict:
    return json.loads(call.request.body)


def synced_link(connection: ItsmConnection, incident, remote_id: str, **pushed) -> ItsmLink:
    """A link whose record is in the suite and up to date with `incident`'s fields; `pushed`
    adds what else was pushed (e.g. major=True, parent="<id>")."""
    from socialitsm.services.itsm_sync import ticket_fields

    link = make_link(connection, incident)
    link.remote_id, link.status, link.remote_state = remote_id, ItsmLink.Status.OK, incident.state
    link.pushed = {**ticket_fields(incident).synced(), **pushed}
    link.save()
    return link
