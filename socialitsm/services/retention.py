"""Retention and erasure: what we keep of the people who post, and for how long.

A channel's `retention_days` bounds how long its posts are kept in full. The beat's sweep
(`posts_retention_sweep`) walks each channel's older posts in small batches, each its own short
transaction over row locks it skips when taken (never a table lock): a post no incident counts
and nobody answered is deleted; one that an incident counts keeps its row, times and verdict
(the incident's post count and SLA figures stay exact) and loses its words, payload and links.
An author left with nothing but such posts loses their details too, and one left with nothing at
all is deleted. Incidents keep their rows and figures.

A poster's request to be forgotten (`author_erase`, from the admin or the API) does the same at
once for everything of theirs, whatever its age, and also takes their words out of incident
titles, descriptions, the audit trail and what was pushed to ITSM suites, as a deletion upstream
does (`posts_redact`). Titles made from their posts go even where the words can no longer be
matched (the post's text already expired): an incident they opened whose title no agent changed
gets the neutral title, and a major incident titled after one of theirs loses the quote. Posts
of theirs that the database refused at ingest (`IngestRejection`, which keeps the post as sent)
are deleted. An `AuthorErasure` records that it happened, who asked and for which author:
never what was removed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from socialitsm.models import (
    Author,
    AuthorErasure,
    Channel,
    Incident,
    IncidentEvent,
    IngestRejection,
    ItsmDelivery,
    ItsmLink,
    Post,
    PostRevision,
    Reply,
)

from .deletions import _OUR_WORDS, REDACTED_TITLE, _without_texts, posts_redact

logger = logging.getLogger(__name__)

BATCH = 500
ERASED = "[erased at the poster's request]"
# What a post past retention keeps of its words.
EXPIRED_TEXT = ""


@dataclass
class RetentionOutcome:
    deleted: int = 0
    anonymised: int = 0
    authors_anonymised: int = 0
    authors_deleted: int = 0
    rejections_deleted: int = 0


def author_ref(author: Author) -> str:
    """An opaque reference to the person: a keyed hash of their network id, the same for every
    later row of the same person, and useless without the site's secret key."""
    key = settings.SECRET_KEY.encode()
    ident = f"{author.network}:{author.scope}:{author.external_id}".encode()
    return hmac.new(key, ident, hashlib.sha256).hexdigest()


def _unanswered(ids: list[int]):
    """Posts among `ids` that no incident counts and nobody replied to: they can go entirely."""
    return Post.objects.filter(pk__in=ids, incident__isnull=True).exclude(
        Exists(Reply.objects.filter(post=OuterRef("pk")))
    )


def _posts_strip(ids: list[int], now: datetime, text: str) -> None:
    """Keep the rows (an incident counts them, a reply answers them) without anything personal."""
    PostRevision.objects.filter(post_id__in=ids).delete()
    Post.objects.filter(pk__in=ids).update(
        text=text,
        raw={},
        details=[],
        reasons=[],
        url="",
        in_reply_to="",
        conversation_id="",
        posted_at_reported="",
        erased_at=now,
    )


def _authors_settle(author_ids: set[int], now: datetime) -> tuple[int, int]:
    """Authors with no post left in full lose their details; those with no post and no incident
    at all are deleted. Returns (anonymised, deleted)."""
    live = Post.objects.filter(author=OuterRef("pk"), erased_at__isnull=True)
    anyone = Post.objects.filter(author=OuterRef("pk"))
    opened = Incident.objects.filter(author=OuterRef("pk"))
    candidates = Author.objects.filter(pk__in=author_ids)
    deleted, _ = candidates.exclude(Exists(anyone)).exclude(Exists(opened)).delete()
    anonymised = _authors_strip(candidates.filter(erased_at__isnull=True).exclude(Exists(live)), now)
    return anonymised, deleted


def _authors_strip(authors, now: datetime) -> int:
    return authors.update(
        handle="",
        name="",
        profile_url="",
        caller_email="",
        employee_id="",
        external_id=Concat(Value("erased-"), Cast("pk", output_field=Author._meta.get_field("external_id"))),
        erased_at=now,
    )


# -- retention -------------------------------------------------------------------------------------


