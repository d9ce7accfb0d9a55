"""SLA service: which policy applies, replaying an incident's history into its clocks, and the sweep
that emits warnings and breaches once each. The time maths lives in socialitsm.sla (no ORM)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from socialitsm import sla
from socialitsm.conf import conf
from socialitsm.db import rows_insert, rows_update
from socialitsm.models import Channel, Incident, IncidentEvent, Post, Reply, SlaClock, SlaPolicy

from .events import event_build, events_record
from .figures import incidents_figures_refresh

logger = logging.getLogger(__name__)

CLOCK_FIELDS = (
    "policy",
    "started_at",
    "target_minutes",
    "due_at",
    "warn_at",
    "stopped_at",
    "elapsed_seconds",
    "paused_seconds",
    "state",
    "computed_at",
    "warned_at",
    "breached_at",
)
RESPONSE_TARGETS = (SlaClock.Target.FIRST_RESPONSE, SlaClock.Target.NEXT_RESPONSE)


def sla_policies_load() -> list[SlaPolicy]:
    return list(SlaPolicy.objects.filter(active=True).select_related("calendar").order_by("position", "priority", "id"))


def sla_policy_match(incident: Incident, policies: Iterable[SlaPolicy], network: str) -> SlaPolicy | None:
    """The first policy, in order, whose conditions the incident meets."""
    return next((policy for policy in policies if policy.matches(incident, network)), None)


def sla_targets(policy: SlaPolicy) -> sla.Targets:
    """Raises sla.CalendarError when the policy's calendar cannot be used."""
    return sla.Targets(
        first_response=policy.first_response_minutes,
        next_response=policy.next_response_minutes,
        resolution=policy.resolution_minutes,
        pause_states=frozenset(policy.pause_states or ()),
        calendar=policy.calendar.as_calendar() if policy.calendar else sla.ALWAYS,
        warn_ratio=conf.SLA_WARN_RATIO,
    )


def incidents_sla_recompute(*, incident_ids: Iterable[int], now: datetime | None = None) -> int:
    """Replay the incidents' clocks from their history (posts, state changes, replies sent) with
    the policy that applies now, and store them. Idempotent; the incidents are locked while it
    runs, so two recomputes of one incident queue. Returns how many incidents were evaluated."""
    ids = sorted(set(incident_ids))
    if not ids:
        return 0
    now = now or timezone.now()
    with transaction.atomic():
        incidents = list(Incident.objects.select_for_update(of=("self",)).filter(pk__any=ids).order_by("pk"))
        loaded = _HistoryLoader(ids)
        policies = sla_policies_load()
        networks = dict(
            Channel.objects.filter(pk__in={i.channel_id for i in incidents if i.channel_id}).values_list(
                "pk", "network"
            )
        )
        writes = _Writes()
        for incident in incidents:
            _incident_recompute(incident, loaded, policies, networks.get(incident.channel_id, ""), now, writes)
        writes.save()
        incidents_figures_refresh(incident_ids=ids)
    return len(incidents)


def incident_sla_recompute(*, incident: Incident, now: datetime | None = None) -> None:
    incidents_sla_recompute(incident_ids=[incident.pk], now=now)


SUMMARY_FIELDS = (
    "sla_policy_id",
    "sla_started_at",
    "ingest_lag_seconds",
    "response_due_at",
    "resolution_due_at",
    "response_breached",
    "resolution_breached",
)


class _Writes:
    """What a batch of replays changes, written in one statement per kind of row."""

    def __init__(self) -> None:
        self.events: list[IncidentEvent] = []
        self.incidents: list[Incident] = []
        self.clocks_changed: list[SlaClock] = []
        self.clocks_created: list[SlaClock] = []
        self.clocks_gone: list[int] = []

    def save(self) -> None:
        if self.clocks_gone:
            # Targets the current policy no longer measures (or no policy applies any more).
            SlaClock.objects.filter(pk__in=self.clocks_gone).delete()
        rows_update(SlaClock, self.clocks_changed, CLOCK_FIELDS)
        if self.clocks_created:
            rows_insert(SlaClock, self.clocks_created, batch_size=500)
        rows_update(Incident, self.incidents, SUMMARY_FIELDS)
        events_record(self.events, batch_size=500)


