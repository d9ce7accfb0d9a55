"""Planned representation (socialitsm.api.representation) gives exactly what DRF's gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone
from rest_framework import serializers

from socialitsm.api.representation import PlannedRepresentation, Serializer
from tests.factories import IncidentFactory, PostFactory, ReplyFactory, UserFactory

# The clock stands still for the API test: SLA clocks print the time they have run.
NOW = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)


def drf(serializer: serializers.Serializer, instance: object) -> object:
    """What DRF's own Serializer.to_representation gives for `instance`."""
    return serializers.Serializer.to_representation(serializer, instance)


class Inner(Serializer):
    name = serializers.CharField()
    size = serializers.IntegerField(required=False)


class Row:
    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)

    def shout(self) -> str:
        return str(self.__dict__.get("word", "")).upper()

    @property
    def missing_related(self) -> object:
        raise ObjectDoesNotExist("no such row")

    @property
    def broken(self) -> object:
        raise AttributeError("broken")


class Toy(Serializer):
    word = serializers.CharField(allow_null=True)
    count = serializers.IntegerField(required=False)  # absent: skipped
    shout = serializers.CharField()  # a method: called
    dotted = serializers.CharField(source="inner.name", allow_null=True, default=None)
    whole = Inner(source="*")
    inner = Inner(allow_null=True)
    items = Inner(many=True, required=False)
    missing_related = serializers.CharField(allow_null=True)
    broken = serializers.CharField(default="fallback")
    method = serializers.SerializerMethodField()
    when = serializers.DateTimeField(allow_null=True, required=False)

    def get_method(self, row: object) -> str:
        return type(row).__name__


ROWS = [
    Row(word="vpn", count=3, inner=Row(name="a", size=1), items=[Row(name="b"), Row(name="c", size=2)], name="w"),
    Row(word=None, inner=None, name="x", size=None, when=timezone.now()),
    Row(word="", count=0, inner=Row(name="", size=0), items=[], name="", size=5),
    {
        "word": "dict",
        "count": 1,
        "shout": "loud",
        "inner": {"name": "d"},
        "items": [],
        "name": "n",
        "missing_related": None,
        "broken": "b",
        "when": None,
    },
    Row(word="again", count=7, inner=Row(name="e"), items=[{"name": "f"}], name="y"),
]


@pytest.mark.parametrize("index", range(len(ROWS)))
def test_a_row_represents_as_drf_represents_it(index):
    serializer = Toy()
    # Each row after the ones before it: the plans are per kind of row and kept between rows.
    for row in ROWS[: index + 1]:
        assert serializer.to_representation(row) == drf(serializer, row)


def test_a_list_of_mixed_rows_represents_as_drf_represents_it():
    planned = Toy(ROWS, many=True).data
    plain = [drf(Toy(), row) for row in ROWS]
    assert planned == plain
    assert planned[0]["shout"] == "VPN" and "count" not in planned[1]
    assert planned[1]["missing_related"] is None and planned[0]["broken"] == "fallback"
    assert planned[0]["dotted"] == "a" and planned[1]["dotted"] is None


def test_an_error_drf_raises_is_raised():
    class Strict(Serializer):
        absent = serializers.CharField()

    with pytest.raises(AttributeError, match="absent"):
        Strict().to_representation(SimpleNamespace())


def test_a_related_field_reads_through_its_own_lookup(db):
    """A primary-key related field hands DRF a PKOnlyObject; a missing one prints None."""

    class Assigned(Serializer):
        assignee = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
        assignment_group = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)

    user = UserFactory()
    group = Group.objects.create(name="Desk")
    rows = [IncidentFactory(assignee=user, assignment_group=group), IncidentFactory()]
    serializer = Assigned()
    assert [serializer.to_representation(r) for r in rows] == [drf(serializer, r) for r in rows]
    assert serializer.to_representation(rows[0]) == {"assignee": user.pk, "assignment_group": "Desk"}


@pytest.fixture
def drf_only(monkeypatch):
    """Switch the planned path off: every serializer represents through DRF's own code."""

    def plain(self, instance):
        return serializers.Serializer.to_representation(self, instance)

    def use() -> None:
        monkeypatch.setattr(PlannedRepresentation, "to_representation", plain)

    return use


def test_the_api_prints_the_same_with_and_without_the_plans(agent_api, agent, sla_defaults, drf_only, clock):
    """Incidents (with clocks, ITSM links, a parent, an assignee), their posts (with an earlier
    version), replies, events and notifications: the planned path prints what DRF's prints."""
    from socialitsm.models import ItsmConnection, ItsmLink, Notification, PostRevision, Service
    from socialitsm.services.incidents import incident_open_from_post

    assignee = UserFactory()
    post = PostFactory(text="VPN down again")
    incident = incident_open_from_post(post=post, rule=post.rule, service=Service.objects.get(slug="vpn"), urgency=2)
    incident.assignee = assignee
    incident.assignment_group = Group.objects.create(name="Network desk")
    incident.parent = IncidentFactory(is_major=True, short_description="Major: VPN")
    incident.save()
    IncidentFactory(short_description="quiet one")
    PostRevision.objects.create(post=post, text="VPN down", edited_at=timezone.now() - timedelta(minutes=3))
    suite = ItsmConnection.objects.create(name="Suite", slug="suite", kind="fake", base_url="https://s.example")
    ItsmLink.objects.create(connection=suite, incident=incident, external_ref=f"socialitsm:{incident.number}")
    ReplyFactory(incident=incident, post=post, text="On it!", agent=assignee)
    Notification.objects.create(user=agent, kind="assigned", key=incident.number, title="Yours", incident=incident)

    urls = [
        "/api/v1/incidents/",
        f"/api/v1/incidents/{incident.number}/",
        f"/api/v1/incidents/{incident.number}/posts/",
        f"/api/v1/incidents/{incident.number}/events/",
        f"/api/v1/incidents/{incident.number}/replies/",
        "/api/v1/posts/",
        "/api/v1/replies/",
        "/api/v1/services/",
        "/api/v1/notifications/",
        "/api/v1/itsm-links/",
    ]
    planned = {}
    for url in urls:
        response = agent_api.get(url)
        assert response.status_code == 200, (url, response.content[:300])
        planned[url] = response.json()
    drf_only()
    for url in urls:
        assert agent_api.get(url).json() == planned[url], url
    listed = planned["/api/v1/incidents/"]["results"]
    assert {row["number"] for row in listed} >= {incident.number}
    mine = next(row for row in listed if row["number"] == incident.number)
    assert mine["parent"] == incident.parent.number and mine["assignee"]["id"] == assignee.pk
    assert [c["target"] for c in mine["sla"]["clocks"]] == ["first_response", "resolution"]
    assert mine["itsm_links"][0]["connection"] == "suite"
    assert planned[f"/api/v1/incidents/{incident.number}/posts/"]["results"][0]["revisions"][0]["text"] == "VPN down"
