"""A believable past week for the demo, so the lead's SLA dashboard has figures from the start.

Every incident is made the way a real one is: its post is ingested and routed by the services
(classification picks the service and so the team), and agents take, triage, answer, hold,
resolve and close it through the services, each step at the moment it happened (time-machine
moves the clock, so audit events, replies and state changes carry their real times). The SLA
sweep runs at each moment a clock reached its warning or due time, so warnings and breaches are
announced when they happened, and the clocks are replayed once more at the end. No figure is
written directly.

Times are relative to now and all in the last six days, so the dashboard's default period (the
last seven UTC days) holds them all; the jitter comes from a fixed seed. Priorities 1 and 2 run
around the clock, so their outcomes are the same whenever the demo is loaded; priorities 3 to 5
count Service Desk hours, so theirs depend on the weekday. Whatever the weekday, the report shows
met and breached targets, breaches by named agents and by nobody (an incident triaged as P2 and
left unassigned), and at-risk incidents.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import time_machine
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Min, Q, QuerySet
from django.utils import timezone

from socialitsm.connectors import InboundPost
from socialitsm.connectors.base import InboundAuthor
from socialitsm.models import Channel, Incident, Post, Reply, SlaClock
from socialitsm.services.incidents import incident_assign, incident_update
from socialitsm.services.ingest import posts_ingest
from socialitsm.services.replies import reply_mark_sent, reply_queue
from socialitsm.services.routing import post_promote, posts_process
from socialitsm.services.sla import incidents_sla_recompute, sla_sweep

# Seeded posts' ids start with this; the replayed stream never uses it, so it never plays them.
HISTORY_PREFIX = "history-"
SEED = 7

STREAM = "demo"
WEBHOOK = "webhook"
ANNA, BEN, CARLA = "anna.agent", "ben.agent", "carla.agent"

AUTHORS = {
    "maya": ("h-1", "@maya_chen", "Maya Chen"),
    "tom": ("h-2", "@tom_reilly", "Tom Reilly"),
    "priya": ("h-3", "@priya_n", "Priya Nair"),
    "lukas": ("h-4", "@lukas_b", "Lukas Becker"),
    "grace": ("h-5", "@grace_ops", "Grace Adeyemi"),
    "omar": ("h-6", "@omar_fs", "Omar Farouk"),
    "ines": ("h-7", "@ines_m", "Inès Moreau"),
    "jack": ("h-8", "@jackw", "Jack Walsh"),
    "sofia": ("h-9", "@sofia_r", "Sofia Rossi"),
    "dan": ("h-10", "@dan_p", "Dan Park"),
}
REPLIES = (
    "Thanks for telling us. We're on it and will update you here.",
    "Sorry about this. An engineer is looking at it now.",
    "Thanks, we can see the problem and are working on a fix.",
    "We're on it; could you send us a direct message with your desk number?",
)


@dataclass(frozen=True)
class Story:
    """One incident: who posted what how many hours ago, which agent handled it, the (impact,
    urgency) they set if classification's guess was not right, and what they did how many
    minutes after the post. Steps: assign (take it, with the triage), triage (set the priority
    and leave it unassigned), reply (answer in public), hold, resume, resolve, close."""

    hours_ago: float
    author: str
    agent: str
    triage: tuple[int, int] | None
    steps: str
    text: str
    channel: str = STREAM
    lang: str = "en"

    def plan(self) -> list[tuple[int, str]]:
        """The steps as (minutes after the post, step)."""
        return [(int(minutes), step) for step, minutes in (item.split() for item in self.steps.split(",") if item)]


# fmt: off
STORIES = (
    Story(137, "maya", BEN, (1, 2), "assign 5, reply 20, resolve 180, close 1500",
          "@ITSupport VPN keeps dropping every 10 minutes, can't stay connected to anything"),
    Story(133, "tom", ANNA, None, "assign 30, reply 45, resolve 300, close 1600",
          "Outlook won't sync, no new mail since yesterday @ITSupport", channel=WEBHOOK),
    Story(128, "grace", BEN, (1, 1), "assign 10, reply 40, resolve 200, close 1500",
          "@ITSupport internet is down in the Leeds office, the whole site is offline!!"),
    Story(122, "priya", CARLA, None, "assign 60, reply 90, resolve 600, close 1500",
          "printer on the 2nd floor is jammed and shows an error, can't print the contracts @ITSupport"),
    Story(118, "jack", CARLA, (1, 2), "assign 8, reply 25, resolve 600, close 1500",
          "@ITSupport Teams calls keep freezing and dropping, impossible to hold a meeting"),
    Story(112, "sofia", ANNA, (1, 1), "assign 3, reply 9, resolve 150, close 1440",
          "@ITSupport can't log in, Okta MFA push never arrives. locked out", channel=WEBHOOK),
    Story(104, "omar", BEN, None, "assign 120, reply 130, hold 140, resume 1500, resolve 1560, close 2900",
          "eduroam keeps kicking me off in the library, third time today. really annoying"),
    Story(100, "dan", ANNA, (2, 2), "assign 50, reply 55, resolve 2000, close 3500",
          "SAP is painfully slow, expenses take 5 minutes to save @ITSupport"),
    Story(94, "grace", ANNA, (1, 1), "assign 20, reply 45, resolve 400, close 1440",
          "the website is down, customers are calling us @ITSupport this is urgent"),
    Story(90, "lukas", CARLA, (2, 2), "assign 40, reply 60, hold 70",
          "my laptop won't boot after last night's update, stuck on a black screen @ITSupport"),
    Story(86, "ines", CARLA, None, "assign 30, reply 35, resolve 240, close 1440",
          "@ITSupport the docking station on desk 14 doesn't detect my monitors anymore", channel=WEBHOOK),
    Story(80, "tom", BEN, (2, 1), "assign 15, reply 50, resolve 300, close 1440",
          "DNS seems broken, half the internal sites won't resolve @ITSupport"),
    Story(76, "priya", CARLA, (3, 3), "assign 100, reply 110, resolve 900, close 2000",
          "voicemail not working, callers get a busy tone @ITSupport"),
    Story(70, "maya", BEN, (1, 1), "assign 5, reply 12, resolve 180, close 1440",
          "@ITSupport the wifi on floor 3 is dead again, nobody can get online"),
    Story(66, "jack", ANNA, (2, 1), "assign 30, reply 95, resolve 420, close 1440",
          "password reset link from the portal is broken, says token expired every time @ITSupport",
          channel=WEBHOOK),
    Story(60, "dan", ANNA, (2, 2), "assign 200, reply 210, hold 220, resume 1200, resolve 1300, close 2400",
          "@ITSupport OneDrive stopped syncing, files stuck on pending for hours"),
    Story(56, "sofia", CARLA, (1, 2), "assign 10, reply 30, resolve 200, close 1440",
          "Zoom audio is broken in meeting room B, nobody can hear us @ITSupport"),
    Story(52, "omar", CARLA, (1, 2), "triage 25",
          "@ITSupport the mobile app crashes on login on Android"),
    Story(46, "lukas", BEN, (1, 1), "assign 12, reply 30, resolve 260, close 1440",
          "GlobalProtect won't connect at all this morning, whole team locked out of the servers @ITSupport"),
    Story(42, "ines", ANNA, None, "assign 20, reply 25, resolve 500",
          "webmail keeps logging me out every few minutes @ITSupport so frustrating", channel=WEBHOOK),
    Story(38, "grace", CARLA, None, "assign 45, reply 50, hold 60",
          "@ITSupport my desk phone has no dial tone since this morning"),
    Story(34, "tom", ANNA, (2, 1), "assign 10, reply 40, resolve 700",
          "@ITSupport payroll screen in Workday crashes when I open my payslip"),
    Story(30, "maya", ANNA, None, "assign 30, reply 35, resolve 60",
          "still waiting for a reply on my ticket from Monday, the help desk is ignoring me @ITSupport"),
    Story(22, "jack", BEN, (1, 1), "assign 4, reply 10, resolve 150",
          "@ITSupport WLAN in the warehouse is down, scanners can't connect"),
    Story(18, "ines", BEN, (2, 1), "assign 30, reply 75",
          "Le VPN ne marche plus depuis ce matin @ITSupport, impossible de travailler", lang="fr"),
    Story(14, "sofia", ANNA, None, "assign 20, reply 30",
          "@ITSupport SSO loop: sign in page just redirects back to itself", channel=WEBHOOK),
    Story(10, "lukas", ANNA, (3, 3), "assign 60, reply 70, hold 80",
          "@ITSupport Drucker im 3. Stock druckt nicht, Fehler 50.4", lang="de"),
    Story(7, "omar", ANNA, (1, 2), "assign 5, reply 20",
          "@ITSupport the intranet portal is throwing 500 errors"),
    Story(4, "priya", CARLA, (2, 2), "assign 40",
          "my ThinkPad battery is swollen and the laptop won't charge anymore, it's broken @ITSupport"),
    Story(2, "dan", "", None, "",
          "shared drive is gone, the network drive letter disappeared and I can't open my files @ITSupport"),
)
# fmt: on
# Posts that open nothing but show on the sentiment chart: (hours ago, author, text).
PRAISE = (
    (131, "omar", "Thanks @ITSupport, the wifi is fast again, great job!"),
    (110, "lukas", "Huge thanks to the service desk for sorting my laptop so quickly 🙏"),
    (88, "sofia", "@ITSupport love the new self-service portal, super easy to use"),
    (64, "grace", "shoutout to IT, VPN has been rock solid all week 👍"),
    (50, "priya", "lovely sunny lunch on the terrace today ☀️"),
    (44, "tom", "@ITSupport thanks Anna, Outlook works perfectly now!"),
    (20, "ines", "great support today, printer fixed in 10 minutes, thank you @ITSupport"),
    (8, "jack", "Teams meeting went smoothly today, thanks for the quick fix @ITSupport"),
)


@dataclass(frozen=True)
class HistorySeeded:
    incidents: int


def history_posts(channels: Mapping[str, Channel]) -> QuerySet[Post]:
    """The demo's seeded posts (the marker that the history is loaded)."""
    return Post.objects.filter(channel__in=list(channels.values()), external_id__startswith=HISTORY_PREFIX)