def posts_retention_sweep(*, now: datetime | None = None, batch: int = BATCH) -> RetentionOutcome:
    """Apply every channel's retention period (see the module docstring). Safe to run while
    ingest and agents work, and to run twice; a long backlog is worked through batch by batch."""
    now = now or timezone.now()
    outcome = RetentionOutcome()
    for channel in Channel.objects.filter(retention_days__isnull=False).order_by("pk"):
        cutoff = now - timedelta(days=channel.retention_days or 0)
        while _retention_batch(channel, cutoff, now, batch, outcome):
            pass
        while True:
            old = list(
                IngestRejection.objects.filter(channel=channel, created_at__lt=cutoff)
                .order_by("created_at")
                .values_list("pk", flat=True)[:batch]
            )
            if not old:
                break
            outcome.rejections_deleted += IngestRejection.objects.filter(pk__in=old).delete()[0]
    if outcome.deleted or outcome.anonymised:
        logger.info("retention: %s", outcome)
    return outcome


def _retention_batch(channel: Channel, cutoff: datetime, now: datetime, batch: int, outcome: RetentionOutcome) -> int:
    with transaction.atomic():
        rows = list(
            Post.objects.select_for_update(of=("self",), skip_locked=True)
            .filter(channel=channel, erased_at__isnull=True, posted_at__lt=cutoff)
            .order_by("posted_at", "pk")
            .values_list("pk", "author_id", "incident_id", "network", "external_id")[:batch]
        )
        if not rows:
            return 0
        ids = [pk for pk, *_ in rows]
        gone = set(_unanswered(ids).values_list("pk", flat=True))
        kept = [row for row in rows if row[0] not in gone]
        # The audit trail's "post linked" entry quotes the post: it keeps the fact, not the words.
        linked = [(incident_id, f"{network}:{external_id}") for _, _, incident_id, network, external_id in kept]
        if linked:
            IncidentEvent.objects.filter(
                kind=IncidentEvent.Kind.POST_LINKED,
                incident_id__in={incident_id for incident_id, _ in linked if incident_id},
                new_value__in={ref for _, ref in linked},
            ).update(message="")
        PostRevision.objects.filter(post_id__in=gone).delete()
        Post.objects.filter(pk__in=gone).delete()
        _posts_strip([row[0] for row in kept], now, EXPIRED_TEXT)
        anonymised, deleted = _authors_settle({author_id for _, author_id, *_ in rows}, now)
    outcome.deleted += len(gone)
    outcome.anonymised += len(kept)
    outcome.authors_anonymised += anonymised
    outcome.authors_deleted += deleted
    return len(rows)


# -- the right to be forgotten ---------------------------------------------------------------------


def author_erase(*, author: Author, actor) -> AuthorErasure:
    """Erase a poster at their request: their unanswered posts no incident counts are deleted,
    the others redacted everywhere their words were copied (incident titles and descriptions,
    the audit trail, ITSM pushes), replies to them lose their text, and the author row keeps only
    its id. Incidents keep their rows and figures. Records an AuthorErasure; safe to repeat."""
    now = timezone.now()
    with transaction.atomic():
        author = Author.objects.select_for_update().get(pk=author.pk)
        ref = author_ref(author)
        names = [value for value in (author.handle, author.name) if len(value.strip()) >= 2]
        ids = list(Post.objects.filter(author=author).values_list("pk", flat=True))
        derived = _derived_titles(author)
        _unanswered(ids).delete()
        posts = list(Post.objects.filter(author=author).values_list("pk", "network", "scope", "external_id"))
        by_scope: dict[tuple[str, str], list[str]] = defaultdict(list)
        for _, network, scope, external_id in posts:
            by_scope[(network, scope)].append(external_id)
        for (network, scope), external_ids in sorted(by_scope.items()):
            posts_redact(network=network, scope=scope, external_ids=external_ids, reason=Post.Gone.ERASED, now=now)
        # The audit trail names the posts by their network ids: it keeps that there were posts.
        refs = {f"{network}:{external_id}" for _, network, _, external_id in posts}
        erased_ref = {ref_: f"{ref_.split(':', 1)[0]}:[erased]" for ref_ in refs}
        for event in IncidentEvent.objects.filter(Q(new_value__in=refs) | Q(old_value__in=refs)):
            IncidentEvent.objects.filter(pk=event.pk).update(
                new_value=erased_ref.get(event.new_value, event.new_value),
                old_value=erased_ref.get(event.old_value, event.old_value),
            )
        post_ids = [pk for pk, *_ in posts]
        _posts_strip(post_ids, now, ERASED)
        Post.objects.filter(pk__in=post_ids).update(
            external_id=Concat(Value("erased-"), Cast("pk", output_field=Post._meta.get_field("external_id")))
        )
        _replies_erase(post_ids, names)
        _incidents_erase(author, names)
        _titles_erase(derived, now)
        _rejections_erase(author)
        _authors_strip(Author.objects.filter(pk=author.pk), now)
        record = AuthorErasure.objects.create(author_id_erased=author.pk, author_ref=ref, actor=actor, created_at=now)
    logger.info("author %s erased at the request of user %s", author.pk, getattr(actor, "pk", None))
    return record


