"""The pages' time filters print what Django's `date` prints for the same formats, in every
zone, on both sides of a clock change, and in the hour it repeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.utils import timezone

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham"]
MOMENTS = [
    datetime(2026, 11, 26, 8, 5, 7, 123456, tzinfo=UTC),
    datetime(2026, 3, 29, 0, 59, tzinfo=UTC),  # Berlin's clocks go forward at 01:00 UTC
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 in Berlin, the first time round
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # 02:30 in Berlin again
    datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # 01:30 in New York, the first time round
    datetime(2026, 11, 1, 6, 30, tzinfo=UTC),  # 01:30 in New York again
    datetime(1, 1, 1, tzinfo=UTC) + timedelta(days=1),
]


def _render(text: str, value: object, zone: str) -> str:
    with timezone.override(ZoneInfo(zone)):
        return Template("{% load socialitsm_web %}" + text).render(Context({"v": value}))


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("moment", MOMENTS, ids=lambda m: m.isoformat())
def test_iso_and_stamp_print_what_date_prints(zone, moment):
    assert _render("{{ v|iso }}", moment, zone) == _render("{{ v|date:'c' }}", moment, zone)
    assert _render("{{ v|stamp }}", moment, zone) == _render("{{ v|date:'Y-m-d H:i T' }}", moment, zone)


@pytest.mark.parametrize("value", [None, "", datetime(2026, 11, 26, 8, 5)])
def test_what_is_no_aware_datetime_goes_to_date(value):
    assert _render("{{ v|iso }}|{{ v|stamp }}", value, "Europe/Berlin") == _render(
        "{{ v|date:'c' }}|{{ v|date:'Y-m-d H:i T' }}", value, "Europe/Berlin"
    )


def test_the_priority_badge_names_the_priority():
    from types import SimpleNamespace

    incident = SimpleNamespace(priority=2, get_priority_display=lambda: "P2 <High>")
    html = Template("{% load socialitsm_web %}{% priority_badge i %}").render(Context({"i": incident}))
    assert html == '<span class="badge prio prio-2" title="P2 &lt;High&gt;">P2</span>'