def history_remove(*, channels: Mapping[str, Channel]) -> int:
    """Delete the seeded history: its incidents (with their events, clocks and replies) and posts.
    Returns how many incidents went."""
    with transaction.atomic():
        posts = history_posts(channels)
        deleted = Incident.objects.filter(pk__in=posts.exclude(incident=None).values("incident")).delete()[1]
        posts.delete()
    return deleted.get(Incident._meta.label, 0)


def history_seed(
    *, channels: Mapping[str, Channel], agents: Mapping[str, AbstractBaseUser], now: datetime | None = None
) -> HistorySeeded:
    """Play the week of STORIES and PRAISE through the services, in the order it happened."""
    now = (now or timezone.now()).replace(microsecond=0)
    rng = random.Random(SEED)  # noqa: S311 - reproducible jitter, not security
    player = _Player(channels=channels, agents=agents)
    actions: list[tuple[datetime, int, Callable[[], object]]] = []

    def plan(at: datetime, action: Callable[[], object]) -> None:
        actions.append((at, len(actions), action))

    for number, (hours_ago, author, text) in enumerate(PRAISE, start=1):
        posted = now - timedelta(hours=hours_ago, minutes=rng.randint(0, 50))
        post = _inbound(f"{HISTORY_PREFIX}praise-{number:02d}", author, text, "en", posted)
        plan(posted + timedelta(seconds=rng.randint(20, 180)), partial(player.ingest, STREAM, post))
    for number, story in enumerate(STORIES, start=1):
        posted = now - timedelta(hours=story.hours_ago, minutes=rng.randint(0, 30))
        post = _inbound(f"{HISTORY_PREFIX}{number:02d}", story.author, story.text, story.lang, posted)
        plan(posted + timedelta(seconds=rng.randint(20, 180)), partial(player.open, number, story, post))
        for minutes, step in story.plan():
            at = posted + timedelta(minutes=minutes, seconds=rng.randint(0, 50))
            plan(at, partial(player.act, number, story, step))

    actions.sort(key=lambda item: item[:2])
    if actions[-1][0] >= now:
        raise ValueError("the demo history has a step in the future")
    with transaction.atomic():
        last = actions[0][0]
        for at, _, action in actions:
            _sweep_between(last, at)
            with time_machine.travel(at, tick=False):
                action()
            last = at
        _sweep_between(last, now)
        incidents_sla_recompute(incident_ids=[i.pk for i in player.incidents.values()], now=now)
        sla_sweep(now=now)
    return HistorySeeded(incidents=len(player.incidents))


