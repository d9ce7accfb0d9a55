"""Set up the demo: teams, SLA policies and business hours, a replay stream, a webhook channel, a
login that is an agent and a team lead, three team agents and a past week of incidents they worked."""

from __future__ import annotations

import json
import os
import secrets
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from socialitsm.conf import conf
from socialitsm.demo import history
from socialitsm.models import Channel, Network, Service, SlaCalendar, SlaPolicy, WatchRule
from socialitsm.roles import AGENT_GROUP, LEAD_GROUP
from socialitsm.signing import SIGNATURE_HEADER, sign

DEMO_USERNAME = "demo.agent"
SERVICE_DESK = "Service Desk"
NETWORK_TEAM = "Network Team"
WORKPLACE_IT = "Workplace IT"
OWNER_GROUPS = {
    NETWORK_TEAM: ("network", "vpn", "wifi"),
    WORKPLACE_IT: ("laptop", "printer", "phone", "video"),
}
# priority: (name, first and next response minutes, resolution minutes, business hours?); the
# names and targets are those a fresh install ships, which the demo then takes over.
SLA_TARGETS = {
    1: ("P1 Critical", 15, 4 * 60, False),
    2: ("P2 High", 60, 8 * 60, False),
    3: ("P3 Moderate", 4 * 60, 3 * 24 * 60, True),
    4: ("P4 Low", 8 * 60, 5 * 24 * 60, True),
    5: ("P5 Planning", 24 * 60, 10 * 24 * 60, True),
}
DESK_HOURS = "Service Desk hours"
STREAM_SLUG = "demo"
STREAM_RULE = "IT complaints"
WEBHOOK_SLUG = "webhook"
WEBHOOK_RULE = "Pushed complaints"
# The agents of the seeded history: they have no password, so nobody can log in as them.
TEAM_AGENTS = {history.ANNA: SERVICE_DESK, history.BEN: NETWORK_TEAM, history.CARLA: WORKPLACE_IT}


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    webhook_secret: str
    # Incidents of the past week seeded by this run; 0 when the history was already there.
    history_incidents: int


