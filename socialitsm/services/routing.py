"""Routing: classify stored posts, then open an incident, thread them into one, queue or ignore."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import cast

from django.contrib.auth.models import Group
from django.core.cache import caches
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import BooleanField, Min, Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import Collate
from django.utils import timezone

from socialitsm import classify, metrics
from socialitsm.classify.rules import urgency_cues
from socialitsm.conf import conf
from socialitsm.connectors.base import DetailKind
from socialitsm.db import array_param, rows_insert, rows_update
from socialitsm.models import (
    CHANNEL_SCOPED_NETWORKS,
    PRIORITY_MATRIX,
    Author,
    Channel,
    Incident,
    IncidentEvent,
    Post,
    Reply,
    Service,
    WatchRule,
    priority_for,
)
from socialitsm.text import clean_text

from .events import event_build, event_record, events_record
from .figures import incidents_figures_refresh, incidents_post_count_add
from .incidents import (
    group_default,
    incident_build,
    incident_numbers_next,
    incident_open_from_post,
    incident_update,
    post_link,
    post_link_event,
)
from .major import RoutingSpikes
from .sla import incidents_sla_recompute

logger = logging.getLogger(__name__)

ROUTED_FIELDS = (
    "is_complaint",
    "complaint_score",
    "sentiment",
    "detected_service",
    "urgency_hint",
    "reasons",
    "triage_state",
    "incident",
)


def catalogue_load() -> tuple[dict[str, Service], tuple[classify.ServiceEntry, ...]]:
    services = {s.slug: s for s in Service.objects.filter(active=True).select_related("owner_group")}
    entries = tuple(
        classify.ServiceEntry(
            slug=s.slug, names=tuple(dict.fromkeys([s.name, s.slug, *s.aliases])), description=s.description
        )
        for s in services.values()
    )
    return services, entries


# Errors that say nothing about the posts (the database connection or a lock conflict): the
# batch fails as a whole and the task or the recovery sweep tries it again.
_NOT_THE_POSTS_FAULT = (OperationalError, InterfaceError)
PARKED = "parked"
# The complaint threshold of posts no rule heard (webhooks, a deleted rule).
DEFAULT_THRESHOLD = 0.5


# What routing reads of a post (never the network's payload); what it writes is ROUTED_FIELDS.
ROUTING_READS = (
    "network",
    "scope",
    "external_id",
    "channel",
    "rule",
    "author",
    "text",
    "details",
    "url",
    "posted_at",
    "edited_at",
    "in_reply_to",
    "is_direct",
    "conversation_id",
    "language",
    "triage_state",
    "incident",
)


def _routable(post_ids: Iterable[int]) -> list[Post]:
    """The routable posts among `post_ids`, oldest first, with their rule, channel and author.
    Those are loaded once each (a batch shares a handful of rules and channels) rather than
    joined onto every post."""
    posts = list(
        Post.objects.routable().filter(pk__any=list(post_ids)).only(*ROUTING_READS).order_by("posted_at", "id")
    )
    if not posts:
        return posts
    rules = WatchRule.objects.select_related("assignment_group", "default_service").in_bulk(
        {p.rule_id for p in posts if p.rule_id is not None}
    )
    # Routing never reads a channel's (encrypted) credentials.
    channels = Channel.objects.defer("credentials").in_bulk({p.channel_id for p in posts})
    authors = {
        author.pk: author
        for author in Author.objects.only("network", "scope", "external_id", "handle", "name").filter(
            pk__any={p.author_id for p in posts}
        )
    }
    for post in posts:
        Post.rule.field.set_cached_value(post, rules.get(post.rule_id) if post.rule_id is not None else None)
        Post.channel.field.set_cached_value(post, channels[post.channel_id])
        Post.author.field.set_cached_value(post, authors[post.author_id])
    return posts


def posts_process(*, post_ids: Iterable[int]) -> dict[str, int]:
    """Classify and route the pending posts among `post_ids`, oldest first, in one transaction.
    Safe to re-run: posts already routed are skipped. If routing the batch fails, each post is
    routed on its own, and one that still fails is parked with its error (`post_routing_park`)
    instead of holding back the others. Returns how many posts went each way."""
    posts = _routable(post_ids)
    if not posts:
        return {}
    services, catalogue = catalogue_load()
    try:
        with metrics.timed(metrics.ROUTING_SECONDS):
            return _posts_route(posts, services, catalogue)
    except _NOT_THE_POSTS_FAULT:
        raise
    except Exception as exc:
        if len(posts) == 1:
            return _park(posts[0].pk, exc)
        logger.exception("routing a batch of %d posts failed; routing them one by one", len(posts))
    outcome: dict[str, int] = {}
    for post in posts:
        for state, count in _post_route_or_park(post.pk, services, catalogue).items():
            outcome[state] = outcome.get(state, 0) + count
    return outcome


def _post_route_or_park(
    post_id: int, services: dict[str, Service], catalogue: tuple[classify.ServiceEntry, ...]
) -> dict[str, int]:
    # Loaded again: the failed batch may have left routing decisions on the objects in memory.
    posts = _routable([post_id])
    if not posts:
        return {}
    try:
        return _posts_route(posts, services, catalogue)
    except _NOT_THE_POSTS_FAULT:
        raise
    except Exception as exc:
        return _park(post_id, exc)


# -- draining what arrives one post at a time -------------------------------------------------------

# Set while a drain is queued or running; a post stored meanwhile asks for none of its own.
DRAIN_FLAG = "posts-drain-requested"


def _drain_flag_take() -> bool:
    """Set the flag if it is not set; True when this call set it. Without a shared cache
    (SOCIALITSM_DRAIN_CACHE empty) or with one that does not answer, every caller may drain."""
    if not conf.DRAIN_CACHE:
        return True
    try:
        return bool(caches[conf.DRAIN_CACHE].add(DRAIN_FLAG, 1, timeout=conf.DRAIN_FLAG_SECONDS))
    except Exception:  # a cache that does not answer costs a drain too many, nothing else
        logger.warning("the drain flag could not be set; draining anyway", exc_info=True)
        return True


def _drain_flag_clear() -> None:
    if not conf.DRAIN_CACHE:
        return
    try:
        caches[conf.DRAIN_CACHE].delete(DRAIN_FLAG)
    except Exception:  # the flag then lapses after DRAIN_FLAG_SECONDS
        logger.warning("the drain flag could not be cleared", exc_info=True)


def posts_drain_request() -> bool:
    """Ask a worker to route the pending posts (`posts_drain`). While one drain is queued or
    running, further requests enqueue nothing: that drain takes their posts too. A flag left by
    a worker that died lapses after SOCIALITSM_DRAIN_FLAG_SECONDS, and the recovery sweep routes
    what waited meanwhile. Returns True when a drain task was enqueued."""
    from socialitsm.tasks import posts_drain_task

    if not _drain_flag_take():
        return False
    try:
        posts_drain_task.delay()
    except Exception:
        _drain_flag_clear()
        raise
    return True


def posts_drain(*, batch: int | None = None, seconds: float | None = None) -> dict[str, int]:
    """Route every pending post, oldest stored first, `batch` at a time through the batch path
    (`posts_process`), until none is left or `seconds` have passed (then another drain is
    requested). Posts stored while it runs are taken too: the flag is cleared only once nothing
    is left, and looked at once more after. Each batch is claimed first (`_claim`): drains
    running side by side (several workers, or a batch task beside a drain) skip each other's
    posts instead of waiting for them. A crash leaves the posts of the unfinished batch pending,
    for the next drain or the recovery sweep. Returns how many posts went each way."""
    batch = batch or conf.DRAIN_BATCH
    deadline = time.monotonic() + (conf.DRAIN_SECONDS if seconds is None else seconds)
    outcome: dict[str, int] = {}
    # Posts routing left pending (edited since they were classified: the edit asked for their
    # routing again). Each claim starts from the oldest pending post rather than after the last
    # one read: a post stored earlier may commit later, and must not be passed over.
    stuck: set[int] = set()
    while True:
        try:
            with transaction.atomic():
                ids = _claim(stuck, batch)
                routed = posts_process(post_ids=ids) if ids else {}
        except Exception:
            # The batch stays pending; the next request may queue a drain at once (a worker
            # killed outright leaves the flag to lapse instead).
            _drain_flag_clear()
            raise
        for state, count in routed.items():
            outcome[state] = outcome.get(state, 0) + count
        if ids:
            stuck.update(Post.objects.routable().filter(pk__in=ids).values_list("pk", flat=True))
        elif _pending(stuck, 1):
            # Pending, but claimed elsewhere (another drain, a batch task, an author an ingest
            # is writing): look again in a moment, as another drain would not be asked for.
            if time.monotonic() < deadline:
                time.sleep(DRAIN_BUSY_WAIT)
                continue
        else:
            _drain_flag_clear()
            # A post committed between the last read and the clear found the flag set and
            # asked for nothing: look once more, and carry on if this drain takes the flag back.
            if not _pending(stuck, 1) or not _drain_flag_take():
                return outcome
            continue
        if time.monotonic() >= deadline:
            # Re-armed: the queue's other work gets its turn before the next drain.
            _drain_flag_clear()
            posts_drain_request()
            return outcome


# How long a drain that finds only posts another worker claimed waits before it looks again.
DRAIN_BUSY_WAIT = 0.05


def _claim(stuck: set[int], limit: int) -> list[int]:
    """Up to `limit` routable posts, oldest stored first, but those in `stuck`, locked with
    their authors until the caller's transaction ends. Rows another transaction holds are
    skipped (SKIP LOCKED), never waited for: posts another worker is routing, and posts whose
    author another routing or an ingest holds. A claim never waits, so it cannot deadlock with
    routing, which locks the authors and then the posts. The locks are FOR NO KEY UPDATE, as
    routing's: posts stored meanwhile by these authors need not wait for the batch."""
    if connection.vendor != "postgresql":
        return _pending(stuck, limit)
    pending = Post.objects.routable()
    if stuck:
        pending = pending.exclude(pk__in=stuck)
    candidates = list(
        pending.select_for_update(skip_locked=True, of=("self",), no_key=True)
        .order_by("ingested_at", "id")
        .values_list("id", "author_id")[:limit]
    )
    if not candidates:
        return []
    authors = set(
        Author.objects.select_for_update(skip_locked=True, no_key=True)
        .filter(pk__in={author for _, author in candidates})
        .values_list("pk", flat=True)
    )
    return [pk for pk, author in candidates if author in authors]


