from __future__ import annotations

from datetime import date

import pytest
from django.contrib.auth.models import Group

from socialitsm.exceptions import ApplicationError
from socialitsm.selectors import report_filter, sla_report

from . import sla_data

pytestmark = pytest.mark.django_db

ZERO = {"met": 0, "breached": 0, "open": 0, "canceled": 0, "met_percent": None}


def targets(**rows: dict) -> list[dict]:
    """All 15 target x priority rows: zero unless given as e.g. first_response_1={...}."""
    out = []
    for target in ("first_response", "next_response", "resolution"):
        for priority in range(1, 6):
            out.append({"target": target, "priority": priority, **ZERO, **rows.get(f"{target}_{priority}", {})})
    return out


EXPECTED = {
    "period": {
        "from": "2026-11-19",
        "to": "2026-11-20",
        "group": None,
        "network": None,
        "calendar": None,
        "timezone": "UTC",
    },
    "incidents": {"in": 4, "out": 1},
    "targets": targets(
        first_response_1={"met": 1, "breached": 1, "met_percent": 50.0},
        first_response_4={"breached": 1, "open": 1, "met_percent": 0.0},
        resolution_1={"met": 1, "open": 1, "met_percent": 100.0},
        resolution_4={"breached": 1, "open": 1, "met_percent": 0.0},
    ),
    "first_response": {"count": 2, "median_minutes": 20.0, "p90_minutes": 30.0},
    "ingest_lag": {"count": 4, "median_minutes": 0.5, "p90_minutes": 2.0},
    "breaches_by_agent": [{"agent": "bob", "breached": 2}, {"agent": "anna", "breached": 1}],
    "breaches_by_group": [{"group": "Network Team", "breached": 2}, {"group": "Service Desk", "breached": 1}],
    "by_service": [
        {
            "service": "(no service)",
            "incidents": 4,
            "met": 2,
            "breached": 3,
            "met_percent": 40.0,
            "median_first_response_minutes": 20.0,
        }
    ],
    "by_agent": [
        {
            "agent": "anna",
            "incidents": 2,
            "met": 2,
            "breached": 1,
            "met_percent": 66.7,
            "median_first_response_minutes": 20.0,
        },
        {
            "agent": "(unassigned)",
            "incidents": 1,
            "met": 0,
            "breached": 0,
            "met_percent": None,
            "median_first_response_minutes": None,
        },
        {
            "agent": "bob",
            "incidents": 1,
            "met": 0,
            "breached": 2,
            "met_percent": 0.0,
            "median_first_response_minutes": None,
        },
    ],
    "at_risk": [
        {
            "number": "INC0001004",
            "short_description": "VPN down again, third time this week",
            "priority": 4,
            "target": "first_response",
            "due_at": "2026-11-20T11:59:00+00:00",
            "minutes_left": 4,
            "assignee": None,
            "group": "Network Team",
        }
    ],
    "sentiment": [
        {
            "date": "2026-11-19",
            "network": "replay",
            "negative": 0,
            "positive": 0,
            "ratio": None,
            "only_negative": False,
        },
        {
            "date": "2026-11-20",
            "network": "mastodon",
            "negative": 0,
            "positive": 1,
            "ratio": 0.0,
            "only_negative": False,
        },
        {"date": "2026-11-20", "network": "replay", "negative": 2, "positive": 1, "ratio": 2.0, "only_negative": False},
    ],
    "major_incidents": [],
}


def scope(**kwargs):
    return report_filter(
        start=kwargs.pop("start", date(2026, 11, 19)),
        end=kwargs.pop("end", date(2026, 11, 20)),
        group=kwargs.pop("group", None),
        network=kwargs.pop("network", ""),
        today=date(2026, 11, 20),
    )


def test_sla_report_figures():
    sla_data.build()

    assert sla_report(scope=scope(), now=sla_data.NOW) == EXPECTED


