"""Column arrays (socialitsm.db): a value taken as it is must be what the field would have made of it."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import pytest
from django.utils.safestring import mark_safe

from socialitsm import db
from socialitsm.models import Incident, IncidentEvent, Post, SlaClock

from .factories import IncidentFactory, PostFactory

# Column arrays are written on PostgreSQL only.
pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _columns(model):
    return [f for f in model._meta.concrete_fields if not f.primary_key]


@pytest.mark.parametrize("adding", [True, False])
def test_values_taken_as_they_are_match_what_each_field_prepares(adding):
    incident = IncidentFactory()
    posts = [
        PostFactory(incident=incident, is_complaint=True, complaint_score=0.75, reasons=["outage"]),
        PostFactory(text=mark_safe("<b>safe string</b>"), url="https://social.example.com/@p/1"),
        PostFactory(posted_at=datetime(2026, 11, 26, 8, 0, tzinfo=UTC), edited_at=None, is_complaint=None),
    ]
    events = [IncidentEvent(incident=incident, kind=IncidentEvent.Kind.OPENED, message="opened")]
    clocks = [SlaClock(incident=incident, target="resolution", cycle=0, started_at=datetime(2026, 11, 26, tzinfo=UTC))]
    for model, objs in ((Post, posts), (Incident, [incident]), (IncidentEvent, events), (SlaClock, clocks)):
        columns = [c for c in _columns(model) if not getattr(c, "auto_now", False)]
        fast = db._arrays(columns, objs, adding=adding)
        with mock.patch.object(db, "_AS_IS", {}):
            slow = db._arrays(columns, objs, adding=adding)
        assert fast == slow, model
        assert [[type(v) for v in column] for column in fast] == [[type(v) for v in column] for column in slow]
