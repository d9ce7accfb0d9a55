from __future__ import annotations

import dataclasses
import json
import re
import shlex
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db.models import Count, F
from django.test import override_settings
from django.utils import timezone

from socialitsm import sla
from socialitsm.connectors.webhook import SIGNATURE_HEADER, signature_valid
from socialitsm.demo.history import HISTORY_PREFIX, STORIES
from socialitsm.models import (
    Channel,
    Incident,
    IncidentEvent,
    Post,
    Reply,
    Service,
    SlaCalendar,
    SlaClock,
    SlaPolicy,
    WatchRule,
)
from socialitsm.roles import AGENT_GROUP, LEAD_GROUP
from socialitsm.selectors import report_filter, sla_report
from socialitsm.services.ingest import channel_poll

pytestmark = pytest.mark.django_db

User = get_user_model()


def run_demo(*args: str) -> str:
    out = StringIO()
    with override_settings(SOCIALITSM_DEMO=True):
        call_command("socialitsm_demo", *args, stdout=out)
    return out.getvalue()


def printed(output: str, label: str) -> str:
    return re.search(rf"^\s*{label}:\s+(\S+)$", output, re.MULTILINE).group(1)


def counts() -> dict[str, int]:
    return {
        "groups": Group.objects.count(),
        "users": User.objects.count(),
        "channels": Channel.objects.count(),
        "rules": WatchRule.objects.count(),
        "policies": SlaPolicy.objects.count(),
    }


@override_settings(SOCIALITSM_DEMO=False)
def test_demo_refuses_without_demo_setting():
    before = counts()

    with pytest.raises(CommandError, match="SOCIALITSM_DEMO=1"):
        call_command("socialitsm_demo", stdout=StringIO())

    assert counts() == before
    assert not User.objects.filter(username="demo.agent").exists()
    assert list(Service.objects.exclude(owner_group=None)) == []


def test_demo_creates_teams_policies_channels_and_agent():
    output = run_demo("--url", "http://itsm.example.com:8000")

    owners = dict(Service.objects.values_list("slug", "owner_group__name"))
    assert owners == {
        "network": "Network Team",
        "vpn": "Network Team",
        "wifi": "Network Team",
        "laptop": "Workplace IT",
        "printer": "Workplace IT",
        "phone": "Workplace IT",
        "video": "Workplace IT",
        "helpdesk": "Service Desk",
        "email": "Service Desk",
        "sso": "Service Desk",
        "portal": "Service Desk",
        "storage": "Service Desk",
        "erp": "Service Desk",
        "website": "Service Desk",
        "app": "Service Desk",
    }
    assert list(
        SlaPolicy.objects.values_list(
            "priority",
            "first_response_minutes",
            "next_response_minutes",
            "resolution_minutes",
            "calendar__name",
            "pause_states",
        )
    ) == [
        (1, 15, 15, 240, None, ["on_hold"]),
        (2, 60, 60, 480, None, ["on_hold"]),
        (3, 240, 240, 4320, "Service Desk hours", ["on_hold"]),
        (4, 480, 480, 7200, "Service Desk hours", ["on_hold"]),
        (5, 1440, 1440, 14400, "Service Desk hours", ["on_hold"]),
    ]
    hours = SlaCalendar.objects.get()
    assert (hours.timezone, hours.holiday_country, hours.hours["mon"], sorted(hours.hours)) == (
        "Europe/Berlin",
        "DE",
        [["08:00", "18:00"]],
        ["fri", "mon", "thu", "tue", "wed"],
    )

    stream = Channel.objects.get(slug="demo")
    assert (stream.name, stream.network, stream.handle, stream.listen_mode, stream.poll_interval) == (
        "Demo stream",
        "replay",
        "@ITSupport",
        "poll",
        5,
    )
    assert stream.config == {"path": "socialitsm/demo/posts.jsonl", "batch": 3}
    rule = stream.rules.get()
    assert (rule.name, rule.kind, rule.complaint_threshold, rule.action, rule.cursor) == (
        "IT complaints",
        "search",
        0.5,
        "open_incident",
        {},
    )

    webhook = Channel.objects.get(slug="webhook")
    assert (webhook.network, webhook.listen_mode, webhook.rules.count()) == ("webhook", "push", 1)
    secret = webhook.credentials["secret"]
    assert len(secret) >= 32
    assert printed(output, "Webhook secret") == secret

    agent = User.objects.get(username="demo.agent")
    assert (agent.is_active, agent.is_staff, agent.is_superuser) == (True, True, True)
    assert sorted(agent.groups.values_list("name", flat=True)) == sorted([AGENT_GROUP, LEAD_GROUP, "Service Desk"])
    assert agent.check_password(printed(output, "Password"))
    assert printed(output, "SocialITSM demo") == "http://itsm.example.com:8000/"