def test_sla_report_for_one_group_and_one_day():
    sla_data.build()
    network = Group.objects.get(name="Network Team")

    report = sla_report(scope=scope(start=date(2026, 11, 20), group=network), now=sla_data.NOW)

    assert report["incidents"] == {"in": 1, "out": 0}
    assert [r for r in report["targets"] if r["open"] or r["met"] or r["breached"]] == [
        {
            "target": "first_response",
            "priority": 4,
            "met": 0,
            "breached": 0,
            "open": 1,
            "canceled": 0,
            "met_percent": None,
        },
        {"target": "resolution", "priority": 4, "met": 0, "breached": 0, "open": 1, "canceled": 0, "met_percent": None},
    ]
    assert report["breaches_by_agent"] == report["breaches_by_group"] == []
    assert [r["number"] for r in report["at_risk"]] == ["INC0001004"]


def test_sla_report_for_another_network_counts_only_its_posts():
    sla_data.build()

    report = sla_report(scope=scope(network="mastodon"), now=sla_data.NOW)

    assert (report["incidents"], report["first_response"]["count"], report["at_risk"]) == ({"in": 0, "out": 0}, 0, [])
    assert report["sentiment"] == [
        {
            "date": "2026-11-20",
            "network": "mastodon",
            "negative": 0,
            "positive": 1,
            "ratio": 0.0,
            "only_negative": False,
        }
    ]


@pytest.mark.usefixtures("any_clock")
def test_report_filter_defaults_to_the_last_seven_days():
    got = report_filter(start=None, end=None, group=None, network="", today=date(2026, 11, 26))
    assert (got.start, got.end, got.since.isoformat(), got.until.isoformat()) == (
        date(2026, 11, 20),
        date(2026, 11, 26),
        "2026-11-20T00:00:00+00:00",
        "2026-11-27T00:00:00+00:00",
    )


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"start": date(2026, 11, 21), "end": date(2026, 11, 20)}, "from", "the period starts after it ends"),
        ({"start": date(2025, 1, 1), "end": date(2026, 11, 20)}, "from", "the period is longer than 366 days"),
        ({"network": "myspace"}, "network", "unknown network 'myspace'"),
    ],
)
@pytest.mark.usefixtures("any_clock")
def test_report_filter_refuses_bad_scopes(kwargs, field, message):
    with pytest.raises(ApplicationError) as err:
        report_filter(
            **{"start": None, "end": None, "group": None, "network": "", "today": date(2026, 11, 26), **kwargs}
        )
    assert (err.value.field, err.value.message) == (field, message)


# -- incidents, posts and replies as both the API and the web UI read them -------------------------


@pytest.fixture
def queue_rows(agent):
    from datetime import UTC, datetime

    from socialitsm.models import Incident, Service

    from .factories import IncidentFactory, UserFactory

    other = UserFactory()
    group = Group.objects.create(name="Queue Team")
    mail = Service.objects.create(slug="queue-mail", name="Queue mail")
    when = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    # Priority follows impact and urgency: impact 1 with urgency n is priority n.
    return {
        "mine": IncidentFactory(assignee=agent, impact=1, urgency=1, opened_at=when, short_description="VPN down"),
        "theirs": IncidentFactory(
            assignee=other,
            impact=1,
            urgency=2,
            opened_at=when.replace(hour=9),
            assignment_group=group,
            short_description="Printer jam",
        ),
        "free": IncidentFactory(
            impact=1, urgency=1, service=mail, opened_at=when.replace(hour=10), short_description="Mail slow"
        ),
        "held": IncidentFactory(
            state=Incident.State.ON_HOLD,
            assignee=agent,
            impact=1,
            urgency=3,
            opened_at=when.replace(hour=11),
            short_description="Badge reader",
        ),
        "done": IncidentFactory(
            state=Incident.State.RESOLVED,
            impact=1,
            urgency=1,
            opened_at=when.replace(hour=12),
            short_description="Laptop fan",
        ),
        "other": other,
        "group": group,
        "when": when,
    }


