"""Read queries shared by the web UI, the API and the admin: channels, incidents and their
queues, posts, replies and the lead's SLA report."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from importlib import import_module
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection, models
from django.db.models import (
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    Window,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from socialitsm import datetimes
from socialitsm.conf import conf
from socialitsm.exceptions import ApplicationError
from socialitsm.models import (
    Author,
    Broadcast,
    Channel,
    Incident,
    IncidentEvent,
    IncidentNote,
    IncidentQuerySet,
    IncidentStateTally,
    IngestRejection,
    ItsmLink,
    Network,
    Notification,
    Post,
    PostSentimentHour,
    Reply,
    ReplyTemplate,
    SavedView,
    SlaCalendar,
    SlaClock,
    SlaPolicy,
    StatusPost,
)
from socialitsm.roles import AGENT_GROUP, LEAD_GROUP
from socialitsm.text import clean_text

ROLE_GROUPS = (AGENT_GROUP, LEAD_GROUP)

MAX_REPORT_DAYS = 366
# What lists that show a row's channel leave unread: its credentials are decrypted as they load,
# once per row, and no list shows them.
CHANNEL_SECRETS = ("channel__credentials",)
# Combined polarity beyond these counts as negative or positive; between them, neutral. The
# hourly counts (PostSentimentHour) are kept with the same thresholds: change both together.
NEGATIVE_BELOW = -0.05
POSITIVE_ABOVE = 0.05


def sla_defaults_in_force() -> bool:
    """Whether the SLA policies are still exactly those a fresh install ships (migration 0011):
    leads are reminded to adapt them."""
    return import_module("socialitsm.migrations.0011_default_sla").in_force(SlaPolicy)


# How far back the channel list counts posts set aside at ingest.
REJECTIONS_WINDOW = timedelta(hours=24)


def channel_list() -> QuerySet[Channel]:
    """Channels with `recent_posts`: posts stored within the quiet window, for `Channel.is_quiet`,
    and `rejected_posts`: posts set aside at ingest within REJECTIONS_WINDOW."""
    now = timezone.now()
    since = now - timedelta(hours=conf.QUIET_WINDOW_HOURS)
    rejected = (
        IngestRejection.objects.filter(channel=OuterRef("pk"), created_at__gte=now - REJECTIONS_WINDOW)
        .order_by()
        .values("channel")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Channel.objects.annotate(
        recent_posts=Count("posts", filter=Q(posts__ingested_at__gte=since)),
        rejected_posts=Coalesce(Subquery(rejected), 0),
    )


@dataclass(frozen=True)
class ReportFilter:
    """A report's scope: days `start`..`end` inclusive in the time zone of `calendar` (UTC without
    one), optionally one group and one network."""

    start: date
    end: date
    group: Group | None = None
    network: str = ""
    calendar: SlaCalendar | None = None

    @property
    def tz(self) -> tzinfo:
        if self.calendar is None:
            return UTC
        try:
            return ZoneInfo(self.calendar.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return UTC

    @property
    def tz_name(self) -> str:
        return str(self.tz) if self.tz is not UTC else "UTC"

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(0), tzinfo=self.tz)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=self.tz)


# Days a report can cover: any later and the period's end overflows Python's dates.
FIRST_REPORT_DAY = datetimes.FILTERS_EARLIEST.date()
LAST_REPORT_DAY = datetimes.FILTERS_LATEST.date() - timedelta(days=1)


def report_filter(
    *,
    start: date | None,
    end: date | None,
    group: Group | None,
    network: str,
    today: date,
    calendar: SlaCalendar | None = None,
) -> ReportFilter:
    """The report scope from the query; a missing end is today (pass today in the calendar's time
    zone), a missing start a week before it. Role groups (agents, leads) are no teams.

    Raises ApplicationError naming the field at fault."""
    if group is not None and group.name in ROLE_GROUPS:
        raise ApplicationError(f"{group.name} is a role, not a team", field="group")
    for name, day in (("from", start), ("to", end)):
        if day is not None and not FIRST_REPORT_DAY <= day <= LAST_REPORT_DAY:
            raise ApplicationError(f"the date must be between {FIRST_REPORT_DAY} and {LAST_REPORT_DAY}", field=name)
    end = end or today
    start = start or end - timedelta(days=6)
    if start > end:
        raise ApplicationError("the period starts after it ends", field="from")
    if (end - start).days + 1 > MAX_REPORT_DAYS:
        raise ApplicationError(f"the period is longer than {MAX_REPORT_DAYS} days", field="from")
    if network and network not in Network.values:
        raise ApplicationError(f"unknown network {network!r}", field="network")
    return ReportFilter(start=start, end=end, group=group, network=network, calendar=calendar)


def report_today(calendar: SlaCalendar | None, now: datetime) -> date:
    """Today in the calendar's time zone: the default end of a report."""
    return now.astimezone(ReportFilter(start=now.date(), end=now.date(), calendar=calendar).tz).date()


def team_groups() -> QuerySet[Group]:
    """Groups that are teams: every group but the roles (agents, leads)."""
    return Group.objects.exclude(name__in=ROLE_GROUPS).order_by("name")


def _scoped_incidents(scope: ReportFilter) -> IncidentQuerySet:
    incidents: IncidentQuerySet = Incident.objects.all()
    if scope.group is not None:
        incidents = incidents.filter(assignment_group=scope.group)
    if scope.network:
        incidents = incidents.filter(channel__network=scope.network)
    return incidents


def _clock_scope(scope: ReportFilter) -> Q:
    """`scope`'s group and network as conditions on SLA clocks: a join to each clock's incident
    (and channel), not an IN over every incident, which made PostgreSQL read all incidents for
    each of the report's clock queries."""
    condition = Q()
    if scope.group is not None:
        condition &= Q(incident__assignment_group=scope.group)
    if scope.network:
        condition &= Q(incident__channel__network=scope.network)
    return condition


def _breached_q(now: datetime) -> Q:
    return Q(state=SlaClock.State.BREACHED) | Q(state=SlaClock.State.RUNNING, due_at__lte=now)


def _percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `share` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _minutes(seconds: list[int]) -> dict[str, Any]:
    if not seconds:
        return {"count": 0, "median_minutes": None, "p90_minutes": None}
    minutes = [s / 60 for s in seconds]
    return {
        "count": len(minutes),
        "median_minutes": round(statistics.median(minutes), 1),
        "p90_minutes": round(_percentile(minutes, 0.9), 1),
    }