def test_demo_prints_a_curl_command_with_a_valid_signature():
    output = run_demo()

    curl = shlex.split(next(line for line in output.splitlines() if line.strip().startswith("curl ")))
    headers = dict(curl[i + 1].split(": ", 1) for i, arg in enumerate(curl) if arg == "-H")
    body = curl[curl.index("--data-binary") + 1].encode()
    assert headers["Content-Type"] == "application/json"
    assert curl[3] == "http://127.0.0.1:8000/api/v1/ingest/webhook/"
    assert signature_valid(Channel.objects.get(slug="webhook").credentials["secret"], body, headers[SIGNATURE_HEADER])


def test_demo_run_twice_creates_nothing_twice_and_changes_the_password():
    first = run_demo()
    before = counts()
    secret = Channel.objects.get(slug="webhook").credentials["secret"]

    second = run_demo()

    assert counts() == before
    assert Channel.objects.get(slug="webhook").credentials["secret"] == secret
    agent = User.objects.get(username="demo.agent")
    assert printed(first, "Password") != printed(second, "Password")
    assert not agent.check_password(printed(first, "Password"))
    assert agent.check_password(printed(second, "Password"))


def test_demo_takes_over_the_sla_defaults_a_fresh_install_ships(sla_defaults):
    shipped = sorted(SlaPolicy.objects.values_list("pk", flat=True))
    desk = Group.objects.get(name="Service Desk")

    run_demo()

    # The same rows, now with the desk's hours for P3-P5: updated, not duplicated.
    assert list(SlaPolicy.objects.order_by("pk").values_list("pk", "priority", "calendar__name")) == [
        (shipped[0], 1, None),
        (shipped[1], 2, None),
        (shipped[2], 3, "Service Desk hours"),
        (shipped[3], 4, "Service Desk hours"),
        (shipped[4], 5, "Service Desk hours"),
    ]
    assert list(Group.objects.filter(name="Service Desk")) == [desk]
    assert Service.objects.get(slug="email").owner_group == desk


def test_demo_keeps_an_owner_group_chosen_in_the_admin():
    desk = Group.objects.create(name="Service Desk")
    Service.objects.filter(slug="vpn").update(owner_group=desk)

    run_demo()

    assert Service.objects.get(slug="vpn").owner_group == desk


def test_demo_stream_poll_ingests_a_batch_and_opens_incidents_for_complaints(django_capture_on_commit_callbacks):
    run_demo()
    stream = Channel.objects.get(slug="demo")

    with django_capture_on_commit_callbacks(execute=True):
        created = channel_poll(channel=stream)

    assert created == 3
    posts = list(Post.objects.exclude(external_id__startswith=HISTORY_PREFIX).order_by("external_id"))
    assert [p.external_id for p in posts] == ["demo-0001", "demo-0002", "demo-0003"]
    assert all(p.triage_state != Post.Triage.PENDING for p in posts)
    assert [p.incident_id is not None for p in posts] == [bool(p.is_complaint) for p in posts]
    streamed = Incident.objects.filter(posts__in=posts).distinct()
    assert streamed.count() == sum(bool(p.is_complaint) for p in posts) > 0
    # New incidents, after the seeded history's, in the Service Desk's queue: the stream still opens them.
    assert all(i.state == Incident.State.NEW for i in streamed)
    vpn_down = Incident.objects.get(posts__external_id="demo-0001")
    assert (vpn_down.service.slug, vpn_down.assignment_group.name, vpn_down.sla_policy.priority) == (
        "vpn",
        "Network Team",
        vpn_down.priority,
    )
    first_post = posts[0]
    policy = vpn_down.sla_policy
    calendar = policy.calendar.as_calendar() if policy.calendar else sla.ALWAYS
    assert vpn_down.response_due_at == sla.add_business_minutes(
        first_post.posted_at, policy.first_response_minutes, calendar
    )
    assert stream.rules.get().cursor == {"line": 3, "round": 0}


def test_reset_stream_plays_the_stream_again_with_fresh_ids(django_capture_on_commit_callbacks):
    run_demo()
    with django_capture_on_commit_callbacks(execute=True):
        channel_poll(channel=Channel.objects.get(slug="demo"))

    run_demo("--reset-stream")
    stream = Channel.objects.get(slug="demo")
    assert (stream.rules.get().cursor, stream.next_poll_at) == ({"line": 0, "round": 1}, None)
    with django_capture_on_commit_callbacks(execute=True):
        created = channel_poll(channel=stream)

    assert created == 3
    assert sorted(Post.objects.filter(external_id__endswith="~1").values_list("external_id", flat=True)) == [
        "demo-0001~1",
        "demo-0002~1",
        "demo-0003~1",
    ]