def _numbers(query, rows, user=None) -> set[str]:
    from socialitsm.models import Incident
    from socialitsm.selectors import incident_queue

    names = {row.pk: name for name, row in rows.items() if hasattr(row, "number")}
    return {names[pk] for pk in incident_queue(Incident.objects.all(), query, user=user).values_list("pk", flat=True)}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, {"mine", "theirs", "free", "held", "done"}),
        ({"open": True}, {"mine", "theirs", "free", "held"}),
        ({"open": False}, {"done"}),
        ({"states": ["on_hold", "resolved"]}, {"held", "done"}),
        ({"priorities": [1]}, {"mine", "free", "done"}),
        ({"priorities": [2, 3]}, {"theirs", "held"}),
        ({"service": "queue-mail"}, {"free"}),
        ({"mine": True}, {"mine", "held"}),
        ({"mine": True, "open": True, "priorities": [3]}, {"held"}),
        ({"unassigned": True}, {"free", "done"}),
        ({"mine": True, "unassigned": True}, set()),
        ({"words": "vpn"}, {"mine"}),
        ({"words": "MAIL slow"}, {"free"}),
        ({"words": "mail vpn"}, set()),
    ],
)
def test_incident_queue_narrows_by_each_filter(queue_rows, agent, fields, expected):
    from socialitsm.selectors import IncidentQuery

    assert _numbers(IncidentQuery(**fields), queue_rows, user=agent) == expected


def test_incident_queue_by_assignee_group_and_opening_time(queue_rows):
    from datetime import timedelta

    from socialitsm.selectors import IncidentQuery

    when = queue_rows["when"]
    assert _numbers(IncidentQuery(assignee_id=queue_rows["other"].pk), queue_rows) == {"theirs"}
    assert _numbers(IncidentQuery(group=queue_rows["group"]), queue_rows) == {"theirs"}
    window = IncidentQuery(opened_after=when + timedelta(hours=1), opened_before=when + timedelta(hours=3))
    assert _numbers(window, queue_rows) == {"theirs", "free"}


def test_incident_queue_mine_without_a_user_is_the_unassigned(queue_rows):
    from socialitsm.selectors import IncidentQuery

    assert _numbers(IncidentQuery(mine=True), queue_rows) == {"free", "done"}


def test_incident_queue_number_search(queue_rows):
    from socialitsm.selectors import IncidentQuery

    number = queue_rows["theirs"].number
    assert _numbers(IncidentQuery(words=number.lower()), queue_rows) == {"theirs"}


def test_web_queue_and_api_list_narrow_alike(queue_rows, agent, client):
    from rest_framework.test import APIClient

    agent_api = APIClient()
    agent_api.force_authenticate(agent)
    client.force_login(agent)
    api = agent_api.get("/api/v1/incidents/", {"assignee": "me", "open": "true", "priority": 3})
    page = client.get("/", {"mine": "on", "priority": 3})
    held = queue_rows["held"].number
    assert [row["number"] for row in api.json()["results"]] == [held]
    assert [i.number for i in page.context["page"]] == [held]


def test_reply_default_post_is_the_callers_latest_word():
    from types import SimpleNamespace

    from socialitsm.selectors import reply_default_post

    caller = SimpleNamespace(author_id=7)
    first, by_caller, later = (SimpleNamespace(author_id=a, label="", is_complaint=None) for a in (7, 7, 8))
    assert reply_default_post(caller, [first, by_caller, later]) is by_caller
    assert reply_default_post(SimpleNamespace(author_id=9), [first, by_caller, later]) is later
    assert reply_default_post(SimpleNamespace(author_id=None), [first, later]) is later
    assert reply_default_post(caller, []) is None


def test_reply_default_post_is_the_callers_latest_complaint_not_a_later_thank_you():
    from types import SimpleNamespace

    from socialitsm.selectors import reply_default_post

    caller = SimpleNamespace(author_id=7)

    def post(author_id, is_complaint, label=""):
        return SimpleNamespace(author_id=author_id, is_complaint=is_complaint, label=label)

    complaint, still_down, thanks, other = post(7, True), post(7, True), post(7, False), post(8, True)
    assert reply_default_post(caller, [complaint, still_down, thanks, other]) is still_down
    # An agent's label outranks the classifier: "fixed now, thanks!" scored as a complaint.
    labelled_thanks = post(7, True, label="not_complaint")
    assert reply_default_post(caller, [complaint, labelled_thanks]) is complaint
    relabelled = post(7, False, label="complaint")
    assert reply_default_post(caller, [complaint, relabelled, thanks]) is relabelled
    # Nothing of the caller's is a complaint: the latest not classified as no complaint, else the latest.
    unclassified = post(7, None)
    assert reply_default_post(caller, [unclassified, post(7, False)]) is unclassified
    only_thanks = post(7, False)
    assert reply_default_post(caller, [post(7, False), only_thanks]) is only_thanks