def sla_report(*, scope: ReportFilter, now: datetime) -> dict[str, Any]:
    """The lead's figures for `scope`. Clocks count in the period they started (when the poster
    wrote); a running clock past its due time counts as breached whether or not the sweep ran.
    Response times are business time, as the SLA measures them. The period's major incidents
    come with their own figures (`major_incident_report`). Plain JSON types only.

    The period's clocks are read once, with the incident fields the breakdowns need, and the
    incidents opened in it once: each figure used to be its own join of clocks to incidents."""
    incidents = _scoped_incidents(scope)
    login = get_user_model().USERNAME_FIELD
    # Whether each clock is late and was decided by a response come from the database as flags:
    # reading the two times behind them for every clock cost more than the rest of the report.
    clocks = list(
        SlaClock.objects.filter(_clock_scope(scope), started_at__gte=scope.since, started_at__lt=scope.until)
        .order_by()
        .annotate(
            late=ExpressionWrapper(_breached_q(now), output_field=models.BooleanField()),
            responded=ExpressionWrapper(
                Q(
                    target=SlaClock.Target.FIRST_RESPONSE,
                    state__in=(SlaClock.State.MET, SlaClock.State.BREACHED),
                    incident__first_response_at__isnull=False,
                ),
                output_field=models.BooleanField(),
            ),
        )
        .values_list(
            "target",
            "state",
            "late",
            "elapsed_seconds",
            "incident__priority",
            "incident__service__name",
            f"incident__assignee__{login}",
            "incident__assignment_group__name",
            "responded",
        )
    )
    opened = list(
        incidents.filter(opened_at__gte=scope.since, opened_at__lt=scope.until)
        .order_by()
        .values_list("service__name", f"assignee__{login}")
        .annotate(n=Count("pk"))
    )
    outcome: dict[tuple[str, int], list[int]] = {}
    responded: list[int] = []
    by_agent: dict[str | None, int] = {}
    by_group: dict[str | None, int] = {}
    for target, state, is_late, elapsed, priority, _service, agent, group, answered in clocks:
        counts = outcome.setdefault((target, priority), [0, 0, 0, 0])
        if state == SlaClock.State.MET:
            counts[0] += 1
        elif is_late:
            counts[1] += 1
        elif state in (SlaClock.State.RUNNING, SlaClock.State.PAUSED):
            counts[2] += 1
        elif state == SlaClock.State.CANCELED:
            counts[3] += 1
        if is_late:
            by_agent[agent] = by_agent.get(agent, 0) + 1
            by_group[group] = by_group.get(group, 0) + 1
        if answered:
            responded.append(elapsed)
    targets = []
    for target in SlaClock.Target:
        for priority in Incident.Priority.values:
            met, late, running, canceled = outcome.get((target.value, priority), (0, 0, 0, 0))
            decided = met + late
            targets.append(
                {
                    "target": target.value,
                    "priority": priority,
                    "met": met,
                    "breached": late,
                    "open": running,
                    "canceled": canceled,
                    "met_percent": round(100 * met / decided, 1) if decided else None,
                }
            )
    lags = [
        lag
        for lag in incidents.filter(sla_started_at__gte=scope.since, sla_started_at__lt=scope.until)
        .order_by()
        .values_list("ingest_lag_seconds", flat=True)
        if lag is not None
    ]
    return {
        "period": {
            "from": scope.start.isoformat(),
            "to": scope.end.isoformat(),
            "group": scope.group.name if scope.group else None,
            "network": scope.network or None,
            "calendar": scope.calendar.name if scope.calendar else None,
            "timezone": scope.tz_name,
        },
        "incidents": {
            "in": sum(n for *_, n in opened),
            "out": incidents.filter(resolved_at__gte=scope.since, resolved_at__lt=scope.until).count(),
        },
        "targets": targets,
        "first_response": _minutes(responded),
        "ingest_lag": _minutes(lags),
        "breaches_by_agent": [{"agent": username or UNASSIGNED, "breached": n} for username, n in _by_count(by_agent)],
        "breaches_by_group": [{"group": name or NO_GROUP, "breached": n} for name, n in _by_count(by_group)],
        "by_service": _breakdown(clocks, opened, 5, 0, "service", NO_SERVICE),
        "by_agent": _breakdown(clocks, opened, 6, 1, "agent", UNASSIGNED),
        "at_risk": _at_risk(scope, now),
        "sentiment": _sentiment_daily(scope),
        "major_incidents": major_incident_report(scope=scope),
    }


# How the report names incidents without an assignee, group or service (no username can be
# written with parentheses, and the drill-down reads them back).
UNASSIGNED = "(unassigned)"
NO_GROUP = "(no group)"
NO_SERVICE = "(no service)"