def _pending(stuck: set[int], limit: int) -> list[int]:
    """Up to `limit` routable posts, oldest stored first, but those in `stuck`."""
    pending = Post.objects.routable()
    if stuck:
        pending = pending.exclude(pk__in=stuck)
    return list(pending.order_by("ingested_at", "id").values_list("id", flat=True)[:limit])


def post_meaning(post: Post) -> str:
    """What the classifier reads of a post: its text, then the posts it quotes and the
    descriptions of its images, which often say what the text only points at ("this, again"
    quoting "VPN down for everyone"; a screenshot of an error)."""
    beside = [d["text"] for d in post.detail_items(DetailKind.QUOTE, DetailKind.ALT_TEXT) if d["text"]]
    return "\n\n".join([post.text, *beside]) if beside else post.text


def _park(post_id: int, error: Exception) -> dict[str, int]:
    logger.error("routing post %s failed; parked for a person to look at", post_id, exc_info=error)
    parked = post_routing_park(post_id=post_id, error=f"{type(error).__name__}: {error}")
    return {PARKED: parked} if parked else {}


def post_addressed(post: Post) -> bool:
    """Whether `post` was addressed to our own account: a direct message, or heard by a rule
    that listens for mentions of us or for direct messages. Such a post is about a service we
    run; the classifier is left to decide only whether it complains."""
    if post.is_direct:
        return True
    rule: WatchRule | None = post.rule
    return rule is not None and rule.kind in (WatchRule.Kind.MENTIONS, WatchRule.Kind.DIRECT)