def demo_setup(*, reset_stream: bool = False, reset_history: bool = False) -> DemoLogin:
    """Create what the demo needs, once; later runs only give the agent a new password (and,
    with `reset_history`, build the past week again up to now)."""
    with transaction.atomic():
        groups = {
            name: Group.objects.get_or_create(name=name)[0] for name in (SERVICE_DESK, NETWORK_TEAM, WORKPLACE_IT)
        }
        for name, slugs in OWNER_GROUPS.items():
            Service.objects.filter(slug__in=slugs, owner_group__isnull=True).update(owner_group=groups[name])
        # An owner chosen in the admin is kept; only services nobody owns go to the desk.
        Service.objects.filter(owner_group__isnull=True).update(owner_group=groups[SERVICE_DESK])

        desk_hours, hours_created = SlaCalendar.objects.get_or_create(
            name=DESK_HOURS,
            defaults={
                "timezone": "Europe/Berlin",
                "hours": {day: [["08:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
                "holiday_country": "DE",
                "closed_dates": ["2026-12-24", "2026-12-31"],
            },
        )
        for priority, (name, response, resolution, business) in SLA_TARGETS.items():
            policy, created = SlaPolicy.objects.get_or_create(
                name=name,
                defaults={
                    "priority": priority,
                    "position": priority * 10,
                    "first_response_minutes": response,
                    "next_response_minutes": response,
                    "resolution_minutes": resolution,
                    "calendar": desk_hours if business else None,
                    "pause_states": ["on_hold"],
                },
            )
            # A fresh install ships these policies around the clock (migration 0011): the demo's
            # desk works P3-P5 in its hours. Once: a calendar chosen later is kept.
            if business and hours_created and not created and policy.calendar_id is None:
                policy.calendar = desk_hours
                policy.save(update_fields=["calendar"])

        stream, _ = Channel.objects.get_or_create(
            slug=STREAM_SLUG,
            defaults={
                "name": "Demo stream",
                "network": Network.REPLAY,
                "handle": "@ITSupport",
                "listen_mode": Channel.ListenMode.POLL,
                "poll_interval": 5,
                "config": {"path": "socialitsm/demo/posts.jsonl", "batch": 3},
            },
        )
        rule, created = WatchRule.objects.get_or_create(
            channel=stream,
            name=STREAM_RULE,
            defaults={
                "kind": WatchRule.Kind.SEARCH,
                "complaint_threshold": 0.5,
                "action": WatchRule.Action.OPEN_INCIDENT,
                "assignment_group": groups[SERVICE_DESK],
            },
        )
        if reset_stream and not created:
            # A new round gives the replayed posts fresh ids, so they are not dropped as duplicates.
            rule.cursor = {"line": 0, "round": int(rule.cursor.get("round", 0)) + 1}
            rule.save(update_fields=["cursor"])
            Channel.objects.filter(pk=stream.pk).update(next_poll_at=None)

        webhook, _ = Channel.objects.get_or_create(
            slug=WEBHOOK_SLUG,
            defaults={
                "name": "Webhook",
                "network": Network.WEBHOOK,
                "handle": "@ITSupport",
                "listen_mode": Channel.ListenMode.PUSH,
                "credentials": {"secret": secrets.token_urlsafe(32)},
            },
        )
        if not webhook.credentials.get("secret"):
            webhook.credentials = {**webhook.credentials, "secret": secrets.token_urlsafe(32)}
            webhook.save(update_fields=["credentials"])
        WatchRule.objects.get_or_create(
            channel=webhook,
            name=WEBHOOK_RULE,
            defaults={
                "kind": WatchRule.Kind.MENTIONS,
                "complaint_threshold": 0.5,
                "action": WatchRule.Action.OPEN_INCIDENT,
                "assignment_group": groups[SERVICE_DESK],
            },
        )

        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(**_login_lookup(DEMO_USERNAME))
        user.is_active = user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        user.groups.add(*Group.objects.filter(name__in=(AGENT_GROUP, LEAD_GROUP)), groups[SERVICE_DESK])
        agents = _team_agents(groups)

    channels = {STREAM_SLUG: stream, WEBHOOK_SLUG: webhook}
    if reset_history:
        history.history_remove(channels=channels)
    seeded = 0
    if not history.history_posts(channels).exists():
        seeded = history.history_seed(channels=channels, agents=agents).incidents
    return DemoLogin(
        username=user.get_username(),
        password=password,
        webhook_secret=webhook.credentials["secret"],
        history_incidents=seeded,
    )


def _login_lookup(name: str) -> dict[str, Any]:
    """get_or_create arguments for the demo login `name` in whatever user model the site has:
    its USERNAME_FIELD, and an email address where the model has one besides."""
    model = get_user_model()
    login_field = model.USERNAME_FIELD
    email = f"{name}@example.com"
    email_field = getattr(model, "EMAIL_FIELD", "email")
    if login_field == email_field:
        return {login_field: email}
    has_email = any(field.name == email_field for field in model._meta.get_fields())
    return {login_field: name, "defaults": {email_field: email} if has_email else {}}


def _team_agents(groups: dict[str, Group]) -> dict[str, AbstractBaseUser]:
    agent_group = Group.objects.get(name=AGENT_GROUP)
    agents: dict[str, AbstractBaseUser] = {}
    for username, team in TEAM_AGENTS.items():
        agent, created = get_user_model().objects.get_or_create(**_login_lookup(username))
        if created:
            agent.set_unusable_password()
            agent.save(update_fields=["password"])
        agent.groups.add(agent_group, groups[team])
        agents[username] = agent
    return agents


def webhook_example(*, url: str, secret: str) -> str:
    """A curl command that pushes one signed post to the demo webhook channel."""
    body = json.dumps(
        {
            "id": f"curl-{secrets.token_hex(4)}",
            "text": "@ITSupport the VPN keeps dropping every few minutes, can't work",
            "created_at": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "author": {"id": "u-curl", "handle": "@curl_user", "name": "Curl User"},
            "lang": "en",
        },
        separators=(",", ":"),
    )
    return (
        f"curl -X POST {shlex.quote(url)} -H 'Content-Type: application/json' "
        f"-H {shlex.quote(f'{SIGNATURE_HEADER}: {sign(secret, body.encode())}')} --data-binary {shlex.quote(body)}"
    )


class Command(BaseCommand):
    help = "Set up the demo (needs SOCIALITSM_DEMO=1). Safe to re-run; gives demo.agent a new password each time."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000/", help="Where the site is served, for the printout."
        )
        parser.add_argument("--reset-stream", action="store_true", help="Play the demo stream again from the top.")
        parser.add_argument(
            "--login-file",
            default="",
            help="Also write the printout (it holds the password) to this file, readable by its owner only.",
        )
        parser.add_argument(
            "--reset-history",
            action="store_true",
            help="Delete the seeded past week of incidents and build it again, ending now.",
        )

    def handle(self, *args, url: str, reset_stream: bool, reset_history: bool, login_file: str = "", **options) -> None:
        if not conf.DEMO:
            raise CommandError("refusing to create a demo login with a known role: set SOCIALITSM_DEMO=1 to allow it")
        login = demo_setup(reset_stream=reset_stream, reset_history=reset_history)
        seeded = (
            f"{login.history_incidents} incidents of the past week, worked by {', '.join(TEAM_AGENTS)}"
            if login.history_incidents
            else "already loaded (--reset-history builds it again, ending now)"
        )
        url = url.rstrip("/") + "/"
        ingest_url = f"{url}api/v1/ingest/{WEBHOOK_SLUG}/"
        printout = "\n".join(
            [
                "",
                f"  SocialITSM demo:  {url}",
                f"  Log in as:        {login.username}",
                f"  Password:         {login.password}",
                f"  Admin:            {url}admin/",
                f"  API token:        python manage.py drf_create_token {login.username}",
                f"  API docs:         {url}api/docs/",
                f"  SLA dashboard:    {url}sla/",
                f"  History:          {seeded}",
                f"  Webhook secret:   {login.webhook_secret}",
                "  Push a signed post to the webhook channel:",
                f"    {webhook_example(url=ingest_url, secret=login.webhook_secret)}",
                "",
            ]
        )
        self.stdout.write(printout)
        if login_file:
            _write_private(Path(login_file), printout.strip("\n") + "\n")


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` (its directory made if missing), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