class _HistoryLoader:
    """The history of a batch of incidents in a few queries."""

    def __init__(self, ids: list[int]) -> None:
        # Only what the clocks read: each incident's first post, and the posts of its poster (an
        # incident joined by thousands of other posts is not loaded whole on each follow-up).
        first = Post.objects.filter(incident_id=OuterRef("pk")).order_by("posted_at", "id")
        self.first: dict[int, tuple[datetime, datetime]] = {
            pk: (posted_at, ingested_at)
            for pk, posted_at, ingested_at in Incident.objects.filter(pk__any=ids)
            .annotate(
                first_posted=Subquery(first.values("posted_at")[:1]),
                first_ingested=Subquery(first.values("ingested_at")[:1]),
            )
            .values_list("pk", "first_posted", "first_ingested")
            if posted_at is not None
        }
        self.states: dict[int, list[tuple[datetime, str, str]]] = defaultdict(list)
        for incident_id, at, old, new in (
            IncidentEvent.objects.filter(incident_id__any=ids, kind=IncidentEvent.Kind.CHANGED, field="state")
            .order_by("created_at", "id")
            .values_list("incident_id", "created_at", "old_value", "new_value")
        ):
            self.states[incident_id].append((at, old, new))
        self.replies: dict[int, list[datetime]] = defaultdict(list)
        for incident_id, sent_at in Reply.objects.filter(
            incident_id__any=ids, status=Reply.Status.SENT, sent_at__isnull=False
        ).values_list("incident_id", "sent_at"):
            if sent_at is not None:
                self.replies[incident_id].append(sent_at)
        # The poster's posts only start next-response clocks, which only an incident with a
        # reply sent has: the follow-ups of the others (most, in a busy routing batch) are not read.
        self.poster_posts: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
        answered = sorted(self.replies)
        if answered:
            for incident_id, posted_at, ingested_at in (
                Post.objects.filter(incident_id__any=answered, author_id=F("incident__author_id"))
                .order_by("posted_at", "id")
                .values_list("incident_id", "posted_at", "ingested_at")
            ):
                self.poster_posts[incident_id].append((posted_at, ingested_at))
        self.clocks: dict[int, dict[tuple[str, int], SlaClock]] = defaultdict(dict)
        for clock in SlaClock.objects.filter(incident_id__any=ids):
            self.clocks[clock.incident_id][(clock.target, clock.cycle)] = clock
        self.skewed = set(
            IncidentEvent.objects.filter(incident_id__any=ids, kind=IncidentEvent.Kind.CLOCK_SKEW).values_list(
                "incident_id", flat=True
            )
        )

    def history(self, incident: Incident) -> tuple[sla.History, timedelta, timedelta | None]:
        """The clock history, the skew clamped off the first post, and the first post's ingest lag."""
        first = self.first.get(incident.pk)
        if first:
            posted_at, ingested_at = first
            start, skew = sla.clock_start(posted_at, ingested_at)
            lag: timedelta | None = max(ingested_at - posted_at, timedelta(0))
        else:
            start, skew, lag = incident.opened_at, timedelta(0), None
        changes = self.states.get(incident.pk, [])
        initial = changes[0][1] if changes else incident.state
        history = sla.History(
            start=start,
            states=[(start, initial), *((at, new) for at, _, new in changes)],
            poster_posts=[
                sla.clock_start(posted_at, ingested_at)[0] for posted_at, ingested_at in self.poster_posts[incident.pk]
            ],
            replies_sent=sorted(self.replies.get(incident.pk, [])),
        )
        return history, skew, lag