def posts_classify(posts: Iterable[Post], catalogue: tuple[classify.ServiceEntry, ...]) -> list[classify.Verdict]:
    """The classifier's verdict on each post's meaning (`post_meaning`), in order, knowing which
    posts were addressed to us (`post_addressed`)."""
    posts = list(posts)
    with metrics.timed(metrics.CLASSIFICATION_SECONDS):
        return classify.verdict_many(
            ((post_meaning(p), p.language or None) for p in posts),
            catalogue=catalogue,
            addressed=[post_addressed(p) for p in posts],
        )


def complaint_threshold(rule: WatchRule | None) -> float:
    """The score from which a post heard by `rule` is a complaint."""
    return rule.complaint_threshold if rule else DEFAULT_THRESHOLD


def _posts_route(
    posts: list[Post], services: dict[str, Service], catalogue: tuple[classify.ServiceEntry, ...]
) -> dict[str, int]:
    verdicts = posts_classify(posts, catalogue)
    with transaction.atomic():
        # Lock the authors: one author's posts are routed by one worker at a time, so two
        # follow-ups cannot open two incidents. Ingest upserts authors in the same key order,
        # so neither a concurrent batch nor a concurrent ingest can deadlock with this one.
        # FOR NO KEY UPDATE: exclusive among routers, but posts stored meanwhile by these
        # authors still pass their foreign key check instead of waiting for this batch.
        list(
            Author.objects.select_for_update(no_key=True)
            .filter(pk__any={p.author_id for p in posts})
            .order_by("network", "scope", _codepoint_order("external_id"))
            .values_list("pk", flat=True)
        )
        classified = {p.pk: p.edited_at for p in posts}
        # A post edited since it was classified above is left pending: the edit handed it to
        # routing again, which classifies the new text.
        still_pending = {
            pk
            for pk, edited_at in Post.objects.select_for_update()
            .filter(pk__any=list(classified), triage_state=Post.Triage.PENDING, routing_failed_at__isnull=True)
            .values_list("pk", "edited_at")
            if edited_at == classified[pk]
        }
        router = _BatchRouter([p for p in posts if p.pk in still_pending], services)
        for post, verdict in zip(posts, verdicts, strict=True):
            if post.pk in still_pending:
                router.route(post, verdict)
        return router.save()