def _by_count(counts: dict[str | None, int]) -> list[tuple[str | None, int]]:
    """Most first, then by name, the nameless last (as PostgreSQL orders NULLs)."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0] is None, item[0] or ""))


def _breakdown(
    clocks: list[tuple[Any, ...]],
    opened: list[tuple[Any, ...]],
    clock_field: int,
    opened_field: int,
    key: str,
    none: str,
) -> list[dict[str, Any]]:
    """Per service or agent (the clock row's and the opened row's column at the given places):
    incidents opened in the period, the share of decided clocks met, and the median business
    minutes to first response."""
    incidents: dict[str | None, int] = {}
    for row in opened:
        incidents[row[opened_field]] = incidents.get(row[opened_field], 0) + row[-1]
    decided: dict[str | None, list[int]] = {}
    responses: dict[str | None, list[int]] = {}
    for row in clocks:
        _, state, late, elapsed = row[:4]
        name = row[clock_field]
        counts = decided.setdefault(name, [0, 0])
        if state == SlaClock.State.MET:
            counts[0] += 1
        elif late:
            counts[1] += 1
        if row[8]:
            responses.setdefault(name, []).append(elapsed)
    rows = []
    for name in set(incidents) | set(decided) | set(responses):
        met, late = decided.get(name, (0, 0))
        rows.append(
            {
                key: name or none,
                "incidents": incidents.get(name, 0),
                "met": met,
                "breached": late,
                "met_percent": round(100 * met / (met + late), 1) if met + late else None,
                "median_first_response_minutes": _minutes(responses.get(name, []))["median_minutes"],
            }
        )
    return sorted(rows, key=lambda row: (-row["incidents"], row[key]))


def sla_target_in_use(target: str) -> bool:
    """Whether any SLA policy sets `target` (a clock of it can run at all)."""
    field = {
        SlaClock.Target.FIRST_RESPONSE.value: "first_response_minutes",
        SlaClock.Target.NEXT_RESPONSE.value: "next_response_minutes",
        SlaClock.Target.RESOLUTION.value: "resolution_minutes",
    }[target]
    return SlaPolicy.objects.filter(**{f"{field}__isnull": False}).exists()


# The drill-down's outcomes of a clock, as the report counts them.
DRILL_OUTCOMES = ("met", "breached", "open", "canceled", "decided")


def _outcome_q(outcome: str, now: datetime) -> Q:
    breached = _breached_q(now)
    return {
        "met": Q(state=SlaClock.State.MET),
        "breached": breached,
        "open": Q(state__in=(SlaClock.State.RUNNING, SlaClock.State.PAUSED)) & ~breached,
        "canceled": Q(state=SlaClock.State.CANCELED),
        "decided": Q(state=SlaClock.State.MET) | breached,
    }[outcome]


@dataclass(frozen=True)
class Drill:
    """Which incidents behind a figure of the report: `flow` "in" (opened in the period) or "out"
    (resolved in it), else those with a clock started in the period, of `target` and `outcome`
    when given; narrowed by priority, agent, team and service as the report names them."""

    flow: str = ""
    target: str = ""
    outcome: str = ""
    priority: int | None = None
    agent: str = ""
    team: str = ""
    service: str = ""


def sla_report_incidents(*, scope: ReportFilter, drill: Drill, now: datetime) -> IncidentQuerySet:
    """The incidents behind one figure of sla_report for the same scope and moment."""
    incidents = _scoped_incidents(scope)
    if drill.flow == "in":
        incidents = incidents.filter(opened_at__gte=scope.since, opened_at__lt=scope.until)
    elif drill.flow == "out":
        incidents = incidents.filter(resolved_at__gte=scope.since, resolved_at__lt=scope.until)
    else:
        clocks = SlaClock.objects.filter(started_at__gte=scope.since, started_at__lt=scope.until)
        if drill.target:
            clocks = clocks.filter(target=drill.target)
        if drill.outcome:
            clocks = clocks.filter(_outcome_q(drill.outcome, now))
        if drill.target == SlaClock.Target.FIRST_RESPONSE and drill.outcome == "decided":
            clocks = clocks.filter(incident__first_response_at__isnull=False)
        incidents = incidents.filter(pk__in=clocks.values("incident_id"))
    if drill.priority is not None:
        incidents = incidents.filter(priority=drill.priority)
    for value, none, field in (
        (drill.agent, UNASSIGNED, f"assignee__{_login_field()}"),
        (drill.team, NO_GROUP, "assignment_group__name"),
        (drill.service, NO_SERVICE, "service__name"),
    ):
        if value == none:
            incidents = incidents.filter(**{f"{field.split('__')[0]}__isnull": True})
        elif value:
            incidents = incidents.filter(**{field: value})
    return incidents.select_related("service", "assignment_group", "assignee").order_by("opened_at", "pk")


def sla_clocks_of(incidents: Sequence[Incident], scope: ReportFilter) -> dict[int, list[SlaClock]]:
    """The clocks of `incidents` that started in the period, by incident id, for the drill-down list."""
    found: dict[int, list[SlaClock]] = {}
    for clock in SlaClock.objects.filter(
        incident__in=[i.pk for i in incidents], started_at__gte=scope.since, started_at__lt=scope.until
    ).order_by("target", "cycle"):
        found.setdefault(clock.incident_id, []).append(clock)
    return found


def _at_risk(scope: ReportFilter, now: datetime) -> list[dict[str, Any]]:
    """Open incidents with a running clock past its warning time and not yet due, soonest first."""
    risky = (
        SlaClock.objects.filter(
            _clock_scope(scope),
            incident__state__in=Incident.OPEN_STATES,
            state=SlaClock.State.RUNNING,
            warn_at__lte=now,
            due_at__gt=now,
        )
        .select_related("incident", "incident__assignee", "incident__assignment_group")
        .order_by("due_at", "pk")
    )
    return [
        {
            "number": clock.incident.number,
            "short_description": clock.incident.short_description,
            "priority": clock.incident.priority,
            "target": clock.target,
            "due_at": clock.due_at.isoformat() if clock.due_at else None,
            "minutes_left": math.floor((clock.due_at - now).total_seconds() / 60) if clock.due_at else None,
            "assignee": clock.incident.assignee.get_username() if clock.incident.assignee else None,
            "group": clock.incident.assignment_group.name if clock.incident.assignment_group else None,
        }
        for clock in risky[:200]
    ]


def _sentiment_daily(scope: ReportFilter) -> list[dict[str, Any]]:
    """Negative and positive posts per day (in the report's time zone) and network. Posts have no
    group before routing, so only the network narrows this part. A day with negative posts and
    no positive one has no ratio (it is infinite): `only_negative` says so. Read from the hourly
    counts where the database keeps them and the time zone's days start on the hour; counted
    from the posts otherwise (the same figures, see `sentiment_daily_counted`)."""
    if sentiment_hours_kept() and _whole_hours(scope):
        hours = PostSentimentHour.objects.filter(hour__gte=scope.since, hour__lt=scope.until, rated__gt=0)
        if scope.network:
            hours = hours.filter(network=scope.network)
        rows = list(
            hours.annotate(day=TruncDate("hour", tzinfo=scope.tz))
            .values_list("day", "network")
            .annotate(negative=Sum("negative"), positive=Sum("positive"))
            .order_by("day", "network")
        )
    else:
        rows = sentiment_daily_counted(scope)
    return [
        {
            "date": day.isoformat(),
            "network": network,
            "negative": negative,
            "positive": positive,
            "ratio": round(negative / positive, 2) if positive else None,
            "only_negative": bool(negative and not positive),
        }
        for day, network, negative, positive in rows
    ]


def sentiment_daily_counted(scope: ReportFilter) -> list[tuple[date, str, int, int]]:
    """(day, network, negative, positive) counted from the posts themselves."""
    posts = Post.objects.filter(posted_at__gte=scope.since, posted_at__lt=scope.until, sentiment__isnull=False)
    if scope.network:
        posts = posts.filter(network=scope.network)
    return list(
        posts.annotate(day=TruncDate("posted_at", tzinfo=scope.tz))
        .values_list("day", "network")
        .annotate(
            negative=Count("pk", filter=Q(sentiment__lt=NEGATIVE_BELOW)),
            positive=Count("pk", filter=Q(sentiment__gt=POSITIVE_ABOVE)),
        )
        .order_by("day", "network")
    )


def sentiment_hours_kept() -> bool:
    """Whether the database keeps PostSentimentHour (PostgreSQL's triggers, migration 0025)."""
    return connection.vendor == "postgresql"


def _whole_hours(scope: ReportFilter) -> bool:
    """Whether every day of the report starts and ends on a whole UTC hour in its time zone, so
    hourly counts add up to its days exactly (not so in zones such as Asia/Kolkata)."""
    day = scope.since
    while day <= scope.until:
        offset = day.utcoffset() or timedelta(0)
        if offset % timedelta(hours=1):
            return False
        day = datetime.combine(day.date() + timedelta(days=1), time(0), tzinfo=scope.tz)
    return True


def incidents_with_breach_due(incidents: QuerySet[Incident]) -> QuerySet[Incident]:
    """`incidents` ready to order by time to breach: `breach_due_at`, the earliest due time among
    the incident's running clocks, is stored on the incident (services/figures.py) and indexed
    together with the rest of `breach_order`, so this adds nothing to the query any more."""
    return incidents


def breach_order(descending: bool = False) -> list[Any]:
    """Soonest breach first, incidents without a running clock last, on every database."""
    due = F("breach_due_at").desc(nulls_last=True) if descending else F("breach_due_at").asc(nulls_last=True)
    return [due, "priority", "opened_at", "pk"]


# -- incidents, posts and replies as the API and the web UI read them ------------------------------


def itsm_link_list() -> QuerySet[ItsmLink]:
    """ITSM links with their connection and incident, in creation order."""
    return ItsmLink.objects.select_related("connection", "incident").order_by("pk")


def related_incidents(*names: str) -> list[Prefetch]:
    """Prefetches of the incidents that `names` point to (`parent`, `merged_into`), their number
    and short description only. Joined instead (select_related), each of them is the incidents
    table once more in the query: planning a query over it three times, with its many indexes,
    took PostgreSQL longer than reading fifty rows (about 3 ms of each list or page)."""
    return [
        Prefetch(name, queryset=Incident.objects.only("pk", "number", "short_description").order_by()) for name in names
    ]


def incident_list() -> QuerySet[Incident]:
    """Incidents with what a list or detail shows: related rows, SLA clocks in target order and
    ITSM links (`Incident.clocks_listed`, `Incident.itsm_links_listed`; `post_count` and
    `breach_due_at` are stored on the incident)."""
    incidents = (
        Incident.objects.select_related("service", "assignment_group", "assignee", "sla_policy")
        .prefetch_related(*related_incidents("parent", "merged_into"))
        .prefetch_related(
            Prefetch(
                "sla_clocks",
                # A page's clocks share a few policies: each read once, not joined to every clock.
                queryset=SlaClock.objects.prefetch_related(
                    Prefetch("policy", queryset=SlaPolicy.objects.select_related("calendar"))
                ).order_by("target", "cycle"),
                to_attr=Incident.CLOCKS_PREFETCHED,
            )
        )
        # Not itsm_link_list(): the prefetch gives each link its incident, which a join would copy.
        .prefetch_related(
            Prefetch(
                "itsm_links",
                queryset=ItsmLink.objects.select_related("connection").order_by("pk"),
                to_attr=Incident.ITSM_LINKS_PREFETCHED,
            )
        )
    )
    return incidents


def incident_page() -> QuerySet[Incident]:
    """Incidents with what the incident page shows of them, looked up by number."""
    return (
        Incident.objects.select_related("service", "assignment_group", "assignee", "author", "channel", "sla_policy")
        .prefetch_related(*related_incidents("parent", "merged_into"))
        .defer(*CHANNEL_SECRETS)
    )


@dataclass(frozen=True)
class IncidentQuery:
    """What a queue narrows incidents by; empty values do not narrow. `mine` and `unassigned`
    both set match nothing, as each narrows on its own."""

    states: Sequence[str] = ()
    open: bool | None = None
    priorities: Sequence[int] = ()
    service: str = ""
    mine: bool = False
    unassigned: bool = False
    assignee_id: int | None = None
    group: Group | None = None
    opened_after: datetime | None = None
    opened_before: datetime | None = None
    words: str = ""
    search: str = ""
    view: str = ""


def incident_queue(incidents: IncidentQuerySet, query: IncidentQuery, *, user: Any) -> IncidentQuerySet:
    """`incidents` narrowed by `query`; `mine` means assigned to `user` (no user: unassigned)."""
    if query.states:
        incidents = incidents.filter(state__in=query.states)
    if query.open is True:
        incidents = incidents.open()
    elif query.open is False:
        incidents = incidents.exclude(state__in=Incident.OPEN_STATES)
    if query.priorities:
        incidents = incidents.filter(priority__in=query.priorities)
    if query.service:
        incidents = incidents.filter(service__slug=query.service)
    if query.mine:
        incidents = incidents.filter(assignee_id=getattr(user, "pk", None))
    if query.unassigned:
        incidents = incidents.filter(assignee__isnull=True)
    if query.assignee_id is not None:
        incidents = incidents.filter(assignee_id=query.assignee_id)
    if query.group is not None:
        incidents = incidents.filter(assignment_group=query.group)
    if query.opened_after is not None:
        incidents = incidents.filter(opened_at__gte=query.opened_after)
    if query.opened_before is not None:
        incidents = incidents.filter(opened_at__lt=query.opened_before)
    for word in query.words.split():
        incidents = incidents.filter(Q(number__icontains=word) | Q(short_description__icontains=word))
    if query.view:
        incidents = cast(IncidentQuerySet, queue_view(incidents, query.view, user=user))
    if query.search:
        incidents = cast(IncidentQuerySet, incident_search(incidents, query.search))
    return incidents


def incident_queue_count(query: IncidentQuery, *, state_counts: dict[str, int] | None = None) -> int | None:
    """How many incidents `query` matches, from the incidents per state (`state_counts` when
    read already, else incident_state_counts), when it narrows by state alone: states, open or
    not, and the views that are states (open, on hold, resolved and closed, all). None when it
    narrows by anything else, or the database keeps no such counts: then the list counts its rows."""
    if connection.vendor != "postgresql":
        return None
    narrowed_otherwise = any(getattr(query, f.name) for f in fields(query) if f.name not in ("states", "open", "view"))
    if narrowed_otherwise or query.view not in (
        "",
        QueueView.OPEN,
        QueueView.ON_HOLD,
        QueueView.DONE,
        QueueView.ALL,
    ):
        return None
    states = set(Incident.State.values)
    if query.states:
        states &= set(query.states)
    if query.open is True:
        states &= set(Incident.OPEN_STATES)
    elif query.open is False:
        states -= set(Incident.OPEN_STATES)
    if query.view == QueueView.OPEN:
        states &= set(Incident.OPEN_STATES)
    elif query.view == QueueView.ON_HOLD:
        states &= {Incident.State.ON_HOLD}
    elif query.view == QueueView.DONE:
        states &= {Incident.State.RESOLVED, Incident.State.CLOSED}
    counts = incident_state_counts() if state_counts is None else state_counts
    return sum(counts.get(state, 0) for state in states)


# A searched queue is counted up to this many incidents: a broad word ("vpn") matches tens of
# thousands in a year, and counting them all costs more than finding the page.
SEARCH_COUNT_CAP = 10_000


def incident_queue_paging(query: IncidentQuery) -> dict[str, Any]:
    """How a list narrowed by `query` is paged (pagination.KeyedPaginator's arguments): searched
    lists (`words` or `search`) are counted up to SEARCH_COUNT_CAP, and a full-text search
    counts in its page's query, which finds the matches once for both."""
    if search_words(query.search):
        return {"count_cap": SEARCH_COUNT_CAP, "count_with_page": True}
    if query.words.strip():
        return {"count_cap": SEARCH_COUNT_CAP}
    return {}


def post_list() -> QuerySet[Post]:
    """Posts with their author, channel, detected service, incident, labeller and the versions
    they had before edits."""
    return (
        Post.objects.select_related("author", "channel", "detected_service", "incident", "labelled_by")
        .defer(*CHANNEL_SECRETS)
        .prefetch_related(Prefetch("revisions", to_attr=Post.REVISIONS_PREFETCHED))
    )


def incident_posts(incident: Incident) -> QuerySet[Post]:
    """The incident's posts, oldest first."""
    return post_list().filter(incident=incident).order_by("posted_at", "id")


def incident_posts_shown(incident: Incident, *, latest: int | None) -> tuple[list[Post], int]:
    """The posts the incident page shows, oldest first, and how many it leaves out: all of them
    with `latest` None, else the first post and the `latest` most recent (a busy incident's page
    renders a bounded number of posts; the rest on request).

    Each post comes with its author, detected service, labeller and earlier versions. Its
    incident is `incident` itself and its channel is loaded once for all the posts, with the
    credentials that decide what a reply may do (X: are there user keys?): joined to every
    post, the two rows were parsed again for each of them."""
    posts = Post.objects.filter(incident=incident).select_related("author", "detected_service", "labelled_by")
    oldest = posts.order_by("posted_at", "id")
    if latest is None or incident.post_count <= latest + 1:
        shown, hidden = list(oldest), 0
    else:
        first = list(oldest[:1])
        recent = list(posts.order_by("-posted_at", "-id")[:latest])[::-1]
        shown = first + [post for post in recent if post.pk != first[0].pk] if first else recent
        hidden = max(0, incident.post_count - len(shown))
    channels = Channel.objects.in_bulk({post.channel_id for post in shown})
    for post in shown:
        Post.incident.field.set_cached_value(post, incident)
        Post.channel.field.set_cached_value(post, channels[post.channel_id])
    prefetch_related_objects(shown, Prefetch("revisions", to_attr=Post.REVISIONS_PREFETCHED))
    return shown, hidden


def post_is_complaint(post: Post) -> bool | None:
    """The stored classification of `post`: an agent's label first, then the classifier's
    verdict; None when neither has spoken."""
    if post.label:
        return post.label == Post.Label.COMPLAINT
    return post.is_complaint


def reply_default_post(incident: Incident, posts: Sequence[Post]) -> Post | None:
    """The post a reply answers when the agent names none: the caller's latest complaint (not
    a thank-you or anything else classified as no complaint that came after it), else their
    latest post not classified as no complaint, else their latest post, else the latest post.
    `posts` are the incident's, oldest first."""
    by_author = [p for p in posts if incident.author_id is not None and p.author_id == incident.author_id]
    for candidates in (
        [p for p in by_author if post_is_complaint(p) is True],
        [p for p in by_author if post_is_complaint(p) is not False],
        by_author,
        list(posts),
    ):
        if candidates:
            return candidates[-1]
    return None


def reply_list() -> QuerySet[Reply]:
    """Replies with their incident and agent."""
    return Reply.objects.select_related("incident", "agent")


def incident_replies(incident: Incident) -> QuerySet[Reply]:
    """The incident's replies, oldest first, with their agent and the post they answer."""
    return reply_list().select_related("post__author").filter(incident=incident).order_by("created_at", "id")


def incident_events(incident: Incident) -> QuerySet[IncidentEvent]:
    """The incident's audit trail, oldest first."""
    return IncidentEvent.objects.filter(incident=incident).select_related("actor").order_by("created_at", "id")


def incident_events_shown(incident: Incident, *, latest: int | None) -> tuple[list[IncidentEvent], int]:
    """The events the incident page shows, oldest first, and how many it leaves out: all of them
    with `latest` None, else the first (why the incident was opened) and the `latest` most
    recent. Routing records an event for every post it links, so a busy incident's history
    grows with its posts; the page renders a bounded part of it, the rest on request."""
    events = incident_events(incident)
    if latest is None:
        return list(events), 0
    # The whole history counted in the same query (a window over it, before the LIMIT).
    recent: list[Any] = list(events.annotate(total=Window(Count("pk"))).order_by("-created_at", "-id")[: latest + 1])
    if len(recent) <= latest:
        return recent[::-1], 0
    first = list(events[:1])
    shown = first + [event for event in recent[:latest][::-1] if event.pk != first[0].pk]
    return shown, max(0, recent[0].total - len(shown))


# -- major incidents and their broadcasts ----------------------------------------------------------


def major_poster_posts(major: Incident) -> list[Post]:
    """The affected posters of a major incident, one post each: every author of a post of the
    major incident or of its children, with that author's latest post among them (the one a
    broadcast answers, on the incident it belongs to). Oldest poster first."""
    posts = (
        post_list()
        .select_related("incident__service")
        .filter(Q(incident=major) | Q(incident__parent=major))
        .order_by("author_id", "-posted_at", "-id")
    )
    latest: dict[int, Post] = {}
    for post in posts:
        latest.setdefault(post.author_id, post)
    return sorted(latest.values(), key=lambda post: (post.posted_at, post.pk))


def broadcast_list(major: Incident) -> QuerySet[Broadcast]:
    """The major incident's broadcasts, newest first, with who wrote and confirmed them and
    their replies counted by status (`sent`, `pending`, `failed`, `canceled`)."""
    return (
        Broadcast.objects.filter(incident=major)
        .select_related("incident", "created_by", "confirmed_by")
        .annotate(
            sent=Count("replies", filter=Q(replies__status=Reply.Status.SENT)),
            pending=Count("replies", filter=Q(replies__status__in=(Reply.Status.QUEUED, Reply.Status.SENDING))),
            failed=Count("replies", filter=Q(replies__status=Reply.Status.FAILED)),
            canceled=Count("replies", filter=Q(replies__status=Reply.Status.CANCELED)),
        )
        .order_by("-created_at", "-id")
    )


def broadcast_replies(broadcast: Broadcast) -> QuerySet[Reply]:
    """The broadcast's replies, one per poster, in the order they were queued."""
    return (
        Reply.objects.filter(broadcast=broadcast)
        .select_related("incident", "post__author", "channel")
        .defer(*CHANNEL_SECRETS)
        .order_by("created_at", "id")
    )


def broadcast_already_had(broadcast: Broadcast) -> set[int]:
    """Authors who already have this message from an earlier confirmed broadcast of the same
    major incident, sent or on its way: of the same kind and text, or any "fixed" message for a
    fixed one (a poster is told once that the outage is over)."""
    earlier = Reply.objects.filter(
        broadcast__incident_id=broadcast.incident_id,
        broadcast__status=Broadcast.Status.CONFIRMED,
        broadcast__kind=broadcast.kind,
        status__in=(Reply.Status.QUEUED, Reply.Status.SENDING, Reply.Status.SENT),
    ).exclude(broadcast=broadcast)
    if broadcast.kind != Broadcast.Kind.FIXED:
        earlier = earlier.filter(broadcast__text=broadcast.text)
    return set(earlier.values_list("post__author_id", flat=True))


def broadcast_fixed_draft(major: Incident) -> Broadcast | None:
    """The "fixed" message waiting for an agent's confirmation, if one was proposed."""
    return (
        Broadcast.objects.filter(incident=major, kind=Broadcast.Kind.FIXED, status=Broadcast.Status.DRAFT)
        .order_by("-created_at", "-id")
        .first()
    )


def status_post_list(major: Incident) -> QuerySet[StatusPost]:
    """The major incident's status posts, one per channel at most, oldest first."""
    return (
        StatusPost.objects.filter(incident=major)
        .select_related("channel", "agent")
        .defer(*CHANNEL_SECRETS)
        .order_by("created_at", "id")
    )


def major_incident_report(*, scope: ReportFilter) -> list[dict[str, Any]]:
    """The major incidents opened in `scope`'s period, for the lead: how long from the first
    complaint to the major incident and to its first confirmed broadcast, and how many affected
    posters have had a reply (any reply sent on their incident) and how many have not."""
    majors = (
        _scoped_incidents(scope)
        .filter(is_major=True, opened_at__gte=scope.since, opened_at__lt=scope.until)
        .select_related("service")
        .order_by("opened_at", "pk")
    )
    rows = []
    for major in majors[:200]:
        posts = Post.objects.filter(Q(incident=major) | Q(incident__parent=major))
        first_post = posts.aggregate(first=Min("posted_at"))["first"]
        first_broadcast = Broadcast.objects.filter(incident=major, status=Broadcast.Status.CONFIRMED).aggregate(
            first=Min("confirmed_at")
        )["first"]
        posters = set(posts.values_list("author_id", flat=True))
        answered = set(
            Reply.objects.filter(
                Q(incident=major) | Q(incident__parent=major),
                status=Reply.Status.SENT,
                post__author_id__in=posters,
            ).values_list("post__author_id", flat=True)
        )
        rows.append(
            {
                "number": major.number,
                "short_description": major.short_description,
                "service": major.service.name if major.service else None,
                "state": major.state,
                "opened_at": major.opened_at.isoformat(),
                "children": major.children.count(),
                "first_post_at": first_post.isoformat() if first_post else None,
                "minutes_to_major": _minutes_between(first_post, major.opened_at),
                "minutes_to_first_broadcast": _minutes_between(first_post or major.opened_at, first_broadcast),
                "posters": len(posters),
                "answered": len(answered),
                "unanswered": len(posters - answered),
            }
        )
    return rows


def _minutes_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, (end - start).total_seconds()) / 60, 1)


