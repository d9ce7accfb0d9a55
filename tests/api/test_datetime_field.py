"""The API's DateTimeField prints what DRF's prints, in the time zone active when its serializer
printed its first value."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework import serializers

from socialitsm.api.serializers import DateTimeField


class NoOffset(tzinfo):
    """A zone that knows no offset: the datetime counts as naive."""

    def utcoffset(self, dt):
        return None


MOMENTS = [
    datetime(2026, 11, 26, 8, 5, 7, 123456, tzinfo=UTC),
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    datetime(2026, 10, 25, 1, 30, tzinfo=ZoneInfo("America/New_York")),
    datetime(2026, 3, 29, 1, 30),  # naive: made aware in the active zone
    datetime(2026, 3, 29, 1, 30, tzinfo=NoOffset()),
    "2026-11-26T08:05:07Z",  # a string is printed as it is
    None,
]
EDGES = [datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)]


class Ours(serializers.Serializer):
    at = DateTimeField(allow_null=True)


class Theirs(serializers.Serializer):
    at = serializers.DateTimeField(allow_null=True)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "Asia/Kolkata"])
def test_it_prints_what_drf_prints(zone):
    rows = [{"at": moment} for moment in MOMENTS]
    with timezone.override(ZoneInfo(zone)):
        assert Ours(rows, many=True).data == Theirs(rows, many=True).data


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
@pytest.mark.parametrize("moment", EDGES, ids=["min", "max"])
def test_at_the_ends_of_time_it_prints_or_fails_as_drf_does(zone, moment):
    def printed(serializer: type[serializers.Serializer]) -> object:
        try:
            return serializer({"at": moment}).data
        except serializers.ValidationError as exc:
            return exc.detail

    with timezone.override(ZoneInfo(zone)):
        assert printed(Ours) == printed(Theirs)


def test_each_serializer_takes_the_zone_active_when_it_prints():
    row = {"at": MOMENTS[0]}
    with timezone.override(ZoneInfo("Europe/Berlin")):
        berlin = Ours(row).data["at"]
    with timezone.override(ZoneInfo("Asia/Kolkata")):
        kolkata = Ours(row).data["at"]
    assert (berlin, kolkata) == ("2026-11-26T09:05:07.123456+01:00", "2026-11-26T13:35:07.123456+05:30")