def post_routing_park(*, post_id: int, error: str) -> int:
    """Set a post routing failed on aside with its error: the recovery sweep skips it, agents
    see it in triage and may route it again (`post_routing_retry`). Returns 1 if parked."""
    return Post.objects.filter(pk=post_id, triage_state=Post.Triage.PENDING, routing_failed_at__isnull=True).update(
        routing_error=clean_text(error)[:2000], routing_failed_at=timezone.now()
    )


def post_routing_retry(*, post: Post) -> bool:
    """Hand a parked post back to routing (after the cause was fixed); False if it was not parked."""
    updated = Post.objects.filter(pk=post.pk, triage_state=Post.Triage.PENDING, routing_failed_at__isnull=False).update(
        routing_error="", routing_failed_at=None
    )
    if updated:
        from .ingest import posts_enqueue_processing

        transaction.on_commit(lambda: posts_enqueue_processing([post.pk]), robust=True)
    return bool(updated)


def _codepoint_order(field: str) -> Collate | str:
    """Order as Python sorts strings (ingest's order), not by the database's locale collation."""
    return Collate(field, "C") if connection.vendor == "postgresql" else field


class _BatchRouter:
    """Decides a batch of locked posts in memory, then writes the outcome in a few queries."""

    def __init__(self, posts: list[Post], services: dict[str, Service]) -> None:
        self.services = services
        self.posts: list[Post] = []
        self.new_incidents: list[tuple[Incident, str]] = []
        self.links: list[tuple[Post, Incident]] = []
        self.outcome: dict[str, int] = {}
        self.by_post, self.by_conversation = _threads_preload(posts)

    @cached_property
    def default_group(self) -> Group | None:
        return group_default()

    def route(self, post: Post, verdict: classify.Verdict) -> None:
        rule: WatchRule | None = post.rule
        threshold = complaint_threshold(rule)
        is_complaint = verdict.score >= threshold
        detected = self.services.get(verdict.service) if verdict.service else None
        post.is_complaint = is_complaint
        post.complaint_score = round(verdict.score, 4)
        post.sentiment = round(verdict.sentiment, 4)
        post.detected_service = detected
        post.urgency_hint = verdict.urgency
        post.reasons = list(verdict.reasons)
        self.posts.append(post)

        incident = self._thread(post)
        if incident is None:
            ignore_why = _ignore_reason(post, rule, is_complaint)
            if ignore_why:
                post.triage_state = Post.Triage.IGNORED
                post.reasons.append(ignore_why)
            elif rule is not None and rule.action == WatchRule.Action.QUEUE:
                post.triage_state = Post.Triage.QUEUED
            else:
                service = detected or (rule.default_service if rule else None)
                incident = incident_build(
                    post=post, rule=rule, service=service, urgency=verdict.urgency, default_group=self.default_group
                )
                reasons = ", ".join(verdict.reasons)
                self.new_incidents.append(
                    (incident, f"complaint score {verdict.score:.2f} >= {threshold:.2f}: {reasons}")
                )
        if incident is not None:
            post.triage_state = Post.Triage.INCIDENT
            self.links.append((post, incident))
            self.by_post[(post.network, post.scope, post.external_id)] = incident
            if post.conversation_id:
                self.by_conversation[(post.author_id, post.conversation_id)] = incident
        self.outcome[post.triage_state] = self.outcome.get(post.triage_state, 0) + 1

    def _thread(self, post: Post) -> Incident | None:
        if post.in_reply_to and (post.network, post.scope, post.in_reply_to) in self.by_post:
            return self.by_post[(post.network, post.scope, post.in_reply_to)]
        if post.conversation_id:
            return self.by_conversation.get((post.author_id, post.conversation_id))
        return None

    def save(self) -> dict[str, int]:
        spikes = RoutingSpikes(
            [incident for incident, _ in self.new_incidents], now=timezone.now(), default_group=self.default_group
        )
        replaced = spikes.existing_children()
        if replaced:
            # The poster already has an open child of the major incident: the post joins it.
            self.new_incidents = [(i, why) for i, why in self.new_incidents if id(i) not in replaced]
            self.links = [(post, replaced.get(id(incident), incident)) for post, incident in self.links]
        majors = spikes.majors_build()
        if self.new_incidents or majors:
            numbers = iter(incident_numbers_next(len(majors) + len(self.new_incidents)))
            for major in majors:
                major.number = next(numbers)
            rows_insert(Incident, majors)
            spikes.parents_assign()
            for incident, _ in self.new_incidents:
                incident.number = next(numbers)
            rows_insert(Incident, [incident for incident, _ in self.new_incidents])
        opened = {major.pk for major in majors}
        events = [
            event_build(incident, IncidentEvent.Kind.OPENED, message=_opened_why(incident, why, opened))
            for incident, why in self.new_incidents
        ]
        events.extend(spikes.events(opened=opened))
        # Posts no incident held add to their incident's count; one that moves between
        # incidents (none should: an edit makes pending again only posts no incident holds)
        # has both counted again.
        gained: Counter[int] = Counter()
        recount: set[int] = set()
        for post, incident in self.links:
            if post.incident_id is None:
                gained[incident.pk] += 1
            elif post.incident_id != incident.pk:
                recount.update((post.incident_id, incident.pk))
            post.incident = incident
            events.append(post_link_event(post, incident))
        rows_update(
            Post,
            self.posts,
            ROUTED_FIELDS,
        )
        events_record(events, batch_size=500)
        opened_now = {incident.pk for incident, _ in self.new_incidents} | {m.pk for m in majors}
        replay = opened_now | _clocks_moved([(post, i) for post, i in self.links if i.pk not in opened_now])
        incidents_sla_recompute(incident_ids=replay)
        # The others gained posts and nothing their clocks start from: only their post count moves.
        counted = replay | recount
        incidents_post_count_add(gained={pk: n for pk, n in gained.items() if pk not in counted})
        incidents_figures_refresh(incident_ids=recount - replay)
        self._reopen_after_fix()
        return self.outcome

    def _reopen_after_fix(self) -> None:
        """A poster who writes again in the thread of an incident resolved with its major
        incident reopens their own incident (the major incident stays resolved)."""
        resolved = {incident.pk: incident for _, incident in self.links if incident.state == Incident.State.RESOLVED}
        for incident in resolved.values():
            incident_update(
                incident=incident,
                actor=None,
                message="the poster wrote again after the major incident was resolved",
                state=Incident.State.IN_PROGRESS,
            )