def _sweep_between(start: datetime, end: datetime) -> None:
    """Run the SLA sweep whenever a clock reached its warning or due time between `start` and
    `end`, as the periodic sweep would have; one already past at `start` (an incident re-targeted
    at that moment) is announced at `start`. Each sweep announces at least the earliest one."""
    while (moment := _next_crossing(start=start, before=end)) is not None:
        with time_machine.travel(max(moment, start), tick=False):
            announced = sla_sweep()
        if not any(announced.values()):
            break  # nothing the sweep would announce; never loop on it


def _next_crossing(*, start: datetime, before: datetime) -> datetime | None:
    """The earliest warning or due time before `before` of a clock not yet announced (a warning
    only while the clock is not due yet, as the sweep sees it)."""
    warning = SlaClock.objects.filter(
        Q(due_at__gt=F("warn_at")),
        stopped_at__isnull=True,
        warned_at__isnull=True,
        warn_at__lt=before,
        due_at__gt=start,
    ).aggregate(first=Min("warn_at"))["first"]
    # A clock stopped after its due time (a late reply) was still breached when that time came.
    late = Q(stopped_at__isnull=True) | Q(stopped_at__gt=F("due_at"))
    due = SlaClock.objects.filter(late, breached_at__isnull=True, due_at__lt=before).aggregate(first=Min("due_at"))[
        "first"
    ]
    return min((t for t in (warning, due) if t is not None), default=None)