def major_children(major: Incident) -> QuerySet[Incident]:
    """The incidents of a major incident (duplicates merged away left out), oldest first."""
    return major.children.filter(merged_into__isnull=True).order_by("opened_at", "pk")


def major_affected_posters(major: Incident) -> QuerySet[Incident]:
    """One row per child incident, i.e. per affected poster: the incident with its `author` and
    `channel`, the poster's first post (`first_post_text`, `first_post_url`, `first_posted_at`,
    `first_post_network`) and `answered`: whether a reply to them has been sent on it."""
    first = Post.objects.filter(incident=OuterRef("pk")).order_by("posted_at", "pk")
    sent = Reply.objects.filter(incident=OuterRef("pk"), status=Reply.Status.SENT)
    return (
        major_children(major)
        .select_related("author", "channel")
        .defer(*CHANNEL_SECRETS)
        .annotate(
            first_post_text=Subquery(first.values("text")[:1]),
            first_post_url=Subquery(first.values("url")[:1]),
            first_posted_at=Subquery(first.values("posted_at")[:1]),
            first_post_network=Subquery(first.values("network")[:1]),
            answered=Exists(sent),
        )
    )


# The spike chart has at most this many bars; a longer spike gets wider ones.
GROWTH_MAX_BUCKETS = 120