def _incident_recompute(
    incident: Incident, loaded: _HistoryLoader, policies: list[SlaPolicy], network: str, now: datetime, writes: _Writes
) -> None:
    events = writes.events
    history, skew, lag = loaded.history(incident)
    if skew and incident.pk not in loaded.skewed:
        events.append(
            event_build(
                incident,
                IncidentEvent.Kind.CLOCK_SKEW,
                old=f"{history.start + skew:%Y-%m-%d %H:%M:%S} UTC",
                new=f"{history.start:%Y-%m-%d %H:%M:%S} UTC",
                message=f"The post is dated {int(skew.total_seconds())} s after it reached us; "
                "the SLA clock starts when it reached us.",
            )
        )
    policy = sla_policy_match(incident, policies, network)
    if policy is not None and policy.pk != incident.sla_policy_id and incident.sla_policy_id is not None:
        events.append(
            event_build(
                incident,
                IncidentEvent.Kind.CHANGED,
                field="sla_policy",
                old=SlaPolicy.objects.filter(pk=incident.sla_policy_id).first(),
                new=policy,
            )
        )
    clocks: list[sla.Clock] = []
    if policy is not None:
        try:
            clocks = sla.clocks_replay(history, sla_targets(policy), now)
        except sla.CalendarError:
            logger.exception("SLA policy %s has an unusable calendar; %s keeps its clocks", policy.pk, incident.number)
            return
    _clocks_store(incident, policy, clocks, loaded.clocks.get(incident.pk, {}), now, writes)
    response = [c for c in clocks if c.target in RESPONSE_TARGETS]
    current = next((c for c in reversed(response) if c.stopped_at is None), response[0] if response else None)
    resolution = next((c for c in clocks if c.target == sla.RESOLUTION), None)
    summary = {
        "sla_policy_id": policy.pk if policy else None,
        "sla_started_at": history.start,
        "ingest_lag_seconds": _int_field(lag.total_seconds()) if lag is not None else None,
        "response_due_at": current.due_at if current else None,
        "resolution_due_at": resolution.due_at if resolution else None,
        "response_breached": any(c.state == sla.BREACHED for c in response),
        "resolution_breached": bool(resolution and resolution.state == sla.BREACHED),
    }
    # Most replays (a follow-up post before any reply) change nothing: write only what moved.
    if any(getattr(incident, name) != value for name, value in summary.items()):
        for name, value in summary.items():
            setattr(incident, name, value)
        writes.incidents.append(incident)


# The largest value a PositiveIntegerField holds on every supported database.
INT_FIELD_MAX = 2**31 - 1


def _int_field(value: float) -> int:
    """A derived count for a PositiveIntegerField, clamped: a post dated decades ago must never
    make routing fail on "integer out of range"."""
    return min(max(int(value), 0), INT_FIELD_MAX)