def _clocks_moved(joined: list[tuple[Post, Incident]]) -> set[int]:
    """The open incidents among `joined` (posts linked to incidents opened before this batch)
    whose SLA history these posts change, in two queries for the batch: a post dated before the
    incident's first post moves its clock start, and a poster writing again after a reply was
    sent starts a next-response clock. A follow-up that does neither (most) leaves the clocks
    as they are, so their replay is skipped; the SLA sweep keeps running clocks current."""
    if not joined:
        return set()
    ids = {incident.pk for _, incident in joined}
    first = dict(
        Post.objects.filter(incident_id__any=ids)
        .exclude(pk__any=[post.pk for post, _ in joined])
        .order_by("incident_id", "posted_at", "id")
        .distinct("incident_id")
        .values_list("incident_id", "posted_at")
        if connection.vendor == "postgresql"
        else _first_posted(ids, {post.pk for post, _ in joined})
    )
    moved = {
        incident.pk for post, incident in joined if incident.pk not in first or post.posted_at < first[incident.pk]
    }
    posters = {
        incident.pk
        for post, incident in joined
        if incident.pk not in moved
        and ("author_id" in incident.get_deferred_fields() or post.author_id == incident.author_id)
    }
    if posters:
        moved.update(
            Reply.objects.filter(incident_id__in=posters, status=Reply.Status.SENT).values_list(
                "incident_id", flat=True
            )
        )
    return moved