def last_week(now):
    return report_filter(start=None, end=None, group=None, network="", today=now.date())


def target_row(report: dict, target: str, priority: int) -> tuple[int, int, int]:
    row = next(r for r in report["targets"] if (r["target"], r["priority"]) == (target, priority))
    return row["met"], row["breached"], row["open"]


def history_counts() -> dict[str, int]:
    return {
        "posts": Post.objects.count(),
        "incidents": Incident.objects.count(),
        "events": IncidentEvent.objects.count(),
        "clocks": SlaClock.objects.count(),
        "replies": Reply.objects.count(),
        "users": User.objects.count(),
    }


@pytest.mark.usefixtures("any_clock")
def test_demo_history_gives_the_sla_report_real_figures():
    run_demo()
    now = timezone.now()

    report = sla_report(scope=last_week(now), now=now)

    assert report["incidents"] == {"in": len(STORIES), "out": 21}
    # Priorities 1 and 2 run around the clock, so their outcomes do not depend on the weekday.
    assert target_row(report, "first_response", 1) == (3, 3, 0)
    assert target_row(report, "first_response", 2) == (6, 3, 0)
    assert target_row(report, "resolution", 1) == (4, 2, 0)
    assert target_row(report, "resolution", 2) == (4, 4, 1)
    first = [r for r in report["targets"] if r["target"] == "first_response"]
    assert sum(r["met"] for r in first) > 0 and sum(r["breached"] for r in first) > 0
    assert report["first_response"]["count"] == 27
    assert report["first_response"]["median_minutes"] > 0
    assert report["first_response"]["p90_minutes"] >= report["first_response"]["median_minutes"]
    agents = {row["agent"] for row in report["breaches_by_agent"]}
    assert {"anna.agent", "ben.agent", "(unassigned)"} <= agents
    assert {row["group"] for row in report["breaches_by_group"]} >= {"Service Desk", "Network Team"}
    ratio_days = {row["date"] for row in report["sentiment"] if row["ratio"] is not None}
    assert len(ratio_days) >= 2
    assert [row["number"] for row in report["at_risk"]] == list(
        Incident.objects.filter(short_description__contains="intranet portal").values_list("number", flat=True)
    )


@pytest.mark.usefixtures("any_clock")
def test_demo_history_is_made_through_the_services_with_breaches_announced_when_due():
    run_demo()

    states = dict(Incident.objects.values_list("state").annotate(n=Count("pk")).order_by())
    assert states == {"closed": 17, "resolved": 4, "in_progress": 4, "on_hold": 3, "new": 2}
    assert set(Incident.objects.values_list("channel__slug", flat=True)) == {"demo", "webhook"}
    assert set(Incident.objects.values_list("assignment_group__name", flat=True)) == {
        "Service Desk",
        "Network Team",
        "Workplace IT",
    }
    assert set(Incident.objects.values_list("priority", flat=True)) == {1, 2, 3, 4, 5}
    assert Reply.objects.filter(status=Reply.Status.SENT).count() == Reply.objects.count() == 27
    assert Incident.objects.exclude(first_response_at=None).count() == 27
    # Every post was written before it reached us, and every step was taken after the post.
    assert not Post.objects.filter(posted_at__gt=F("ingested_at")).exists()
    assert not Incident.objects.filter(opened_at__lt=F("sla_started_at")).exists()
    assert Post.objects.filter(triage_state=Post.Triage.IGNORED).count() == 8
    breached = SlaClock.objects.exclude(breached_at=None)
    assert breached.count() == IncidentEvent.objects.filter(kind=IncidentEvent.Kind.SLA_BREACHED).count() > 0
    assert not breached.filter(breached_at__lt=F("due_at")).exists()
    assert IncidentEvent.objects.filter(kind=IncidentEvent.Kind.SLA_WARNING).exists()
    for username, team in (("anna.agent", "Service Desk"), ("ben.agent", "Network Team")):
        agent = User.objects.get(username=username)
        assert not agent.has_usable_password()
        assert sorted(agent.groups.values_list("name", flat=True)) == sorted([AGENT_GROUP, team])


def test_demo_history_is_seeded_once_and_rebuilt_on_request():
    run_demo()
    now = timezone.now()
    before = history_counts()
    report = sla_report(scope=last_week(now), now=now)
    numbers = set(Incident.objects.values_list("number", flat=True))

    output = run_demo()

    assert history_counts() == before
    assert sla_report(scope=last_week(now), now=now)["targets"] == report["targets"]
    assert "History:          already loaded" in output

    output = run_demo("--reset-history")

    assert f"History:          {len(STORIES)} incidents of the past week" in output
    assert history_counts() == before
    assert not numbers & set(Incident.objects.values_list("number", flat=True))