@dataclass(frozen=True)
class GrowthPoint:
    start: datetime
    posts: int
    total: int


@dataclass(frozen=True)
class SpikeGrowth:
    """Posts about a major incident per bucket of `bucket_minutes`, from the minute of the first
    post to the minute of the last; `peak` is the most posts in one bucket."""

    first_post_at: datetime | None
    bucket_minutes: int
    points: list[GrowthPoint]

    @property
    def peak(self) -> int:
        return max((p.posts for p in self.points), default=0)

    @property
    def total(self) -> int:
        return self.points[-1].total if self.points else 0


def major_spike_growth(major: Incident) -> SpikeGrowth:
    """How the spike grew: the posts of the major incident's children counted per minute since
    the first (per wider bucket when the spike lasted longer than GROWTH_MAX_BUCKETS minutes)."""
    times = sorted(
        Post.objects.filter(incident__parent=major, incident__merged_into__isnull=True).values_list(
            "posted_at", flat=True
        )
    )
    if not times:
        return SpikeGrowth(first_post_at=None, bucket_minutes=1, points=[])
    start = times[0].replace(second=0, microsecond=0)
    span = int((times[-1] - start).total_seconds() // 60) + 1
    width = max(1, math.ceil(span / GROWTH_MAX_BUCKETS))
    counts = [0] * math.ceil(span / width)
    for at in times:
        counts[int((at - start).total_seconds() // 60) // width] += 1
    points, total = [], 0
    for index, posts in enumerate(counts):
        total += posts
        points.append(GrowthPoint(start=start + timedelta(minutes=index * width), posts=posts, total=total))
    return SpikeGrowth(first_post_at=times[0], bucket_minutes=width, points=points)


def incidents_by_number(numbers: Sequence[str], *, field: str = "incidents") -> list[Incident]:
    """The incidents named, in the order named (each once). Raises ApplicationError naming the
    numbers that match no incident."""
    wanted = list(dict.fromkeys(numbers))
    # A NUL cannot be in a number, and PostgreSQL refuses it in a query.
    found = {i.number: i for i in Incident.objects.filter(number__in=[n for n in wanted if "\x00" not in n])}
    unknown = [n for n in wanted if n not in found]
    if unknown:
        raise ApplicationError(f"no incident {clean_text(', '.join(unknown))[:200]}", field=field)
    return [found[n] for n in wanted]


# -- queue search, views and the live check ---------------------------------------------------------

# Language-neutral words: posts come in many languages, and prefix matching ("outag" finds
# "outage") stands in for stemming. The GIN indexes of migration 0021 are on these expressions.
SEARCH_CONFIG = "simple"
SEARCH_MAX_WORDS = 8
_SEARCH_WORD = re.compile(r"\w+")


def search_words(text: str) -> list[str]:
    """The words of a search box, lower-cased, at most SEARCH_MAX_WORDS, each once."""
    return list(dict.fromkeys(w.lower() for w in _SEARCH_WORD.findall(text or "")))[:SEARCH_MAX_WORDS]


def incident_search_vector() -> SearchVector:
    return SearchVector("number", "short_description", config=SEARCH_CONFIG)


def post_search_vector() -> SearchVector:
    return SearchVector("text", config=SEARCH_CONFIG)


def author_search_vector() -> SearchVector:
    return SearchVector("handle", "name", config=SEARCH_CONFIG)


def _search_query(words: list[str]) -> SearchQuery:
    # Raw tsquery built only from \w+ words: every word, each as a prefix.
    return SearchQuery(" & ".join(f"{w}:*" for w in words), search_type="raw", config=SEARCH_CONFIG)


# Up to this many matching posters are looked up first and named to the query by id: the
# planner then reads their posts by author, and skips the posters' part when none match.
SEARCH_POSTERS_NAMED = 1_000


def incident_search(incidents: QuerySet[Incident], text: str) -> QuerySet[Incident]:
    """`incidents` whose number or short description, or one of whose posts' text, or whose
    posts' poster (handle or name) holds every word of `text` (as word prefixes). Each source
    must hold all the words. A number also matches by its digits ("1001" finds INC0001001).

    PostgreSQL: full-text search on the GIN expression indexes of incidents, linked posts and
    authors (each narrows to ids first, so the cost follows the matches, not the table sizes);
    other databases: case-insensitive substrings."""
    words = search_words(text)
    if not words:
        return incidents
    if connection.vendor != "postgresql":
        return incident_search_substring(incidents, text)
    query = _search_query(words)
    own = Incident.objects.annotate(sv=incident_search_vector()).filter(sv=query).order_by().values("pk")
    # incident__isnull=False: the index of linked posts' text (migration 0027) serves it.
    by_text = (
        Post.objects.annotate(sv=post_search_vector())
        .filter(sv=query, incident__isnull=False)
        .order_by()
        .values("incident_id")
    )
    parts = [by_text]
    posters = _search_posters(query)
    if posters:
        parts += [
            Post.objects.filter(author__in=posters, incident__isnull=False).order_by().values("incident_id"),
            Incident.objects.filter(author__in=posters).order_by().values("pk"),
        ]
    digits = [w for w in words if w.isdigit()]
    if len(digits) == 1 and len(words) == 1:
        # iendswith renders as UPPER(number::text) LIKE, the trigram index of migration 0027.
        parts.append(Incident.objects.filter(number__iendswith=digits[0]).order_by().values("pk"))
    # Each source a set of ids the planner hashes once (a hashed SubPlan) and probes as it walks
    # the incidents in the list's order, so a page of a broad search stops after its rows instead
    # of joining and sorting every match.
    match = Q(pk__in=own)
    for part in parts:
        match |= Q(pk__in=part)
    return incidents.filter(match)


def _search_posters(query: SearchQuery) -> list[int] | QuerySet[Any]:
    """The ids of the authors matching `query` when there are at most SEARCH_POSTERS_NAMED
    (often none: a search is seldom for a poster), else the authors' query itself."""
    authors = Author.objects.annotate(sv=author_search_vector()).filter(sv=query).order_by().values("pk")
    named = [row["pk"] for row in authors[: SEARCH_POSTERS_NAMED + 1]]
    return named if len(named) <= SEARCH_POSTERS_NAMED else authors


def incident_search_substring(incidents: QuerySet[Incident], text: str) -> QuerySet[Incident]:
    """incident_search where full-text search is not at hand (SQLite): each word a
    case-insensitive substring of the number, short description, a post's text or a poster."""
    for word in search_words(text):
        posts = Post.objects.filter(
            Q(text__icontains=word) | Q(author__handle__icontains=word) | Q(author__name__icontains=word),
            incident__isnull=False,
        ).values("incident_id")
        incidents = incidents.filter(
            Q(number__icontains=word)
            | Q(short_description__icontains=word)
            | Q(author__handle__icontains=word)
            | Q(author__name__icontains=word)
            | Q(pk__in=posts)
        )
    return incidents


def post_search(posts: QuerySet[Post], text: str) -> QuerySet[Post]:
    """`posts` whose text, or whose poster's handle or name, holds every word of `text` (as word
    prefixes); full-text on PostgreSQL, substrings elsewhere."""
    words = search_words(text)
    if not words:
        return posts
    if connection.vendor != "postgresql":
        for word in words:
            posts = posts.filter(
                Q(text__icontains=word) | Q(author__handle__icontains=word) | Q(author__name__icontains=word)
            )
        return posts
    query = _search_query(words)
    # Linked or not, each half the condition of one of the two text indexes (migrations 0027 and
    # 0030): the planner reads both and joins their matches.
    by_text = (
        Post.objects.annotate(sv=post_search_vector())
        .filter(Q(sv=query, incident__isnull=True) | Q(sv=query, incident__isnull=False))
        .values("pk")
    )
    authors = Author.objects.annotate(sv=author_search_vector()).filter(sv=query).values("pk")
    return posts.filter(Q(pk__in=by_text) | Q(author__in=authors))


class QueueView(models.TextChoices):
    OPEN = "open", "Open"
    MINE = "mine", "Mine"
    UNASSIGNED = "unassigned", "Unassigned"
    BREACHING = "breaching", "Breaching soon"
    ON_HOLD = "on_hold", "On hold"
    DONE = "done", "Resolved and closed"
    ALL = "all", "All"


def queue_view(
    incidents: QuerySet[Incident], view: str, *, user: Any, now: datetime | None = None
) -> QuerySet[Incident]:
    """`incidents` as the named queue view shows them: open (the default), mine and unassigned
    (open ones), breaching soon (open, a running clock due within SOCIALITSM_QUEUE_BREACHING_MINUTES
    or already past due), on hold, resolved and closed, or all of them whatever their state.

    Raises ApplicationError for an unknown view."""
    if view not in QueueView.values:
        raise ApplicationError(f"unknown view {clean_text(view)[:40]!r}", field="view")
    if view == QueueView.ALL:
        return incidents
    if view == QueueView.DONE:
        return incidents.filter(state__in=(Incident.State.RESOLVED, Incident.State.CLOSED))
    if view == QueueView.ON_HOLD:
        return incidents.filter(state=Incident.State.ON_HOLD)
    incidents = incidents.filter(state__in=Incident.OPEN_STATES)
    if view == QueueView.MINE:
        user_id = getattr(user, "pk", None)
        return incidents.filter(assignee_id=user_id) if user_id is not None else incidents.none()
    if view == QueueView.UNASSIGNED:
        return incidents.filter(assignee__isnull=True)
    if view == QueueView.BREACHING:
        cutoff = (now or timezone.now()) + timedelta(minutes=conf.QUEUE_BREACHING_MINUTES)
        # breach_due_at is the earliest due time of the incident's running clocks, stored and indexed.
        return incidents.filter(breach_due_at__lte=cutoff)
    return incidents


def queue_stamp() -> int:
    """What the live queue compares to see whether anything changed: the latest audit event.
    Every opening, assignment, state change, link and SLA warning or breach writes one."""
    return IncidentEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def incident_state_counts() -> dict[str, int]:
    """How many incidents are in each state: on PostgreSQL the few rows of IncidentStateTally
    that its triggers keep (migration 0026), elsewhere a count of the incidents."""
    if connection.vendor == "postgresql":
        rows = IncidentStateTally.objects.order_by().values_list("state").annotate(n=Sum("incidents"))
        return {state: n for state, n in rows if n}
    return dict(Incident.objects.order_by().values_list("state").annotate(n=Count("*")))


@dataclass(frozen=True)
class QueueCounts:
    """What the queue shows beside its views and filters. `views`: how many incidents each queue
    view holds. `open`: of the open incidents, all, mine, unassigned and majors, and by service
    (slug), priority and state. `states`: all incidents by state (incident_state_counts)."""

    views: dict[str, int]
    open: dict[str, Any]
    states: dict[str, int]


def queue_counts(user: Any, *, now: datetime | None = None) -> QueueCounts:
    """The queue's counts in two reads: incidents by state (incident_state_counts), and the
    open ones grouped by what the filters and views split them by (an index-only scan of the
    open incidents' covering index); the rest is added up here."""
    cutoff = (now or timezone.now()) + timedelta(minutes=conf.QUEUE_BREACHING_MINUTES)
    user_id = getattr(user, "pk", None)
    by_state = incident_state_counts()
    groups = (
        Incident.objects.filter(state__in=Incident.OPEN_STATES)
        .order_by()
        .values_list("state", "priority", "service__slug")
        .annotate(
            n=Count("*"),
            mine=Count("state", filter=Q(assignee_id=user_id)) if user_id is not None else Value(0),
            unassigned=Count("state", filter=Q(assignee_id__isnull=True)),
            majors=Count("state", filter=Q(is_major=True)),
            breaching=Count("state", filter=Q(breach_due_at__lte=cutoff)),
        )
    )
    totals = {"all": 0, "mine": 0, "unassigned": 0, "majors": 0, "breaching": 0}
    services: dict[str, int] = {}
    priorities: dict[int, int] = {}
    states: dict[str, int] = {}
    for state, priority, slug, n, mine, unassigned, majors, breaching in groups:
        for key, value in (
            ("all", n),
            ("mine", mine),
            ("unassigned", unassigned),
            ("majors", majors),
            ("breaching", breaching),
        ):
            totals[key] += value
        if slug is not None:
            services[slug] = services.get(slug, 0) + n
        priorities[priority] = priorities.get(priority, 0) + n
        states[state] = states.get(state, 0) + n
    done = sum(by_state.get(state, 0) for state in (Incident.State.RESOLVED, Incident.State.CLOSED))
    views = {
        QueueView.OPEN: totals["all"],
        QueueView.MINE: totals["mine"],
        QueueView.UNASSIGNED: totals["unassigned"],
        QueueView.BREACHING: totals["breaching"],
        QueueView.ON_HOLD: by_state.get(Incident.State.ON_HOLD, 0),
        QueueView.DONE: done,
        QueueView.ALL: sum(by_state.values()),
    }
    opened = {
        "all": totals["all"],
        "mine": totals["mine"],
        "unassigned": totals["unassigned"],
        "majors": totals["majors"],
        "service": services,
        "priority": priorities,
        "state": states,
    }
    return QueueCounts(views={str(k): v for k, v in views.items()}, open=opened, states=by_state)


def queue_view_counts(user: Any) -> dict[str, int]:
    """How many incidents each queue view holds (see queue_counts)."""
    return queue_counts(user).views


def saved_view_list(user: Any) -> QuerySet[SavedView]:
    """The user's saved views and those others shared, by name."""
    return SavedView.objects.filter(Q(user_id=getattr(user, "pk", None)) | Q(shared=True)).select_related("user")


# -- notifications ---------------------------------------------------------------------------


def notification_list(*, user: Any) -> QuerySet[Notification]:
    """The person's notifications shown in the app (not those wanted by e-mail only), newest first."""
    return (
        Notification.objects.filter(user=user, in_app=True)
        .select_related("incident", "channel")
        .defer(*CHANNEL_SECRETS)
        .order_by("-created_at", "-id")
    )


def notification_unread_count(user: Any) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(user=user, in_app=True, read_at__isnull=True).count()


def _login_field() -> str:
    """The user model's login field (`username`, or e.g. `email` in a host with its own model)."""
    return get_user_model().USERNAME_FIELD


# -- the incident page's workspace -----------------------------------------------------------------


def incident_notes(incident: Incident) -> QuerySet[IncidentNote]:
    """The incident's internal notes, oldest first, with their author."""
    return IncidentNote.objects.filter(incident=incident).select_related("author").order_by("created_at", "id")


def reply_template_list() -> QuerySet[ReplyTemplate]:
    """The team's canned replies by name."""
    return ReplyTemplate.objects.select_related("created_by").order_by("name", "id")


def poster_authors(author: Author) -> QuerySet[Author]:
    """`author` and the same person's accounts elsewhere: authors linked to the same known
    caller (e-mail address or employee id)."""
    same = Q(pk=author.pk)
    if author.caller_email:
        same |= Q(caller_email__iexact=author.caller_email)
    if author.employee_id:
        same |= Q(employee_id=author.employee_id)
    return Author.objects.filter(same)


def poster_incidents(incident: Incident) -> QuerySet[Incident]:
    """The poster's other incidents (any of their accounts opened them or posted in them),
    newest first."""
    if incident.author is None:
        return Incident.objects.none()
    authors = poster_authors(incident.author)
    # One UNION of two index lookups: an OR of both conditions made PostgreSQL read every incident.
    theirs = Incident.objects.filter(author__in=authors).order_by().values("pk")
    posted_in = Post.objects.filter(author__in=authors, incident__isnull=False).order_by().values("incident_id")
    return (
        Incident.objects.filter(pk__in=theirs.union(posted_in))
        .exclude(pk=incident.pk)
        .select_related("service", "assignee")
        .order_by("-opened_at", "-pk")
    )


def poster_posts(incident: Incident) -> QuerySet[Post]:
    """The poster's posts (any of their accounts) that are not part of `incident`, newest first:
    the ones of other incidents and the ones triage kept."""
    if incident.author is None:
        return Post.objects.none()
    authors = poster_authors(incident.author)
    return (
        Post.objects.filter(author__in=authors)
        .exclude(incident=incident)
        .select_related("author", "channel", "incident")
        .defer(*CHANNEL_SECRETS)
        .order_by("-posted_at", "-pk")
    )