def _first_posted(ids: set[int], leaving_out: set[int]) -> dict[int, datetime]:
    """Each incident's earliest post time (but for `leaving_out`), where DISTINCT ON is missing."""
    rows = (
        Post.objects.filter(incident_id__in=ids)
        .exclude(pk__in=leaving_out)
        .values("incident_id")
        .annotate(first=Min("posted_at"))
        .values_list("incident_id", "first")
    )
    return {incident_id: first for incident_id, first in rows if incident_id is not None}


def _opened_why(incident: Incident, why: str, majors_opened: set[int]) -> str:
    """Why routing opened `incident`; one joining a major incident already open says so here
    (one opening with a new major incident gets a link event of its own)."""
    parent = incident.parent
    if parent is not None and parent.pk not in majors_opened:
        return f"{why}; joined major incident {parent.number}"
    return why


def _threads_preload(
    posts: list[Post],
) -> tuple[dict[tuple[str, str, str], Incident], dict[tuple[int, str], Incident]]:
    """The open incidents these posts may continue, keyed by the external id they answer (a
    linked post or one of our replies) in its id space (network, scope), and by (author,
    conversation). Only the incidents' ids, states and posters are loaded: linking needs nothing
    else."""
    open_states = Incident.OPEN_STATES
    # Besides open incidents, a poster's own incident resolved with its major incident: writing
    # again there reopens it (see _reopen_after_fix).
    live = Q(incident__state__in=open_states) | Q(
        incident__state=Incident.State.RESOLVED, incident__parent__isnull=False
    )
    by_post_ids: dict[tuple[str, str, str], int] = {}
    replied = {(p.network, p.scope, p.in_reply_to) for p in posts if p.in_reply_to}
    if replied:
        networks, scopes, ids = {n for n, _, _ in replied}, {s for _, s, _ in replied}, {i for _, _, i in replied}
        parents = Post.objects.filter(live, network__in=networks, scope__in=scopes, external_id__any=ids)
        for network, scope, external_id, incident_id in parents.values_list(
            "network", "scope", "external_id", "incident_id"
        ):
            by_post_ids[(network, scope, external_id)] = incident_id
        ours = Reply.objects.filter(live, channel__network__in=networks, external_id__any=ids)
        for network, channel_id, external_id, incident_id in ours.values_list(
            "channel__network", "channel_id", "external_id", "incident_id"
        ):
            scope = str(channel_id) if network in CHANNEL_SCOPED_NETWORKS else ""
            by_post_ids.setdefault((network, scope, external_id), incident_id)
    by_conversation_ids: dict[tuple[int, str], int] = {}
    conversations = {(p.author_id, p.conversation_id) for p in posts if p.conversation_id}
    if conversations:
        # One row per (conversation, incident), however many posts each incident holds.
        rows = (
            Post.objects.filter(live, _conversations_among(conversations))
            .order_by()
            .values_list("author_id", "conversation_id", "incident__opened_at", "incident_id")
            .distinct()
        )
        # Oldest first, so the newest open incident of a conversation wins.
        for author_id, conversation_id, _, incident_id in sorted(rows, key=lambda row: (row[2], row[3])):
            by_conversation_ids[(author_id, conversation_id)] = incident_id
    incidents = {
        incident.pk: incident
        for incident in Incident.objects.only("pk", "state", "author_id").filter(
            pk__any={*by_post_ids.values(), *by_conversation_ids.values()}
        )
    }
    return (
        {key: incidents[pk] for key, pk in by_post_ids.items()},
        {key: incidents[pk] for key, pk in by_conversation_ids.items()},
    )


