"""Bad input to the admin's incident form: refused beside the field, nothing stored, nothing audited."""

from __future__ import annotations

import pytest
from django.urls import reverse

from socialitsm.models import Incident, IncidentEvent

from ..factories import IncidentFactory, UserFactory
from ..test_admin import _incident_form

pytestmark = pytest.mark.django_db

INVALID_CHOICE = "Select a valid choice. That choice is not one of the available choices."


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ({"state": "bogus"}, "Select a valid choice. bogus is not one of the available choices."),
        ({"state": "closed"}, "an incident cannot move from New to Closed"),
        ({"impact": "7"}, "Select a valid choice. 7 is not one of the available choices."),
        ({"urgency": "0"}, "Select a valid choice. 0 is not one of the available choices."),
        ({"urgency": ""}, "This field is required."),
        ({"short_description": ""}, "This field is required."),
        ({"short_description": "x" * 161}, "Ensure this value has at most 160 characters (it has 161)."),
        ({"assignee": "999999"}, INVALID_CHOICE),
        ({"assignment_group": "not-a-number"}, INVALID_CHOICE),
        ({"service": "999999"}, INVALID_CHOICE),
        ({"category": "c" * 65}, "Ensure this value has at most 64 characters (it has 65)."),
    ],
)
def test_bad_incident_changes_are_refused_and_nothing_is_stored(client, typed, error):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    incident = IncidentFactory(urgency=2)
    before = Incident.objects.filter(pk=incident.pk).values().get()
    # A valid change alongside: it must not be saved either.
    form = _incident_form(incident, impact="2", **typed) if "impact" not in typed else _incident_form(incident, **typed)

    response = client.post(reverse("admin:socialitsm_incident_change", args=[incident.pk]), form)

    assert response.status_code == 200
    assert error in response.content.decode()
    assert Incident.objects.filter(pk=incident.pk).values().get() == before
    assert IncidentEvent.objects.count() == 0