def _inbound(external_id: str, author: str, text: str, lang: str, posted_at: datetime) -> InboundPost:
    author_id, handle, name = AUTHORS[author]
    return InboundPost(
        external_id=external_id,
        author=InboundAuthor(external_id=author_id, handle=handle, name=name),
        text=text,
        posted_at=posted_at,
        url=f"https://social.example.com/{handle}/{external_id}",
        conversation_id=f"{external_id}-conversation",
        language=lang,
    )


class _Player:
    """Carries out the planned actions; holds the incidents opened so far."""

    def __init__(self, *, channels: Mapping[str, Channel], agents: Mapping[str, AbstractBaseUser]) -> None:
        self.channels = channels
        self.agents = agents
        self.incidents: dict[int, Incident] = {}

    def ingest(self, slug: str, inbound: InboundPost) -> Post:
        """Store and route one post as the channel would: the rule the channel listens with."""
        channel = self.channels[slug]
        rule = channel.rules.filter(enabled=True).order_by("id").first()
        result = posts_ingest(channel=channel, posts=[inbound], rule=rule, process=False)
        posts_process(post_ids=result.pending_ids)
        return Post.objects.get(network=channel.network, external_id=inbound.external_id)

    def open(self, number: int, story: Story, inbound: InboundPost) -> None:
        post = self.ingest(story.channel, inbound)
        if post.incident is None:
            # A retrained model may not take this post for a complaint: the agent promotes it.
            actor = self.agents[story.agent] if story.agent else None
            self.incidents[number] = post_promote(post=post, actor=actor)
        else:
            self.incidents[number] = post.incident

    def act(self, number: int, story: Story, step: str) -> None:
        incident = self.incidents[number]
        agent = self.agents[story.agent]
        if step in ("assign", "triage"):
            if story.triage is not None:
                impact, urgency = story.triage
                incident = incident_update(incident=incident, actor=agent, impact=impact, urgency=urgency)
            if step == "assign":
                incident = incident_assign(incident=incident, actor=agent, assignee=agent)
        elif step == "reply":
            post = incident.posts.order_by("posted_at", "id").first()
            assert post is not None
            reply = reply_queue(
                incident=incident,
                post=post,
                text=REPLIES[number % len(REPLIES)],
                visibility=Reply.Visibility.PUBLIC,
                agent=agent,
            )
            reply_mark_sent(reply=reply, external_id=f"{HISTORY_PREFIX}reply-{reply.pk}")
        else:
            state = {
                "hold": Incident.State.ON_HOLD,
                "resume": Incident.State.IN_PROGRESS,
                "resolve": Incident.State.RESOLVED,
                "close": Incident.State.CLOSED,
            }[step]
            incident = incident_update(incident=incident, actor=agent, state=state)
        self.incidents[number] = incident
