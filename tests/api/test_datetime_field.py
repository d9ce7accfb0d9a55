"""The API's DateTimeField prints what DRF's prints, in the time zone active when its serializer
printed its first value."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework import serializers

from socialitsm.api.serializers import DateTimeField

MOMENTS = [datetime(2026, 11, 26, 8, 5, 7, 123456, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC), None]


class Ours(serializers.Serializer):
    at = DateTimeField(allow_null=True)


class Theirs(serializers.Serializer):
    at = serializers.DateTimeField(allow_null=True)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "Asia/Kolkata"])
def test_it_prints_what_drf_prints(zone):
    rows = [{"at": moment} for moment in MOMENTS]
    with timezone.override(ZoneInfo(zone)):
        assert Ours(rows, many=True).data == Theirs(rows, many=True).data


def test_each_serializer_takes_the_zone_active_when_it_prints():
    row = {"at": MOMENTS[0]}
    with timezone.override(ZoneInfo("Europe/Berlin")):
        berlin = Ours(row).data["at"]
    with timezone.override(ZoneInfo("Asia/Kolkata")):
        kolkata = Ours(row).data["at"]
    assert (berlin, kolkata) == ("2026-11-26T09:05:07.123456+01:00", "2026-11-26T13:35:07.123456+05:30")