def test_the_replay_stream_never_plays_the_seeded_posts():
    run_demo()
    stream = Channel.objects.get(slug="demo")
    lines = (settings.BASE_DIR / stream.config["path"]).read_text(encoding="utf-8").splitlines()
    replayed = {json.loads(line)["id"] for line in lines if line.strip()}

    seeded = set(Post.objects.filter(external_id__startswith=HISTORY_PREFIX).values_list("external_id", flat=True))

    assert len(seeded) == len(STORIES) + 8
    assert not any(i.startswith(HISTORY_PREFIX) for i in replayed)
    assert stream.rules.get().cursor == {}


def test_demo_queue_shows_only_the_open_seeded_incidents(client):
    run_demo()
    client.force_login(User.objects.get(username="demo.agent"))

    queue = client.get("/").content.decode()

    for number, state in Incident.objects.values_list("number", "state"):
        assert (number in queue) == (state in Incident.OPEN_STATES), (number, state)
    closed = Incident.objects.filter(state=Incident.State.CLOSED).order_by("opened_at").first()
    page = client.get(f"/incidents/{closed.number}/")
    assert page.status_code == 200
    assert "ben.agent" in page.content.decode()


@pytest.mark.usefixtures("any_clock")
def test_demo_agent_is_a_lead_and_sees_the_history_and_the_stream_on_the_sla_dashboard(
    client, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    from .web.test_sla_dashboard import flatten, page_figures

    run_demo()
    with django_capture_on_commit_callbacks(execute=True):
        channel_poll(channel=Channel.objects.get(slug="demo"))
    demo = User.objects.get(username="demo.agent")
    client.force_login(demo)
    api = APIClient()
    api.force_authenticate(demo)

    page = client.get("/sla/")
    report = api.get("/api/v1/reports/sla/").json()

    assert page.status_code == 200
    streamed = Incident.objects.filter(posts__external_id__startswith="demo-").distinct().count()
    assert streamed > 0
    assert report["incidents"] == {"in": len(STORIES) + streamed, "out": 21}
    figures = page_figures(page.content.decode())
    assert figures == flatten(report)
    assert figures["targets.first_response.P1.met"] == "3"
    assert figures["targets.first_response.P1.breached"] == "3"
    assert figures["breaches_by_agent.anna.agent"] != "0"
    assert figures["incidents.out"] == "21"
    assert figures["first_response.median_minutes"] != "—"


def test_demo_history_promotes_the_posts_a_retrained_model_does_not_take_for_complaints(monkeypatch):
    from socialitsm import classify

    real = classify.verdict_many

    def nothing_is_a_complaint(*args, **kwargs):
        return [dataclasses.replace(v, score=0.0, is_complaint=False) for v in real(*args, **kwargs)]

    monkeypatch.setattr(classify, "verdict_many", nothing_is_a_complaint)

    run_demo()

    assert Incident.objects.count() == len(STORIES)
    promoted = IncidentEvent.objects.filter(kind=IncidentEvent.Kind.PROMOTED)
    assert promoted.count() == len(STORIES)
    assert set(promoted.values_list("actor__username", flat=True)) == {"anna.agent", "ben.agent", "carla.agent", None}
    assert Incident.objects.exclude(first_response_at=None).count() == 27


def test_the_streams_email_outage_becomes_one_major_incident_through_spike_detection(
    django_capture_on_commit_callbacks,
):
    run_demo()
    stream = Channel.objects.get(slug="demo")
    for _ in range(20):
        with django_capture_on_commit_callbacks(execute=True):
            channel_poll(channel=stream)

    [major] = Incident.objects.filter(is_major=True)
    assert major.service.slug == "email"
    assert major.events.filter(kind=IncidentEvent.Kind.OPENED).get().message.endswith("within 15 minutes (threshold 5)")
    children = Incident.objects.filter(parent=major)
    streamed_email = Incident.objects.filter(
        service__slug="email", is_major=False, posts__external_id__startswith="demo-"
    ).distinct()
    assert set(children) == set(streamed_email)
    assert children.count() >= 5
    # The seeded history's e-mail incidents, days old, are not part of today's outage.
    assert not children.filter(posts__external_id__startswith=HISTORY_PREFIX).exists()
    # A follow-up of a poster threads into their own incident, a child of the major incident.
    follow_up = Post.objects.get(external_id="demo-0028")
    assert follow_up.incident == Post.objects.get(external_id="demo-0017").incident
    assert follow_up.incident.parent == major