def _conversations_among(conversations: set[tuple[int, str]]) -> Q | RawSQL:
    """Posts whose (author, conversation) is one of `conversations`. On PostgreSQL the pairs are
    two arrays unnested into rows, and the (author, conversation) index is read pair by pair.
    Any author with any conversation (`= ANY` on each column) took PostgreSQL 3.9 ms to plan and
    12.4 ms to run for a batch of 500 pairs, against 0.5 and 9 ms. Elsewhere that looser match:
    the caller looks rows up by pair, so a row of another pair is never used."""
    if connection.vendor != "postgresql":
        return Q(author_id__any={a for a, _ in conversations}, conversation_id__any={c for _, c in conversations})
    pairs = sorted(conversations)
    quote = connection.ops.quote_name
    table = quote(Post._meta.db_table)
    # The names are the model's own; the pairs go as parameters.
    return RawSQL(  # noqa: S611
        f"({table}.{quote('author_id')}, {table}.{quote('conversation_id')})"  # noqa: S608
        " IN (SELECT * FROM unnest(%s::bigint[], %s::text[]))",
        (array_param([a for a, _ in pairs]), array_param([c for _, c in pairs])),
        output_field=BooleanField(),
    )


def _thread_incident(post: Post) -> Incident | None:
    """The open incident this post continues (one post; see _threads_preload for batches)."""
    by_post, by_conversation = _threads_preload([post])
    found = by_post.get((post.network, post.scope, post.in_reply_to)) if post.in_reply_to else None
    if found is None and post.conversation_id:
        found = by_conversation.get((post.author_id, post.conversation_id))
    return Incident.objects.get(pk=found.pk) if found is not None else None


def _ignore_reason(post: Post, rule: WatchRule | None, is_complaint: bool) -> str:
    if post.channel.handle and post.author.handle.lstrip("@").lower() == post.channel.handle.lstrip("@").lower():
        return "our own post"
    if rule is not None and rule.languages and post.language and post.language not in rule.languages:
        return f"language {post.language} is not watched by this rule"
    if not is_complaint:
        return "below the complaint threshold"
    return ""


@dataclass(frozen=True)
class PromoteProposal:
    """What promoting a post proposes, for the agent to confirm or change."""

    service: Service | None
    impact: int
    urgency: int

    @property
    def priority(self) -> int:
        return priority_for(self.impact, self.urgency)


