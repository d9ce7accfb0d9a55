from __future__ import annotations

import re
import shlex
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import override_settings

from socialitsm import sla
from socialitsm.connectors.webhook import SIGNATURE_HEADER, signature_valid
from socialitsm.models import Channel, Incident, Post, Service, SlaCalendar, SlaPolicy, WatchRule
from socialitsm.roles import AGENT_GROUP, LEAD_GROUP
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
    posts = list(Post.objects.order_by("external_id"))
    assert [p.external_id for p in posts] == ["demo-0001", "demo-0002", "demo-0003"]
    assert all(p.triage_state != Post.Triage.PENDING for p in posts)
    assert [p.incident_id is not None for p in posts] == [bool(p.is_complaint) for p in posts]
    assert Incident.objects.count() == sum(bool(p.is_complaint) for p in posts)
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


def test_demo_agent_is_a_lead_and_sees_the_demo_stream_on_the_sla_dashboard(client, django_capture_on_commit_callbacks):
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
    opened = Incident.objects.count()
    assert opened > 0
    assert report["incidents"] == {"in": opened, "out": 0}
    assert sum(row["open"] for row in report["targets"] if row["target"] == "first_response") == opened
    assert page_figures(page.content.decode()) == flatten(report)
