from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from socialitsm.models import SlaPolicy
from socialitsm.services.incidents import incident_open_from_post

from .factories import PostFactory

pytestmark = pytest.mark.django_db


@pytest.mark.usefixtures("any_clock")
def test_sla_sweep_command_re_evaluates_then_announces():
    policy = SlaPolicy.objects.create(name="P1", priority=1, first_response_minutes=60, resolution_minutes=240)
    post = PostFactory(posted_at=timezone.now() - timedelta(minutes=20), ingested_at=timezone.now())
    post.rule.default_impact = 1
    with transaction.atomic():
        incident = incident_open_from_post(post=post, rule=post.rule, service=None, urgency=1)
    # Edited behind the services' back: only a replay notices.
    SlaPolicy.objects.filter(pk=policy.pk).update(first_response_minutes=15)

    plain, replayed = StringIO(), StringIO()
    call_command("socialitsm_sla_sweep", stdout=plain)
    call_command("socialitsm_sla_sweep", "--recompute", stdout=replayed)

    assert plain.getvalue() == "0 warnings, 0 breaches announced\n"
    assert replayed.getvalue() == "re-evaluated 1 open incidents\n0 warnings, 1 breaches announced\n"
    assert list(incident.events.filter(kind="sla_breached").values_list("field", flat=True)) == ["first_response"]
