"""Routing: classify stored posts, then open an incident, thread them into one, queue or ignore."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction

from socialitsm import classify
from socialitsm.models import Author, Incident, IncidentEvent, Post, Reply, Service, WatchRule

from .incidents import event_record, incident_open_from_post, post_link

logger = logging.getLogger(__name__)


def catalogue_load() -> tuple[dict[str, Service], tuple[classify.ServiceEntry, ...]]:
    services = {s.slug: s for s in Service.objects.filter(active=True).select_related("owner_group")}
    entries = tuple(
        classify.ServiceEntry(slug=s.slug, names=tuple(dict.fromkeys([s.name, s.slug, *s.aliases])))
        for s in services.values()
    )
    return services, entries


def posts_process(*, post_ids: Iterable[int]) -> dict[str, int]:
    """Classify and route each pending post among `post_ids`, oldest first. Safe to re-run:
    posts already routed are skipped. Returns how many posts went each way."""
    posts = list(
        Post.objects.pending()
        .filter(pk__in=list(post_ids))
        .select_related("rule", "rule__assignment_group", "rule__default_service", "channel", "author")
        .order_by("posted_at", "id")
    )
    if not posts:
        return {}
    services, catalogue = catalogue_load()
    verdicts = classify.verdict_many(((p.text, p.language or None) for p in posts), catalogue=catalogue)
    outcome: dict[str, int] = {}
    for post, verdict in zip(posts, verdicts, strict=True):
        state = post_route(post=post, verdict=verdict, services=services)
        if state:
            outcome[state] = outcome.get(state, 0) + 1
    return outcome


def _thread_incident(post: Post) -> Incident | None:
    """The open incident this post continues: a reply to a linked post or to our reply, or the
    same author writing again in the same conversation."""
    if post.in_reply_to:
        parent = (
            Post.objects.filter(network=post.network, external_id=post.in_reply_to, incident__isnull=False)
            .select_related("incident")
            .first()
        )
        if parent and parent.incident.is_open:
            return parent.incident
        ours = (
            Reply.objects.filter(channel__network=post.network, external_id=post.in_reply_to)
            .select_related("incident")
            .first()
        )
        if ours and ours.incident.is_open:
            return ours.incident
    if post.conversation_id:
        return (
            Incident.objects.open()
            .filter(posts__author_id=post.author_id, posts__conversation_id=post.conversation_id)
            .order_by("-opened_at")
            .first()
        )
    return None


def post_route(*, post: Post, verdict: classify.Verdict, services: dict[str, Service]) -> str | None:
    """Decide one classified post. Returns the triage state it ends in, or None if another
    worker got there first."""
    rule: WatchRule | None = post.rule
    threshold = rule.complaint_threshold if rule else 0.5
    is_complaint = verdict.score >= threshold
    service = services.get(verdict.service) if verdict.service else None
    if service is None and rule is not None:
        service = rule.default_service
    with transaction.atomic():
        # Lock the author first: their posts are routed one at a time, so two follow-ups
        # handled by two workers cannot open two incidents for one conversation.
        Author.objects.select_for_update().filter(pk=post.author_id).first()
        locked = Post.objects.select_for_update().filter(pk=post.pk, triage_state=Post.Triage.PENDING).first()
        if locked is None:
            return None
        post.is_complaint = is_complaint
        post.complaint_score = round(verdict.score, 4)
        post.sentiment = round(verdict.sentiment, 4)
        post.detected_service = services.get(verdict.service) if verdict.service else None
        post.urgency_hint = verdict.urgency
        post.reasons = list(verdict.reasons)
        post.save(
            update_fields=[
                "is_complaint",
                "complaint_score",
                "sentiment",
                "detected_service",
                "urgency_hint",
                "reasons",
            ]
        )

        incident = _thread_incident(post)
        if incident is not None:
            post_link(post=post, incident=incident)
            return Post.Triage.INCIDENT
        ignore_why = _ignore_reason(post, rule, is_complaint)
        if ignore_why:
            post.triage_state = Post.Triage.IGNORED
            post.reasons = [*post.reasons, ignore_why]
            post.save(update_fields=["triage_state", "reasons"])
            return Post.Triage.IGNORED
        if rule is not None and rule.action == WatchRule.Action.QUEUE:
            post.triage_state = Post.Triage.QUEUED
            post.save(update_fields=["triage_state"])
            return Post.Triage.QUEUED
        incident_open_from_post(
            post=post,
            rule=rule,
            service=service,
            urgency=verdict.urgency,
            reason=f"complaint score {verdict.score:.2f} >= {threshold:.2f}: {', '.join(verdict.reasons)}",
        )
        return Post.Triage.INCIDENT


def _ignore_reason(post: Post, rule: WatchRule | None, is_complaint: bool) -> str:
    if post.channel.handle and post.author.handle.lstrip("@").lower() == post.channel.handle.lstrip("@").lower():
        return "our own post"
    if rule is not None and rule.languages and post.language and post.language not in rule.languages:
        return f"language {post.language} is not watched by this rule"
    if not is_complaint:
        return "below the complaint threshold"
    return ""


def post_promote(*, post: Post, actor) -> Incident:
    """An agent decides an ignored or queued post is a complaint after all."""
    from socialitsm.exceptions import ApplicationError

    with transaction.atomic():
        locked = (
            Post.objects.select_for_update(of=("self",)).select_related("rule", "author", "channel").get(pk=post.pk)
        )
        if locked.incident_id is not None:
            raise ApplicationError(f"post is already linked to {locked.incident.number}")
        if locked.triage_state == Post.Triage.PENDING:
            raise ApplicationError("post has not been classified yet")
        incident = _thread_incident(locked)
        if incident is not None:
            post_link(post=locked, incident=incident, actor=actor)
            event_record(
                incident, IncidentEvent.Kind.PROMOTED, actor=actor, new=f"{locked.network}:{locked.external_id}"
            )
            return incident
        service = locked.detected_service or (locked.rule.default_service if locked.rule else None)
        incident = incident_open_from_post(
            post=locked,
            rule=locked.rule,
            service=service,
            urgency=locked.urgency_hint or 3,
            actor=actor,
            reason="promoted by an agent",
        )
        event_record(incident, IncidentEvent.Kind.PROMOTED, actor=actor, new=f"{locked.network}:{locked.external_id}")
        return incident