def post_promote_proposal(post: Post) -> PromoteProposal:
    """The classifier's service guess (else the rule's default service) and the priority its
    urgency gives with the rule's impact. A post the classifier took for a complaint keeps its
    urgency; for one it did not, urgency is what a complaint with that text gets (high with an
    outage cue, else medium), not the low urgency of a non-complaint."""
    rule = post.rule
    service = post.detected_service or (rule.default_service if rule else None)
    impact = rule.default_impact if rule else conf.DEFAULT_IMPACT
    if post.is_complaint and post.urgency_hint in (1, 2):
        urgency = post.urgency_hint
    else:
        urgency = 1 if urgency_cues(clean_text(post.text).lower()) else 2
    return PromoteProposal(service=service, impact=impact, urgency=urgency)


def impact_urgency_for(priority: int, near: PromoteProposal) -> tuple[int, int]:
    """The impact and urgency that give `priority`, closest to the proposed ones."""
    from socialitsm.exceptions import ApplicationError

    pairs = [(i, u) for i, row in PRIORITY_MATRIX.items() for u, p in row.items() if p == priority]
    if not pairs:
        raise ApplicationError("priority must be 1 to 5", field="priority")
    return min(pairs, key=lambda pair: (abs(pair[0] - near.impact) + abs(pair[1] - near.urgency), pair))


_PROPOSED = object()


def post_promote(
    *, post: Post, actor, service: Service | object | None = _PROPOSED, priority: int | None = None
) -> Incident:
    """An agent decides an ignored or queued post is a complaint after all. The incident gets
    `service` and `priority` when given, else what post_promote_proposal proposes. A post that
    continues an open incident of its poster joins it instead (service and priority stay)."""
    from socialitsm.exceptions import ApplicationError

    if service is not _PROPOSED and service is not None and not (isinstance(service, Service) and service.active):
        raise ApplicationError("unknown or inactive service", field="service")
    with transaction.atomic():
        locked = (
            Post.objects.select_for_update(of=("self",))
            .select_related("rule", "rule__default_service", "author", "channel", "detected_service")
            .get(pk=post.pk)
        )
        if locked.incident_id is not None:
            raise ApplicationError(f"post is already linked to {locked.incident.number}")
        if locked.triage_state == Post.Triage.PENDING:
            raise ApplicationError("post has not been classified yet")
        proposal = post_promote_proposal(locked)
        impact, urgency = (
            (proposal.impact, proposal.urgency) if priority is None else impact_urgency_for(priority, proposal)
        )
        incident = _thread_incident(locked)
        if incident is not None:
            if incident.state == Incident.State.RESOLVED:
                incident = incident_update(
                    incident=incident,
                    actor=actor,
                    message="a post of the poster was promoted",
                    state=Incident.State.IN_PROGRESS,
                )
            post_link(post=locked, incident=incident, actor=actor)
            event_record(
                incident, IncidentEvent.Kind.PROMOTED, actor=actor, new=f"{locked.network}:{locked.external_id}"
            )
            return incident
        incident = incident_open_from_post(
            post=locked,
            rule=locked.rule,
            service=proposal.service if service is _PROPOSED else cast(Service | None, service),
            urgency=urgency,
            impact=impact,
            actor=actor,
            reason="promoted by an agent",
        )
        event_record(incident, IncidentEvent.Kind.PROMOTED, actor=actor, new=f"{locked.network}:{locked.external_id}")
        return incident


def post_label(*, post: Post, label: str, actor) -> Post:
    """An agent says whether a post is a complaint; `socialitsm_train` learns from the label.

    Labelling again replaces the earlier label (the latest agent's word counts); the routing
    of the post is left as it is: promote or close its incident for that.
    """
    from socialitsm.exceptions import ApplicationError

    if label not in Post.Label.values:
        raise ApplicationError(f"label must be one of {', '.join(Post.Label.values)}", field="label")
    post.label, post.labelled_by, post.labelled_at = label, actor, timezone.now()
    post.save(update_fields=["label", "labelled_by", "labelled_at"])
    return post