def _replies_erase(post_ids: list[int], names: list[str]) -> None:
    """Replies to the poster were written for them (often by name): their text goes, from the
    reply, the audit trail and the ITSM delivery log."""
    replies = list(Reply.objects.filter(post_id__in=post_ids).values_list("pk", "incident_id", "text"))
    if not replies:
        return
    texts: dict[int, list[str]] = defaultdict(list)
    for _, incident_id, text in replies:
        texts[incident_id].append(text)
    for incident_id, words in texts.items():
        for event in IncidentEvent.objects.filter(incident_id=incident_id, kind__in=_OUR_WORDS):
            message = _without_texts(event.message, [*words, *names], ERASED)
            if message != event.message:
                IncidentEvent.objects.filter(pk=event.pk).update(message=message)
    reply_ids = [pk for pk, *_ in replies]
    Reply.objects.filter(pk__in=reply_ids).update(text=ERASED)
    ItsmDelivery.objects.filter(reply_id__in=reply_ids).update(detail=ERASED)


def _incidents_erase(author: Author, names: list[str]) -> None:
    """The incidents they opened keep their figures; their descriptions lose the poster's name,
    and what was pushed of them to ITSM suites is pushed again."""
    for incident in Incident.objects.select_for_update().filter(author=author).only("pk", "description"):
        description = incident.description
        for name in names:
            description = description.replace(name, "[erased]")
        if description != incident.description:
            Incident.objects.filter(pk=incident.pk).update(description=description, updated_at=timezone.now())
            for link in ItsmLink.objects.filter(incident=incident).only("pk", "pushed"):
                pushed = link.pushed if isinstance(link.pushed, dict) else {}
                if "description" in pushed:
                    kept = {key: value for key, value in pushed.items() if key != "description"}
                    ItsmLink.objects.filter(pk=link.pk).update(pushed=kept, recheck_at=timezone.now())


def _derived_titles(author: Author) -> dict[int, str]:
    """Incidents whose title was made from the poster's words, with that title: those opened
    from their post whose title no agent changed since."""
    renamed = IncidentEvent.objects.filter(
        incident=OuterRef("pk"), kind=IncidentEvent.Kind.CHANGED, field="short_description"
    )
    return dict(
        Incident.objects.filter(author=author, is_major=False)
        .exclude(Exists(renamed))
        .values_list("pk", "short_description")
    )


def _titles_erase(derived: dict[int, str], now: datetime) -> None:
    """The incidents in `derived` get the neutral title and description (both were made from the
    post), and their major incidents lose the quoted title; what was pushed of them to ITSM
    suites is pushed again."""
    if not derived:
        return
    neutral = REDACTED_TITLE[Post.Gone.ERASED]
    changed: set[int] = set()
    for incident in Incident.objects.select_for_update().filter(pk__in=derived).only("pk", "short_description"):
        Incident.objects.filter(pk=incident.pk).update(short_description=neutral, description=ERASED, updated_at=now)
        changed.add(incident.pk)
    quoted = [title for title in derived.values() if title and title != neutral]
    parent_ids = Incident.objects.filter(pk__in=derived, parent__isnull=False).values_list("parent_id", flat=True)
    for parent in Incident.objects.select_for_update().filter(pk__in=list(parent_ids)).only("pk", "short_description"):
        title = _without_texts(parent.short_description, quoted, ERASED)
        if title != parent.short_description:
            Incident.objects.filter(pk=parent.pk).update(short_description=title, updated_at=now)
            changed.add(parent.pk)
    for link in ItsmLink.objects.filter(incident_id__in=changed).only("pk", "pushed"):
        pushed = link.pushed if isinstance(link.pushed, dict) else {}
        kept = {key: value for key, value in pushed.items() if key not in ("short_description", "description")}
        ItsmLink.objects.filter(pk=link.pk).update(pushed=kept, recheck_at=now)


def _rejections_erase(author: Author) -> int:
    """Posts of theirs the database refused at ingest: the stored payload is the post as sent,
    author included. Returns rows deleted."""
    rejections = IngestRejection.objects.filter(network=author.network, payload__author__external_id=author.external_id)
    if author.scope:
        rejections = rejections.filter(channel_id=author.scope) if author.scope.isdigit() else rejections.none()
    return rejections.delete()[0]