def test_incident_reads_are_oldest_first_and_keep_to_the_incident():
    from datetime import timedelta

    from socialitsm import selectors
    from socialitsm.models import IncidentEvent

    from .factories import IncidentFactory, PostFactory, ReplyFactory

    incident, elsewhere = IncidentFactory(), IncidentFactory()
    late = PostFactory(incident=incident)
    early = PostFactory(incident=incident, posted_at=late.posted_at - timedelta(hours=1))
    PostFactory(incident=elsewhere)
    first, second = ReplyFactory(post=early), ReplyFactory(post=late)
    ReplyFactory(post=PostFactory(incident=elsewhere))
    IncidentEvent.objects.filter(incident=incident).delete()
    events = [
        IncidentEvent.objects.create(incident=incident, kind=kind)
        for kind in (IncidentEvent.Kind.OPENED, IncidentEvent.Kind.CHANGED)
    ]

    assert list(selectors.incident_posts(incident)) == [early, late]
    assert list(selectors.incident_replies(incident)) == [first, second]
    assert list(selectors.incident_events(incident)) == events
    listed = selectors.incident_list().get(pk=incident.pk)
    assert (listed.post_count, listed.breach_due_at) == (2, None)
    assert selectors.incident_page().get(number=incident.number) == incident
    assert set(selectors.reply_list().filter(incident=incident)) == {first, second}


@pytest.mark.django_db
def test_incident_page_shows_the_first_and_the_latest_posts_of_a_busy_incident():
    from datetime import UTC, datetime, timedelta

    from socialitsm import selectors

    from .factories import IncidentFactory, PostFactory

    incident = IncidentFactory()
    start = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    posts = [PostFactory(incident=incident, posted_at=start + timedelta(minutes=i)) for i in range(6)]
    incident.refresh_from_db()

    shown, hidden = selectors.incident_posts_shown(incident, latest=2)
    everything, none_hidden = selectors.incident_posts_shown(incident, latest=None)

    assert ([p.pk for p in shown], hidden) == ([posts[0].pk, posts[4].pk, posts[5].pk], 3)
    assert ([p.pk for p in everything], none_hidden) == ([p.pk for p in posts], 0)


@pytest.mark.django_db
def test_the_incident_page_shows_the_first_event_and_the_latest():
    from datetime import UTC, datetime, timedelta

    from socialitsm import selectors
    from socialitsm.models import IncidentEvent

    from .factories import IncidentFactory

    incident = IncidentFactory()
    start = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    events = [
        IncidentEvent.objects.create(incident=incident, kind=IncidentEvent.Kind.POST_LINKED, new_value=f"x:{i}")
        for i in range(6)
    ]
    for i, event in enumerate(events):  # created_at is set on save; the history orders by it
        IncidentEvent.objects.filter(pk=event.pk).update(created_at=start + timedelta(minutes=i))

    shown, hidden = selectors.incident_events_shown(incident, latest=2)
    everything, none_hidden = selectors.incident_events_shown(incident, latest=None)
    just_enough, nothing_left = selectors.incident_events_shown(incident, latest=5)

    assert ([e.pk for e in shown], hidden) == ([events[0].pk, events[4].pk, events[5].pk], 3)
    assert ([e.pk for e in everything], none_hidden) == ([e.pk for e in events], 0)
    # The first and the five latest are all six: nothing is left out, nothing shown twice.
    assert ([e.pk for e in just_enough], nothing_left) == ([e.pk for e in events], 0)