def _clocks_store(
    incident: Incident,
    policy: SlaPolicy | None,
    clocks: list[sla.Clock],
    existing: dict[tuple[str, int], SlaClock],
    now: datetime,
    writes: _Writes,
) -> None:
    changed, created = writes.clocks_changed, writes.clocks_created
    for clock in clocks:
        outcome = {
            "policy_id": policy.pk if policy else None,
            "started_at": clock.started_at,
            "target_minutes": _int_field(clock.target_time.total_seconds() // 60),
            "due_at": clock.due_at,
            "warn_at": clock.warn_at,
            "stopped_at": clock.stopped_at,
            "state": clock.state,
        }
        row = existing.pop(clock.key, None)
        # An unchanged row keeps its counts as of its own computed_at, which stay exact.
        if row is not None and all(getattr(row, name) == value for name, value in outcome.items()):
            continue
        row = row or SlaClock(incident=incident, target=clock.target, cycle=clock.cycle)
        for name, value in outcome.items():
            setattr(row, name, value)
        row.elapsed_seconds = _int_field(clock.elapsed.total_seconds())
        row.paused_seconds = _int_field(clock.paused.total_seconds())
        row.computed_at = now
        # Re-targeted past a warning or breach already announced: that one no longer holds, and
        # crossing the new time is a new one to announce.
        if row.warned_at is not None and (row.warn_at is None or row.warn_at > now):
            row.warned_at = None
        if row.breached_at is not None and row.state != SlaClock.State.BREACHED:
            row.breached_at = None
        (changed if row.pk else created).append(row)
    writes.clocks_gone.extend(row.pk for row in existing.values())


def sla_recompute_open(*, now: datetime | None = None, batch: int = 200) -> int:
    """Re-evaluate every open incident, e.g. after a calendar or policy was edited."""
    ids = list(Incident.objects.open().order_by("pk").values_list("pk", flat=True))
    for i in range(0, len(ids), batch):
        incidents_sla_recompute(incident_ids=ids[i : i + batch], now=now)
    return len(ids)


def sla_rules_changed() -> None:
    """A policy or calendar changed: re-evaluate the open incidents once the change is committed."""

    def enqueue() -> None:
        from socialitsm.tasks import sla_recompute_open_task

        sla_recompute_open_task.delay()

    transaction.on_commit(enqueue, robust=True)


def sla_sweep(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Emit an event for each clock that crossed its warning or due time. Each clock is claimed by
    a conditional UPDATE in the transaction that writes its event, so however many workers sweep
    at once, each warning and each breach is announced exactly once."""
    now = now or timezone.now()
    warned = breached = 0
    warning = SlaClock.objects.filter(
        stopped_at__isnull=True, warned_at__isnull=True, warn_at__lte=now, due_at__gt=now
    ).order_by("warn_at", "pk")
    for clock in warning.select_related("incident", "policy")[:batch]:
        with transaction.atomic():
            _incident_lock(clock.incident_id)
            claimed = SlaClock.objects.filter(
                pk=clock.pk, stopped_at__isnull=True, warned_at__isnull=True, warn_at__lte=now, due_at__gt=now
            )
            if claimed.update(warned_at=now):
                clock.refresh_from_db()
                events_record([_sla_event(clock, IncidentEvent.Kind.SLA_WARNING)])
                warned += 1
    # Still running past its due time, or stopped after it (a late reply the sweep had not seen).
    late = Q(stopped_at__isnull=True) | Q(stopped_at__gt=F("due_at"))
    breaching = SlaClock.objects.filter(late, breached_at__isnull=True, due_at__lte=now).order_by("due_at", "pk")
    for clock in breaching.select_related("incident", "policy")[:batch]:
        with transaction.atomic():
            _incident_lock(clock.incident_id)
            claimed = SlaClock.objects.filter(late, pk=clock.pk, breached_at__isnull=True, due_at__lte=now)
            if claimed.update(breached_at=now):
                clock.refresh_from_db()
                SlaClock.objects.filter(pk=clock.pk, state=SlaClock.State.RUNNING).update(state=SlaClock.State.BREACHED)
                flag = "resolution_breached" if clock.target == SlaClock.Target.RESOLUTION else "response_breached"
                Incident.objects.filter(pk=clock.incident_id).update(**{flag: True})
                events_record([_sla_event(clock, IncidentEvent.Kind.SLA_BREACHED)])
                breached += 1
    return {"warned": warned, "breached": breached}


def _incident_lock(incident_id: int) -> None:
    """Wait for a replay of this incident to commit, so a clock it re-targets is judged by its new
    times (replays lock the incident the same way, before its clocks)."""
    list(Incident.objects.select_for_update().filter(pk=incident_id).values_list("pk", flat=True))


def _sla_event(clock: SlaClock, kind: str) -> IncidentEvent:
    label = SlaClock.Target(clock.target).label
    if clock.target == SlaClock.Target.NEXT_RESPONSE:
        label = f"{label} #{clock.cycle}"
    assert clock.due_at is not None
    due = f"{clock.due_at:%Y-%m-%d %H:%M} UTC"
    policy = f" ({clock.policy.name})" if clock.policy else ""
    if kind == IncidentEvent.Kind.SLA_WARNING:
        message = (
            f"{label} is due {due}{policy}: {conf.SLA_WARN_RATIO:.0%} of the {clock.target_minutes} min target used."
        )
    else:
        message = f"{label} was due {due}{policy}: the {clock.target_minutes} min target is breached."
    return event_build(clock.incident, kind, field=clock.target, new=clock.due_at.isoformat(), message=message)
