"""Major incidents: one outage, many posters. Spike detection in routing, linking incidents to a
major incident by hand, and merging true duplicates (and undoing either).

Locks, always taken in this order so that no two of these paths can deadlock: the authors of a
routing batch, then the Service rows (by id), then incident rows (by id). The decision to open a
major incident for a service is taken under its Service row lock, so concurrent routing workers
open one, never two.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from socialitsm.conf import conf
from socialitsm.exceptions import ApplicationError, ConflictError
from socialitsm.models import Incident, IncidentEvent, IncidentMerge, Post, Reply, Service, priority_for
from socialitsm.roles import is_lead
from socialitsm.text import shorten

from .events import event_build, event_record, events_record
from .incidents import group_default, incident_numbers_next, incident_update
from .itsm_sync import incident_links_changed
from .sla import incidents_sla_recompute

# Events that belong to a post or a reply: they move with them when duplicates are merged. The
# duplicate keeps its own lifecycle (opened, changes, SLA and ITSM events), which its SLA clocks
# are replayed from.
MOVING_EVENT_KINDS = (
    IncidentEvent.Kind.POST_LINKED,
    IncidentEvent.Kind.PROMOTED,
    IncidentEvent.Kind.POST_DELETED,
    IncidentEvent.Kind.REPLY_QUEUED,
    IncidentEvent.Kind.REPLY_SENT,
    IncidentEvent.Kind.REPLY_FAILED,
    IncidentEvent.Kind.REPLY_DELAYED,
    IncidentEvent.Kind.REPLY_RETRIED,
    IncidentEvent.Kind.REPLY_CANCELED,
    IncidentEvent.Kind.FIRST_RESPONSE,
)
FINAL_STATES = (Incident.State.CLOSED, Incident.State.CANCELED)


def spike_thresholds(service: Service) -> tuple[int, int]:
    """(distinct authors, window in minutes) that make a spike for `service`: its own values, else
    SOCIALITSM_SPIKE_AUTHORS and SOCIALITSM_SPIKE_WINDOW_MINUTES."""
    return (
        service.spike_authors or conf.SPIKE_AUTHORS,
        service.spike_window_minutes or conf.SPIKE_WINDOW_MINUTES,
    )


# -- spike detection in routing ---------------------------------------------------------------------


@dataclass
class _ServiceSpike:
    service: Service
    threshold: int
    window: int
    new: list[Incident]
    authors_before: int = 0
    major: Incident | None = None
    children_by_author: dict[int, Incident] = field(default_factory=dict)
    opens_major: bool = False

    @property
    def authors(self) -> int:
        return self.authors_before + len({i.author_id for i in self.new if i.author_id is not None})


class RoutingSpikes:
    """The spike decision for the incidents a routing batch is about to open. Must be built inside
    routing's transaction, before those incidents are saved: it locks their services' rows until
    the transaction commits, so the next worker counts this batch's incidents too.

    Per service it costs the lock and one aggregate query (is a major incident open, how many
    other people complained within the window); a major incident already open costs one more
    (its open children by the batch's authors)."""

    def __init__(self, incidents: list[Incident], *, now: datetime, default_group: Group | None) -> None:
        self.now = now
        self.default_group = default_group
        by_service: dict[int, list[Incident]] = defaultdict(list)
        for incident in incidents:
            if incident.service_id is not None:
                by_service[incident.service_id].append(incident)
        self.spikes: list[_ServiceSpike] = []
        if not by_service or not conf.SPIKE_DETECTION:
            return
        # FOR NO KEY UPDATE: exclusive among spike decisions, while incidents referring to the
        # service (their foreign key takes a key-share lock) are still written freely.
        services = (
            Service.objects.select_for_update(no_key=True)
            .filter(pk__in=by_service)
            .only("pk", "slug", "name", "owner_group_id", "spike_authors", "spike_window_minutes")
            .order_by("pk")
        )
        for service in services:
            threshold, window = spike_thresholds(service)
            spike = _ServiceSpike(service=service, threshold=threshold, window=window, new=by_service[service.pk])
            self._read(spike)
            self.spikes.append(spike)

    def _read(self, spike: _ServiceSpike) -> None:
        authors = {i.author_id for i in spike.new if i.author_id is not None}
        since = self.now - timedelta(minutes=spike.window)
        recent = Q(is_major=False, parent__isnull=True, opened_at__gte=since) & ~Q(state=Incident.State.CANCELED)
        # All the service's major incidents (few; their partial index finds them), the open one
        # picked by the aggregate: a state condition here would send the planner to the state index.
        found = Incident.objects.filter(recent | Q(is_major=True), service_id=spike.service.pk).aggregate(
            others=Count("author_id", distinct=True, filter=Q(is_major=False) & ~Q(author_id__any=authors)),
            major=Min("pk", filter=Q(is_major=True, state__in=Incident.OPEN_STATES)),
        )
        spike.authors_before = found["others"] or 0
        if found["major"] is not None:
            # The major incident and its children by this batch's authors, in one query (open ones
            # kept here: a state condition would send the planner to the state index).
            mine = Q(parent_id=found["major"], author_id__any=authors)
            for row in (
                Incident.objects.filter(Q(pk=found["major"]) | mine)
                .only("pk", "number", "state", "author_id", "parent_id")
                .order_by("opened_at", "pk")
            ):
                if row.pk == found["major"]:
                    spike.major = row
                elif row.author_id is not None and row.state in Incident.OPEN_STATES:
                    # Oldest first: an author's newest open child wins.
                    spike.children_by_author[row.author_id] = row
        elif spike.authors >= spike.threshold:
            spike.opens_major = True

    def existing_children(self) -> dict[int, Incident]:
        """New incidents (by id()) that are not needed: their author already has an open child of
        the open major incident, which the post joins instead."""
        replaced: dict[int, Incident] = {}
        for spike in self.spikes:
            for incident in spike.new:
                child = spike.children_by_author.get(incident.author_id) if incident.author_id else None
                if child is not None:
                    replaced[id(incident)] = child
            spike.new = [i for i in spike.new if id(i) not in replaced]
        return replaced

    def majors_build(self) -> list[Incident]:
        """The unsaved, unnumbered major incidents this batch opens."""
        majors = []
        for spike in self.spikes:
            if spike.opens_major:
                spike.major = _major_from_spike(spike, self.default_group)
                majors.append(spike.major)
        return majors

    def parents_assign(self) -> None:
        """Set each new incident's parent (after the majors are saved)."""
        for spike in self.spikes:
            for incident in spike.new:
                if spike.major is not None:
                    incident.parent = spike.major

    def events(self, opened: set[int]) -> list[IncidentEvent]:
        """After the new incidents are saved: the major incidents opened now (`opened`) take the
        service's other open incidents of the window as children, with link events on both sides."""
        events: list[IncidentEvent] = []
        for spike in self.spikes:
            major = spike.major
            if major is None:
                continue
            if major.pk not in opened:
                # Joiners of an open major incident say so in their own "opened" event (routing
                # writes it), which keeps a burst's extra rows at none.
                continue
            how = "spike detection"
            events.append(
                event_build(
                    major,
                    IncidentEvent.Kind.OPENED,
                    message=f"{spike.authors} people complained about {spike.service.name} within "
                    f"{spike.window} minutes (threshold {spike.threshold})",
                )
            )
            since = self.now - timedelta(minutes=spike.window)
            earlier = list(
                Incident.objects.filter(
                    service_id=spike.service.pk,
                    is_major=False,
                    parent__isnull=True,
                    opened_at__gte=since,
                    state__in=Incident.OPEN_STATES,
                )
                .order_by("pk")
                .values_list("pk", "number")
            )
            Incident.objects.filter(pk__in=[pk for pk, _ in earlier]).update(parent=major, updated_at=self.now)
            for pk, _ in earlier:
                # Already open, so perhaps already in a suite: their new link is pushed there.
                incident_links_changed(incident=Incident(pk=pk, parent=major))
            children = earlier + [(i.pk, i.number) for i in spike.new]
            for pk, number in children:
                child = Incident(pk=pk, number=number)
                events.append(event_build(child, IncidentEvent.Kind.MAJOR_LINKED, new=major.number, message=how))
                events.append(event_build(major, IncidentEvent.Kind.CHILD_LINKED, new=number, message=how))
        return events


def _major_from_spike(spike: _ServiceSpike, default_group: Group | None) -> Incident:
    service = spike.service
    # Many people at once: high impact once the spike is twice its threshold, medium before.
    impact = 1 if spike.authors >= 2 * spike.threshold else 2
    urgency = min((i.urgency for i in spike.new), default=2)
    return Incident(
        short_description=shorten(f"Major incident: {service.name} - {spike.authors} people report a problem", 160),
        description=(
            f"Opened by spike detection: {spike.authors} people complained about {service.name} within "
            f"{spike.window} minutes (threshold: {spike.threshold} people). Each poster's own incident is "
            "a child of this one; resolving it resolves them."
        ),
        is_major=True,
        impact=impact,
        urgency=urgency,
        priority=priority_for(impact, urgency),
        service=service,
        category=service.slug,
        assignment_group=service.owner_group or default_group,
        opened_at=timezone.now(),
    )


# -- by hand --------------------------------------------------------------------------------------


def major_open(
    *,
    incidents: list[Incident],
    actor,
    short_description: str = "",
    service: Service | None = None,
    impact: int = 2,
    urgency: int = 2,
) -> Incident:
    """Open a major incident by hand and link `incidents` to it as children. The service is the
    one given, else the one the incidents share. Raises ApplicationError / ConflictError as
    major_link does, and for a service the incidents do not agree on."""
    if impact not in (1, 2, 3) or urgency not in (1, 2, 3):
        raise ApplicationError("impact and urgency must be 1, 2 or 3", field="impact")
    if not incidents:
        raise ApplicationError("choose at least one incident to link", field="incidents")
    if service is None:
        shared = {i.service_id for i in incidents}
        only = shared.pop() if len(shared) == 1 else None
        if only is not None:
            service = Service.objects.get(pk=only)
    with transaction.atomic():
        if service is not None:
            # The same lock as spike detection: routing sees this major incident once it commits.
            Service.objects.select_for_update(no_key=True).filter(pk=service.pk).first()
        title = short_description.strip() or (
            f"Major incident: {service.name}"
            if service
            else f"Major incident: {shorten(incidents[0].short_description, 120)}"
        )
        major = Incident(
            number=incident_numbers_next(1)[0],
            short_description=shorten(title, 160),
            description=f"Opened by {actor} from {len(incidents)} incidents.",
            is_major=True,
            impact=impact,
            urgency=urgency,
            service=service,
            category=service.slug if service else "",
            assignment_group=(service.owner_group if service else None) or group_default(),
        )
        major.save()
        event_record(major, IncidentEvent.Kind.OPENED, actor=actor, message="opened by hand")
        major_link(major=major, incidents=incidents, actor=actor)
        incidents_sla_recompute(incident_ids=[major.pk])
    return major


def major_link(*, major: Incident, incidents: list[Incident], actor) -> list[Incident]:
    """Link `incidents` to the major incident `major` as its children, each with an event on both.

    Raises ApplicationError (400) when `major` is not a major incident or one of `incidents` is
    one (a major incident is never a child, so links cannot form a cycle), and ConflictError
    (409) when the major incident is over, or an incident is over, merged, or already linked to
    another major incident. Nothing is linked unless all can be."""
    if not incidents:
        raise ApplicationError("choose at least one incident to link", field="incidents")
    with transaction.atomic():
        ids = sorted({major.pk, *(i.pk for i in incidents)})
        locked = Incident.objects.select_for_update(no_key=True).in_bulk(ids)
        parent = locked[major.pk]
        if not parent.is_major:
            raise ApplicationError(f"{parent.number} is not a major incident", field="major")
        if parent.state not in Incident.OPEN_STATES:
            raise ConflictError(f"{parent.number} is {parent.get_state_display().lower()}; reopen it to link incidents")
        children = [locked[i.pk] for i in incidents]
        for child in children:
            _child_check(child, parent)
        linked = [c for c in children if c.parent_id != parent.pk]
        now = timezone.now()
        Incident.objects.filter(pk__in=[c.pk for c in linked]).update(parent=parent, updated_at=now)
        events = []
        for child in linked:
            child.parent = parent
            events.append(event_build(child, IncidentEvent.Kind.MAJOR_LINKED, actor=actor, new=parent.number))
            events.append(event_build(parent, IncidentEvent.Kind.CHILD_LINKED, actor=actor, new=child.number))
            incident_links_changed(incident=child)
        events_record(events)
    return children


def _child_check(child: Incident, major: Incident) -> None:
    if child.pk == major.pk:
        raise ApplicationError(f"{child.number} cannot be linked to itself", field="incidents")
    if child.is_major:
        raise ApplicationError(f"{child.number} is a major incident and cannot be a child", field="incidents")
    if child.merged_into_id is not None:
        raise ConflictError(f"{child.number} was merged into another incident")
    if child.state not in Incident.OPEN_STATES:
        raise ConflictError(f"{child.number} is {child.get_state_display().lower()}")
    if child.parent_id is not None and child.parent_id != major.pk:
        raise ConflictError(f"{child.number} is already linked to another major incident; unlink it first")


def major_unlink(*, incident: Incident, actor) -> Incident:
    """Take `incident` out of its major incident. ConflictError (409) if it has none."""
    with transaction.atomic():
        child = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
        if child.parent_id is None:
            raise ConflictError(f"{child.number} is not linked to a major incident")
        parent = Incident.objects.only("pk", "number").get(pk=child.parent_id)
        Incident.objects.filter(pk=child.pk).update(parent=None, updated_at=timezone.now())
        child.parent = None
        incident_links_changed(incident=child, previous_parent=parent)
        events_record(
            [
                event_build(child, IncidentEvent.Kind.MAJOR_UNLINKED, actor=actor, old=parent.number),
                event_build(parent, IncidentEvent.Kind.CHILD_UNLINKED, actor=actor, old=child.number),
            ]
        )
    return child


def incident_merge(*, duplicate: Incident, target: Incident, actor, other_author: bool = False) -> IncidentMerge:
    """Merge `duplicate` into `target`: the duplicate's posts and replies, and the events about
    them, move to the target; the duplicate is canceled with `merged_into` set. What moved is
    recorded, so `incident_unmerge` moves exactly that back.

    True duplicates have one poster: incidents of different authors merge only with
    `other_author`, which only a lead may use (PermissionDenied otherwise). Raises
    ApplicationError (400) for merging an incident into itself or merging a major incident, and
    ConflictError (409) when either incident's state does not allow it."""
    if duplicate.pk == target.pk:
        raise ApplicationError("an incident cannot be merged into itself", field="target")
    if other_author and not is_lead(actor):
        raise PermissionDenied("Only a team lead may merge incidents of different posters.")
    with transaction.atomic():
        locked = Incident.objects.select_for_update(no_key=True).in_bulk(sorted([duplicate.pk, target.pk]))
        dup, into = locked[duplicate.pk], locked[target.pk]
        for incident in (dup, into):
            if incident.is_major:
                raise ApplicationError(f"{incident.number} is a major incident; link incidents to it instead")
            if incident.merged_into_id is not None:
                raise ConflictError(f"{incident.number} was already merged into another incident")
        if dup.state not in Incident.OPEN_STATES:
            raise ConflictError(f"{dup.number} is {dup.get_state_display().lower()}; only open incidents merge")
        if into.state in FINAL_STATES:
            raise ConflictError(f"{into.number} is {into.get_state_display().lower()}")
        if dup.author_id != into.author_id and not other_author:
            raise ConflictError(
                f"{dup.number} and {into.number} have different posters; a lead may merge them with the override"
            )
        post_ids = list(Post.objects.filter(incident=dup).order_by("pk").values_list("pk", flat=True))
        reply_ids = list(Reply.objects.filter(incident=dup).order_by("pk").values_list("pk", flat=True))
        event_ids = list(
            IncidentEvent.objects.filter(incident=dup, kind__in=MOVING_EVENT_KINDS)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        Post.objects.filter(pk__in=post_ids).update(incident=into)
        Reply.objects.filter(pk__in=reply_ids).update(incident=into)
        IncidentEvent.objects.filter(pk__in=event_ids).update(incident=into)
        merge = IncidentMerge.objects.create(
            duplicate=dup,
            target=into,
            duplicate_state=dup.state,
            post_ids=post_ids,
            reply_ids=reply_ids,
            event_ids=event_ids,
            actor=actor,
        )
        moved = f"{len(post_ids)} posts, {len(reply_ids)} replies"
        incident_update(incident=dup, actor=actor, message=f"merged into {into.number}", state=Incident.State.CANCELED)
        Incident.objects.filter(pk=dup.pk).update(merged_into=into)
        events_record(
            [
                event_build(dup, IncidentEvent.Kind.MERGED, actor=actor, new=into.number, message=moved),
                event_build(into, IncidentEvent.Kind.MERGED_IN, actor=actor, new=dup.number, message=moved),
            ]
        )
        incidents_sla_recompute(incident_ids=[dup.pk, into.pk])
    return merge


def incident_unmerge(*, duplicate: Incident, actor) -> Incident:
    """Undo the merge of `duplicate`: what moved goes back (posts, replies and events that have
    since left the target stay where they are), the duplicate gets its state from before the
    merge and `merged_into` is cleared. ConflictError (409) when it is not merged."""
    with transaction.atomic():
        merge = (
            IncidentMerge.objects.select_for_update()
            .filter(duplicate_id=duplicate.pk, undone_at__isnull=True)
            .select_related("target")
            .first()
        )
        if merge is None:
            raise ConflictError(f"{duplicate.number} is not merged into another incident")
        locked = Incident.objects.select_for_update(no_key=True).in_bulk(sorted([merge.duplicate_id, merge.target_id]))
        dup, into = locked[merge.duplicate_id], locked[merge.target_id]
        Post.objects.filter(pk__in=merge.post_ids, incident=into).update(incident=dup)
        Reply.objects.filter(pk__in=merge.reply_ids, incident=into).update(incident=dup)
        IncidentEvent.objects.filter(pk__in=merge.event_ids, incident=into).update(incident=dup)
        now = timezone.now()
        # Canceled is final for agents; undoing a merge is the one way back, recorded as a change.
        Incident.objects.filter(pk=dup.pk).update(merged_into=None, state=merge.duplicate_state, updated_at=now)
        merge.undone_at, merge.undone_by = now, actor
        merge.save(update_fields=["undone_at", "undone_by"])
        events_record(
            [
                event_build(
                    dup,
                    IncidentEvent.Kind.CHANGED,
                    actor=actor,
                    field="state",
                    old=dup.state,
                    new=merge.duplicate_state,
                    message=f"merge into {into.number} undone",
                ),
                event_build(dup, IncidentEvent.Kind.UNMERGED, actor=actor, old=into.number),
                event_build(into, IncidentEvent.Kind.UNMERGED, actor=actor, old=dup.number),
            ]
        )
        incidents_sla_recompute(incident_ids=[dup.pk, into.pk])
    dup.refresh_from_db()
    return dup
