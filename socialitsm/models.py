"""The SocialITSM domain: channels listen, posts arrive, incidents are worked and answered."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.hashable import make_hashable

from . import sla
from .conf import conf
from .connectors.base import RuleKind
from .crypto import EncryptedJSONField


class BaseModel(models.Model):
    """The app's models' base: rows read from the database are built by filling the instance's
    attributes directly. Django's `from_db` calls `__init__`, which sets each field through
    `setattr` and sends `pre_init` and `post_init`; a page of 50 incidents builds about 350
    instances and a routing batch about 1,700, and building them was a tenth of their cost.
    With a receiver of either signal for the model, Django's own path is taken."""

    class Meta:
        abstract = True

    @classmethod
    def from_db(cls, db: str | None, field_names: Any, values: Any) -> Any:
        if pre_init.has_listeners(cls) or post_init.has_listeners(cls):
            return super().from_db(db, field_names, values)
        attnames = cls.__dict__.get("_row_attnames")
        if attnames is None:
            attnames = tuple(field.attname for field in cls._meta.concrete_fields)
            cls._row_attnames = attnames  # type: ignore[attr-defined]
        new = cls.__new__(cls)
        state = ModelState()
        state.adding = False
        state.db = db
        attributes = new.__dict__
        attributes["_state"] = state
        if len(values) == len(attnames):
            attributes.update(zip(attnames, values, strict=True))
        else:
            # Some fields deferred: the values come in the fields' order, as Django's from_db reads them.
            attributes.update(zip([name for name in attnames if name in field_names], values, strict=True))
        return new

    def _get_FIELD_display(self, field: models.Field[Any, Any]) -> Any:
        # As Django's, with the field's choices made into a lookup once instead of at every call
        # (a queue page shows about 130 labels). Labels stay lazy: each call translates its own.
        value = getattr(self, field.attname)
        labels = field.__dict__.get("_display_labels")
        if labels is None:
            labels = field.__dict__["_display_labels"] = dict(make_hashable(field.flatchoices))
        return force_str(labels.get(make_hashable(value), value), strings_only=True)


class Network(models.TextChoices):
    MASTODON = "mastodon", "Mastodon"
    BLUESKY = "bluesky", "Bluesky"
    X = "x", "X"
    REDDIT = "reddit", "Reddit"
    WEBHOOK = "webhook", "Webhook"
    REPLAY = "replay", "Replay"


# ITIL priority lookup: PRIORITY_MATRIX[impact][urgency], 1 = highest.
PRIORITY_MATRIX: dict[int, dict[int, int]] = {
    1: {1: 1, 2: 2, 3: 3},
    2: {1: 2, 2: 3, 3: 4},
    3: {1: 3, 2: 4, 3: 5},
}


def priority_for(impact: int, urgency: int) -> int:
    return PRIORITY_MATRIX[impact][urgency]


_LEVEL = [MinValueValidator(1), MaxValueValidator(3)]


class Channel(BaseModel):
    """One connected account on one network: it listens, and it is the voice that replies."""

    class ListenMode(models.TextChoices):
        POLL = "poll", "Poll"
        STREAM = "stream", "Stream"
        PUSH = "push", "Push (webhook)"

    class Health(models.TextChoices):
        OK = "ok", "OK"
        DEGRADED = "degraded", "Degraded"
        FAILING = "failing", "Failing"

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=64, unique=True)
    network = models.CharField(max_length=16, choices=Network.choices)
    handle = models.CharField(max_length=255, blank=True, help_text="The account's own handle.")
    base_url = models.URLField(blank=True)
    credentials = EncryptedJSONField(blank=True, default=dict, help_text="Tokens and secrets; encrypted at rest.")
    config = models.JSONField(blank=True, default=dict, help_text="Connector options that are not secret.")
    listen_mode = models.CharField(max_length=8, choices=ListenMode.choices, default=ListenMode.POLL)
    poll_interval = models.PositiveIntegerField(default=60, help_text="Seconds between polls.")
    enabled = models.BooleanField(default=True)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    rate_limited_until = models.DateTimeField(null=True, blank=True)
    health = models.CharField(max_length=8, choices=Health.choices, default=Health.OK)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # Rate-limit allowance as the network last reported it, and what this channel has used.
    quota_remaining = models.IntegerField(null=True, blank=True)
    quota_limit = models.IntegerField(null=True, blank=True)
    quota_reset_at = models.DateTimeField(null=True, blank=True)
    requests_made = models.PositiveBigIntegerField(default=0, help_text="Requests sent to the network, all time.")
    cost_used = models.DecimalField(
        max_digits=12, decimal_places=4, default=0, help_text="Pay-per-use cost so far (X), in the network's currency."
    )
    # Where the streaming connection left off (Jetstream time_us, ...); saved with its posts.
    stream_cursor = models.JSONField(blank=True, default=dict)
    retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Days a post is kept in full (e.g. 400); older ones are removed or anonymised. Empty keeps them.",
    )
    # Listening health (see services/alerts.py): the HTTP status of the last failed call (401:
    # credentials refused), and how often the stream fell back to polling since the time given.
    last_error_status = models.PositiveSmallIntegerField(null=True, blank=True)
    stream_fallbacks = models.PositiveIntegerField(default=0)
    stream_fallbacks_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_network_display()})"

    def is_quiet(self, *, recent_posts: int, now: datetime) -> bool:
        """A busy channel that has gone silent for far longer than its usual gap between posts:
        a broken stream, revoked access or a changed API rather than a calm day.
        `recent_posts` counts posts stored in the last QUIET_WINDOW_HOURS (see `channel_list`)."""
        if recent_posts < conf.QUIET_BUSY_POSTS or self.last_event_at is None:
            return False
        usual_gap = timedelta(hours=conf.QUIET_WINDOW_HOURS) / recent_posts
        allowed = max(usual_gap * conf.QUIET_GAPS, timedelta(minutes=conf.QUIET_MIN_MINUTES))
        return now - self.last_event_at > allowed


class BilledResource(BaseModel):
    """A resource a pay-per-use network charged this channel for on one UTC day (X charges a post
    or user read once per day): the ledger that keeps `Channel.cost_used` from counting it twice,
    whichever worker or process read it. Rows of past days are pruned as the channel records."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    day = models.DateField(help_text="The UTC day of the charge.")
    item = models.CharField(max_length=32, help_text='The price item, e.g. "post_read".')
    resource_id = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "day", "item", "resource_id"], name="billedresource_once_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.item} {self.resource_id} on {self.day}"


class WatchRule(BaseModel):
    """What a channel listens for, and what happens to what it hears."""

    Kind = RuleKind

    class Action(models.TextChoices):
        OPEN_INCIDENT = "open_incident", "Open incidents"
        QUEUE = "queue", "Queue for triage"

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SEARCH)
    query = models.CharField(max_length=500, blank=True)
    languages = models.JSONField(
        blank=True, default=list, help_text='Language codes, e.g. ["en", "fr"]; empty means all.'
    )
    complaint_threshold = models.FloatField(default=0.5, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    default_service = models.ForeignKey("Service", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assignment_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    default_impact = models.PositiveSmallIntegerField(default=3, validators=_LEVEL)
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.OPEN_INCIDENT)
    enabled = models.BooleanField(default=True)
    # Where the network's listing left off for this rule (since_id, cursor, file offset...).
    cursor = models.JSONField(blank=True, default=dict)

    class Meta:
        ordering = ["channel", "name"]

    def __str__(self) -> str:
        return f"{self.channel.slug}: {self.name}"


# Networks whose ids are only unique within one channel: each webhook caller names its own
# posts and people, so one channel's ids must never reach another channel's rows.
CHANNEL_SCOPED_NETWORKS = frozenset({Network.WEBHOOK})


def id_scope(channel: Channel) -> str:
    """Where `channel`'s external ids are unique: "" on networks with global ids, the channel
    itself on networks where each caller names its own (see CHANNEL_SCOPED_NETWORKS)."""
    return str(channel.pk) if channel.network in CHANNEL_SCOPED_NETWORKS else ""


class Author(BaseModel):
    network = models.CharField(max_length=16, choices=Network.choices)
    scope = models.CharField(
        max_length=32, blank=True, default="", editable=False, help_text="The channel owning the id; see id_scope."
    )
    external_id = models.CharField(max_length=255)
    handle = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=255, blank=True)
    profile_url = models.URLField(max_length=1000, blank=True)
    caller_email = models.EmailField(blank=True, help_text="Known caller, for ITSM suites.")
    employee_id = models.CharField(max_length=64, blank=True)
    erased_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the person's details were removed (past retention, or at their request).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["network", "scope", "external_id"], name="author_network_scope_external_id_uniq"
            )
        ]

    def __str__(self) -> str:
        return self.handle or self.name or self.external_id


class Service(BaseModel):
    """A lightweight service catalogue used by classification and routing."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    aliases = models.JSONField(blank=True, default=list, help_text="Other names people use, e.g. product names.")
    description = models.TextField(
        blank=True,
        default="",
        help_text=(
            "What the service does, in a sentence or two (e.g. 'Meeting-room booking and room displays'); "
            "the classifier matches posts that describe the service without naming it against this text."
        ),
    )
    owner_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    active = models.BooleanField(default=True)
    spike_authors = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(2)],
        help_text="Distinct complainers within the window that open a major incident; empty for the default.",
    )
    spike_window_minutes = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(1440)],
        help_text="Minutes the spike is counted over; empty for the default.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class IncidentQuerySet(models.QuerySet):
    def open(self) -> IncidentQuerySet:
        return self.filter(state__in=Incident.OPEN_STATES)


class Incident(BaseModel):
    class State(models.TextChoices):
        NEW = "new", "New"
        IN_PROGRESS = "in_progress", "In progress"
        ON_HOLD = "on_hold", "On hold"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"
        CANCELED = "canceled", "Canceled"

    OPEN_STATES = (State.NEW, State.IN_PROGRESS, State.ON_HOLD)

    class Level(models.IntegerChoices):
        HIGH = 1, "1 - High"
        MEDIUM = 2, "2 - Medium"
        LOW = 3, "3 - Low"

    class Priority(models.IntegerChoices):
        CRITICAL = 1, "1 - Critical"
        HIGH = 2, "2 - High"
        MODERATE = 3, "3 - Moderate"
        LOW = 4, "4 - Low"
        PLANNING = 5, "5 - Planning"

    number = models.CharField(max_length=32, unique=True, editable=False)
    short_description = models.CharField(max_length=160)
    description = models.TextField(blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.NEW)
    impact = models.PositiveSmallIntegerField(choices=Level.choices, default=Level.LOW)
    urgency = models.PositiveSmallIntegerField(choices=Level.choices, default=Level.MEDIUM)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, editable=False)
    service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents")
    category = models.CharField(max_length=64, blank=True)
    assignment_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_incidents"
    )
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    is_major = models.BooleanField(default=False, help_text="One outage; the incidents it affects are its children.")
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="merged",
        help_text="The incident this duplicate was merged into; its posts, replies and events moved there.",
    )
    author = models.ForeignKey(Author, null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents")
    channel = models.ForeignKey(Channel, null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents")
    opened_at = models.DateTimeField(default=timezone.now)
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    sla_policy = models.ForeignKey("SlaPolicy", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    response_breached = models.BooleanField(default=False)
    resolution_breached = models.BooleanField(default=False)
    sla_started_at = models.DateTimeField(
        null=True, blank=True, help_text="When the poster first complained (clamped to when we received it)."
    )
    ingest_lag_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Time from the first post to its arrival here."
    )
    updated_at = models.DateTimeField(auto_now=True)
    # Kept by incidents_figures_refresh (see services/figures.py) wherever posts or clocks change,
    # so that lists neither count posts nor look into clocks per incident.
    post_count = models.PositiveIntegerField(default=0, editable=False, help_text="Posts linked to the incident.")
    breach_due_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="The earliest due time among the running SLA clocks."
    )
    version = models.PositiveIntegerField(
        default=1, editable=False, help_text="Counts agent-editable changes; a stale page or If-Match is refused."
    )

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ["priority", "opened_at"]
        indexes = [
            models.Index(fields=["state", "priority", "opened_at"], name="incident_queue_idx"),
            models.Index(fields=["priority", "opened_at", "id"], name="incident_order_idx"),
            # The agents' queue: open incidents only, in its default order.
            models.Index(
                fields=["priority", "opened_at", "id"],
                name="incident_open_order_idx",
                condition=Q(state__in=["new", "in_progress", "on_hold"]),
            ),
            # The queue's counts of open incidents by what its filters and views split them by,
            # read from the index alone.
            models.Index(
                fields=["state", "priority", "service", "assignee", "is_major", "breach_due_at"],
                name="incident_open_counts_idx",
                condition=Q(state__in=["new", "in_progress", "on_hold"]),
            ),
            # Time to breach, soonest first, incidents without a running clock last (ASC NULLS LAST).
            models.Index(fields=["breach_due_at", "priority", "opened_at", "id"], name="incident_breach_idx"),
            models.Index(fields=["service", "opened_at"], condition=Q(is_major=True), name="incident_major_idx"),
            # The SLA report's periods: incidents opened, resolved and whose clocks started in it.
            models.Index(fields=["opened_at"], name="incident_opened_idx"),
            models.Index(fields=["resolved_at"], name="incident_resolved_idx", condition=Q(resolved_at__isnull=False)),
            models.Index(fields=["sla_started_at"], include=["ingest_lag_seconds"], name="incident_sla_started_idx"),
            # The report joins its period's clocks to these fields: read from the index alone.
            models.Index(
                fields=["id"],
                include=["priority", "service", "assignee", "assignment_group", "first_response_at"],
                name="incident_report_idx",
            ),
            # Spike detection: a service's recent complaints not yet part of a major incident.
            models.Index(
                fields=["service", "opened_at"],
                condition=Q(is_major=False, parent__isnull=True),
                name="incident_spike_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(impact__gte=1, impact__lte=3), name="incident_impact_range"),
            models.CheckConstraint(condition=Q(urgency__gte=1, urgency__lte=3), name="incident_urgency_range"),
            models.CheckConstraint(condition=Q(priority__gte=1, priority__lte=5), name="incident_priority_range"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.short_description}"

    def save(self, *args, **kwargs) -> None:
        self.priority = priority_for(self.impact, self.urgency)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and ({"impact", "urgency"} & set(update_fields)):
            kwargs["update_fields"] = {*update_fields, "priority"}
        super().save(*args, **kwargs)

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    # A list's incidents get their clocks and ITSM links as plain lists (selectors.incident_list
    # prefetches them into these attributes): kept as related managers, each incident of a page
    # cost a queryset of its own for each.
    CLOCKS_PREFETCHED = "_clocks_prefetched"
    ITSM_LINKS_PREFETCHED = "_itsm_links_prefetched"

    @property
    def clocks_listed(self) -> list[SlaClock]:
        """The incident's SLA clocks in target order: as prefetched, else read now."""
        prefetched = self.__dict__.get(self.CLOCKS_PREFETCHED)
        if prefetched is not None:
            return prefetched
        return list(self.sla_clocks.select_related("policy__calendar").order_by("target", "cycle"))

    @property
    def itsm_links_listed(self) -> list[ItsmLink]:
        """The incident's records in ITSM suites, oldest first: as prefetched, else read now."""
        prefetched = self.__dict__.get(self.ITSM_LINKS_PREFETCHED)
        if prefetched is not None:
            return prefetched
        # The related manager gives each link this incident.
        return list(self.itsm_links.select_related("connection").order_by("pk"))


class IncidentCounter(BaseModel):
    """One row per number series; incremented under a row lock so numbers never collide."""

    name = models.CharField(max_length=32, unique=True)
    value = models.PositiveBigIntegerField()

    def __str__(self) -> str:
        return f"{self.name}: {self.value}"


class PostQuerySet(models.QuerySet):
    def pending(self) -> PostQuerySet:
        return self.filter(triage_state=Post.Triage.PENDING)

    def routable(self) -> PostQuerySet:
        """Pending posts routing has not given up on: a parked post waits for a person."""
        return self.pending().filter(routing_failed_at__isnull=True)


class Post(BaseModel):
    class Triage(models.TextChoices):
        PENDING = "pending", "Pending"
        INCIDENT = "incident", "Linked to incident"
        QUEUED = "queued", "Queued for triage"
        IGNORED = "ignored", "Ignored (not a complaint)"

    class Label(models.TextChoices):
        COMPLAINT = "complaint", "Complaint"
        NOT_COMPLAINT = "not_complaint", "Not a complaint"

    class Gone(models.TextChoices):
        DELETED = "deleted", "Deleted by its author"
        REMOVED = "removed", "Removed by moderators"
        ERASED = "erased", "Erased at the poster's request"

    network = models.CharField(max_length=16, choices=Network.choices)
    scope = models.CharField(
        max_length=32, blank=True, default="", editable=False, help_text="The channel owning the id; see id_scope."
    )
    external_id = models.CharField(max_length=255)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="posts")
    # No index of its own: deleting a rule is rare, and every index of a post is written again
    # each time routing updates the post (see Meta.indexes).
    rule = models.ForeignKey(
        WatchRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="posts", db_index=False
    )
    # Served by post_author_conversation_idx, which leads with the author.
    author = models.ForeignKey(Author, on_delete=models.PROTECT, related_name="posts", db_index=False)
    text = models.TextField(help_text="Plain text as posted; untrusted, always rendered escaped.")
    raw = models.JSONField(blank=True, default=dict)
    details = models.JSONField(
        blank=True,
        default=list,
        help_text='Parts beside the text, e.g. [{"kind": "quote", "text": "...", "url": "..."}]; untrusted.',
    )
    url = models.URLField(max_length=1000, blank=True)
    posted_at = models.DateTimeField(help_text="When the person posted, per the network.")
    posted_at_reported = models.CharField(
        max_length=64,
        blank=True,
        help_text="The network's time for the post when it was not plausible; posted_at is then when it reached us.",
    )
    ingested_at = models.DateTimeField(default=timezone.now)
    in_reply_to = models.CharField(max_length=255, blank=True, help_text="External id of the post this answers.")
    conversation_id = models.CharField(max_length=255, blank=True)
    language = models.CharField(max_length=16, blank=True)
    is_direct = models.BooleanField(default=False)
    is_complaint = models.BooleanField(null=True)
    complaint_score = models.FloatField(null=True, blank=True)
    sentiment = models.FloatField(null=True, blank=True)
    detected_service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    urgency_hint = models.PositiveSmallIntegerField(null=True, blank=True)
    reasons = models.JSONField(blank=True, default=list)
    triage_state = models.CharField(max_length=16, choices=Triage.choices, default=Triage.PENDING)
    # Served by post_incident_order_idx (a lookup by incident implies it is not null).
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="posts", db_index=False
    )
    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="When we saw the author delete it upstream; text and payload are redacted."
    )
    gone_reason = models.CharField(
        max_length=8, choices=Gone.choices, blank=True, help_text="Who took the post down, once it is gone upstream."
    )
    checked_at = models.DateTimeField(
        null=True, blank=True, help_text="When the network was last asked whether the post still exists."
    )
    label = models.CharField(
        max_length=16,
        choices=Label.choices,
        blank=True,
        help_text="An agent's verdict on the classifier's call; socialitsm_train learns from it.",
    )
    labelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    labelled_at = models.DateTimeField(null=True, blank=True)
    routing_error = models.TextField(blank=True, help_text="Why routing failed; the post waits for a retry.")
    routing_failed_at = models.DateTimeField(null=True, blank=True)
    edited_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the author last edited the post, per the network; earlier versions are its revisions.",
    )
    erased_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When its words and payload were removed (past retention, or at the poster's request).",
    )

    objects = PostQuerySet.as_manager()

    class Meta:
        ordering = ["posted_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["network", "scope", "external_id"], name="post_network_scope_external_id_uniq"
            )
        ]
        # Routing updates columns that indexes hold (triage state, incident, sentiment), so each
        # routed post is a new entry in every index of this table: an index earns its place here
        # by a read that needs it, and the foreign keys that other indexes lead with or that only
        # a rare delete follows have none of their own.
        indexes = [
            models.Index(
                fields=["ingested_at"],
                name="post_routable_idx",
                condition=Q(triage_state="pending", routing_failed_at__isnull=True),
            ),
            models.Index(
                fields=["routing_failed_at"], name="post_parked_idx", condition=Q(routing_failed_at__isnull=False)
            ),
            models.Index(fields=["author", "conversation_id"], name="post_author_conversation_idx"),
            models.Index(fields=["triage_state", "posted_at"], name="post_triage_idx"),
            # The posts list's order; covering what the daily sentiment chart reads (index-only scans).
            models.Index(fields=["posted_at", "id"], include=["network", "sentiment"], name="post_order_idx"),
            # An incident's posts in page order: without it PostgreSQL walks post_order_idx
            # backwards for the newest posts of an incident whose posts are old.
            models.Index(
                fields=["incident", "posted_at", "id"],
                name="post_incident_order_idx",
                condition=Q(incident__isnull=False),
            ),
            # The retention sweep: each channel's posts not yet erased, oldest first.
            models.Index(
                fields=["channel", "posted_at"], name="post_retention_idx", condition=Q(erased_at__isnull=True)
            ),
            models.Index(fields=["labelled_at"], name="post_labelled_idx", condition=~Q(label="")),
            # Deleting a user: only labelled posts have an entry.
            models.Index(fields=["labelled_by"], name="post_labelled_by_idx", condition=Q(labelled_by__isnull=False)),
            # The re-check sweep: live posts of incidents, least recently checked first.
            models.Index(
                fields=["channel", "checked_at"],
                name="post_recheck_idx",
                condition=Q(deleted_at__isnull=True, incident__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.network}:{self.external_id}"

    # A list's posts get their revisions as a plain list (selectors.post_list prefetches them
    # here): kept as a related manager, each post of a page cost a queryset of its own.
    REVISIONS_PREFETCHED = "_revisions_prefetched"

    @property
    def revisions_listed(self) -> list[PostRevision]:
        """The versions the post had before its edits, oldest first: as prefetched, else read now."""
        prefetched = self.__dict__.get(self.REVISIONS_PREFETCHED)
        return prefetched if prefetched is not None else list(self.revisions.all())

    def detail_items(self, *kinds: str) -> list[dict[str, str]]:
        """`details` as stored, read defensively (kept as JSON): entries of a known kind with
        their text and url as strings, in order; only those of `kinds` when given."""
        return detail_items(self.details, *kinds)


def detail_items(details: Any, *kinds: str) -> list[dict[str, str]]:
    """Stored `details` (of a post or of one of its earlier versions) read defensively."""
    from socialitsm.connectors.base import DetailKind

    wanted = set(kinds) or set(DetailKind.values)
    items = details if isinstance(details, list) else []
    return [
        {"kind": item["kind"], "text": str(item.get("text") or ""), "url": str(item.get("url") or "")}
        for item in items
        if isinstance(item, dict) and item.get("kind") in wanted
    ]


class PostSentimentHour(BaseModel):
    """Posts with a sentiment per hour (UTC) and network, and how many of them were negative and
    positive: what the sentiment chart of the reports reads instead of every post. Kept by the
    database itself (statement triggers on the posts table, see migration 0025), so every way a
    post is written, relabelled or removed (bulk routing, edits, retention, erasure) keeps it
    exact; on databases without such triggers the reports count the posts instead."""

    hour = models.DateTimeField()
    network = models.CharField(max_length=16, choices=Network.choices)
    rated = models.IntegerField(default=0, help_text="Posts with a sentiment.")
    negative = models.IntegerField(default=0)
    positive = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["hour", "network"], name="postsentimenthour_uniq")]

    def __str__(self) -> str:
        return f"{self.network} {self.hour:%Y-%m-%d %H}:00: {self.negative}-/{self.positive}+ of {self.rated}"


class IncidentStateTally(BaseModel):
    """How many incidents are in each state, as rows of changes that add up: the queue's view
    counts read these few rows instead of counting every incident. Kept by the database itself
    (statement triggers on the incidents table, see migration 0026): each statement that adds,
    changes or removes incidents inserts, per state it moved, one row with the difference, so
    writers never wait for one another on a shared row. `incident_state_tally_compact` folds the
    rows into one per state now and then. Other databases get the table but no triggers; the
    queue counts the incidents there."""

    state = models.CharField(max_length=16, choices=Incident.State.choices)
    incidents = models.IntegerField(help_text="Incidents that came into the state (negative: that left it).")

    def __str__(self) -> str:
        return f"{self.state} {self.incidents:+d}"


class PostRevision(BaseModel):
    """A version of a post its author has since edited: the text and details it had before the
    edit of `edited_at`. Written by `post_edit`; one row per edit."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="revisions")
    text = models.TextField(help_text="The post's text before the edit; untrusted, always rendered escaped.")
    details = models.JSONField(blank=True, default=list, help_text="The post's details before the edit; untrusted.")
    edited_at = models.DateTimeField(help_text="When the edit that replaced this version was made, per the network.")
    recorded_at = models.DateTimeField(default=timezone.now, help_text="When we learned of the edit.")

    class Meta:
        ordering = ["post", "edited_at", "id"]
        constraints = [models.UniqueConstraint(fields=["post", "edited_at"], name="postrevision_post_edited_uniq")]

    def __str__(self) -> str:
        return f"{self.post_id} before {self.edited_at:%Y-%m-%d %H:%M}"

    def detail_items(self, *kinds: str) -> list[dict[str, str]]:
        return detail_items(self.details, *kinds)


class IngestRejection(BaseModel):
    """A post the database refused even after cleaning, set aside with the error while the rest
    of its batch was stored. Kept for an admin to read; the channel's health counts them."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="rejections")
    network = models.CharField(max_length=16, choices=Network.choices)
    external_id = models.CharField(max_length=255, blank=True)
    error = models.TextField()
    payload = models.JSONField(blank=True, default=dict, help_text="The post as cleaned, for the record.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["channel", "created_at"], name="ingestrejection_channel_idx")]

    def __str__(self) -> str:
        return f"{self.network}:{self.external_id or '?'} refused"


class Reply(BaseModel):
    """An answer to the poster, tracked until the network confirms it."""

    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public reply"
        DIRECT = "direct", "Direct message"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="replies")
    post = models.ForeignKey(Post, on_delete=models.PROTECT, related_name="replies")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="replies")
    visibility = models.CharField(max_length=8, choices=Visibility.choices)
    text = models.TextField()
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    external_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    retry_after = models.DateTimeField(
        null=True, blank=True, help_text="After a transient failure: the next attempt, not before this time."
    )
    retry_until = models.DateTimeField(
        null=True, blank=True, help_text="After a transient failure: no attempt after this time; then it fails."
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    broadcast = models.ForeignKey(
        "Broadcast",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replies",
        help_text="The major incident's broadcast this reply carries to one affected poster.",
    )

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "replies"
        indexes = [
            models.Index(fields=["created_at"], name="reply_unsent_idx", condition=Q(status__in=["queued", "sending"])),
            models.Index(fields=["retry_after"], name="reply_retry_due_idx", condition=Q(status="queued")),
        ]
        constraints = [
            # One message of a broadcast per poster (it answers one post of theirs), however
            # often it is confirmed.
            models.UniqueConstraint(
                fields=["broadcast", "post"],
                name="reply_broadcast_post_uniq",
                condition=Q(broadcast__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_visibility_display()} on {self.incident.number}"

    @property
    def next_attempt_at(self) -> datetime | None:
        """When a queued reply is tried next (its paced slot, or its retry after a transient
        failure); None once it is no longer queued."""
        return self.retry_after if self.status == Reply.Status.QUEUED else None

    @property
    def is_waiting(self) -> bool:
        """Queued again after a transient failure, for a later attempt."""
        return self.status == self.Status.QUEUED and self.attempts > 0

    @property
    def can_retry(self) -> bool:
        """An agent may send it again now: it failed, or it waits out a backoff."""
        return self.status == self.Status.FAILED or self.is_waiting

    @property
    def can_cancel(self) -> bool:
        """An agent may withdraw it: nothing is on its way to the network."""
        return self.status in (self.Status.QUEUED, self.Status.FAILED)


class Broadcast(BaseModel):
    """One message an agent sends to every poster affected by a major incident: written once,
    personalised per poster, previewed, then confirmed by an agent. Each poster's copy is a
    `Reply` on their own incident, paced per channel; nothing goes out before confirmation."""

    class Kind(models.TextChoices):
        UPDATE = "update", "Update"
        FIXED = "fixed", "Fixed"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        CONFIRMED = "confirmed", "Confirmed"
        DISCARDED = "discarded", "Discarded"

    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public reply where the network allows it, else direct message"
        DIRECT = "direct", "Direct message"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="broadcasts")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.UPDATE)
    text = models.TextField(help_text="The template: {name}, {handle}, {service} and {incident} are filled per poster.")
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.PUBLIC)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    excluded = models.JSONField(blank=True, default=list, help_text="Author ids the confirming agent left out.")
    skipped = models.JSONField(
        blank=True, default=list, help_text='Posters left out at confirmation and why: [{"author": id, "reason": ...}].'
    )
    recipient_count = models.PositiveIntegerField(default=0, help_text="Replies queued at confirmation.")

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["incident", "status"], name="broadcast_incident_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} broadcast on {self.incident_id} ({self.status})"

    @property
    def skipped_count(self) -> int:
        """Posters left out at confirmation."""
        return len(self.skipped) if isinstance(self.skipped, list) else 0


class StatusPost(BaseModel):
    """A standalone post on one channel about a major incident ("We know e-mail is down,
    updates here"), tracked like a reply: claimed, sent once, retried, recorded."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="status_posts")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="status_posts")
    text = models.TextField()
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    external_id = models.CharField(max_length=255, blank=True)
    url = models.URLField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    retry_after = models.DateTimeField(null=True, blank=True)
    retry_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["incident", "channel"], name="statuspost_incident_channel_uniq")]
        indexes = [models.Index(fields=["retry_after"], name="statuspost_due_idx", condition=Q(status="queued"))]

    def __str__(self) -> str:
        return f"Status post on {self.channel_id} for {self.incident_id}: {self.status}"


class SlaCalendar(BaseModel):
    """Business hours in a time zone, with public holidays and extra closed days."""

    name = models.CharField(max_length=100, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA zone, e.g. Europe/Berlin.")
    hours = models.JSONField(
        blank=True,
        default=dict,
        help_text='Open hours per weekday in local time, e.g. {"mon": [["09:00", "17:00"]], "tue": ...}; '
        'an end may be "24:00"; a day not listed is closed.',
    )
    holiday_country = models.CharField(
        max_length=8, blank=True, help_text="Country code whose public holidays are closed, e.g. DE."
    )
    holiday_subdivision = models.CharField(max_length=16, blank=True, help_text="State or region code, e.g. BY.")
    closed_dates = models.JSONField(blank=True, default=list, help_text='Extra closed days, e.g. ["2026-12-24"].')
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "SLA calendar"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            self.as_calendar()
        except sla.CalendarError as exc:
            raise ValidationError(str(exc)) from exc

    def as_calendar(self) -> sla.Calendar:
        """Raises sla.CalendarError when the stored definition is unusable."""
        if not isinstance(self.hours, dict) or not isinstance(self.closed_dates, list):
            raise sla.CalendarError("hours must be an object by weekday and closed dates a list")
        return sla.calendar_build(
            tz=self.timezone,
            hours=self.hours,
            holiday_country=self.holiday_country,
            holiday_subdivision=self.holiday_subdivision,
            closed_dates=self.closed_dates,
        )


class SlaPolicy(BaseModel):
    """Response and resolution targets for incidents that match its conditions. Policies are tried
    by position; the first whose conditions all hold applies (an empty condition matches anything)."""

    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=100, help_text="Lower positions are tried first.")
    active = models.BooleanField(default=True)
    priority = models.PositiveSmallIntegerField(choices=Incident.Priority.choices)
    service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    network = models.CharField(max_length=16, choices=Network.choices, blank=True)
    assignment_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    first_response_minutes = models.PositiveIntegerField(null=True, blank=True)
    next_response_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Time to answer the poster each time they write again after a reply."
    )
    resolution_minutes = models.PositiveIntegerField(null=True, blank=True)
    calendar = models.ForeignKey(
        SlaCalendar,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="policies",
        help_text="Business hours the clocks run in; empty means 24x7.",
    )
    pause_states = models.JSONField(
        blank=True, default=list, help_text='Incident states that stop the resolution clock, e.g. ["on_hold"].'
    )

    class Meta:
        ordering = ["position", "priority", "id"]
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"

    def __str__(self) -> str:
        return f"{self.name} (P{self.priority})"

    def clean(self) -> None:
        states = self.pause_states
        if not isinstance(states, list) or not set(states) <= set(Incident.OPEN_STATES):
            raise ValidationError(
                {"pause_states": f"a list of open states: {', '.join(map(str, Incident.OPEN_STATES))}"}
            )

    def matches(self, incident: Incident, network: str) -> bool:
        return (
            self.active
            and self.priority == incident.priority
            and (self.service_id is None or self.service_id == incident.service_id)
            and (not self.network or self.network == network)
            and (self.assignment_group_id is None or self.assignment_group_id == incident.assignment_group_id)
        )


class SlaClock(BaseModel):
    """One measured target of one incident, as last replayed from its history. `warned_at` and
    `breached_at` record that the warning and breach events were emitted, once each."""

    class Target(models.TextChoices):
        FIRST_RESPONSE = sla.FIRST_RESPONSE, "First response"
        NEXT_RESPONSE = sla.NEXT_RESPONSE, "Next response"
        RESOLUTION = sla.RESOLUTION, "Resolution"

    class State(models.TextChoices):
        RUNNING = sla.RUNNING, "Running"
        PAUSED = sla.PAUSED, "Paused"
        MET = sla.MET, "Met"
        BREACHED = sla.BREACHED, "Breached"
        CANCELED = sla.CANCELED, "Not needed"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="sla_clocks")
    target = models.CharField(max_length=16, choices=Target.choices)
    cycle = models.PositiveSmallIntegerField(default=0, help_text="Next-response turn; 0 for the other targets.")
    policy = models.ForeignKey(SlaPolicy, null=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField()
    target_minutes = models.PositiveIntegerField()
    due_at = models.DateTimeField(null=True, blank=True, help_text="Empty while paused short of the target.")
    warn_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    elapsed_seconds = models.PositiveIntegerField(default=0, help_text="Business time counted, as of computed_at.")
    paused_seconds = models.PositiveIntegerField(default=0, help_text="Wall time paused, as of computed_at.")
    state = models.CharField(max_length=16, choices=State.choices)
    computed_at = models.DateTimeField()
    warned_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["incident", "target", "cycle"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "target", "cycle"], name="slaclock_incident_target_cycle_uniq")
        ]
        indexes = [
            models.Index(fields=["due_at"], name="slaclock_running_due_idx", condition=Q(stopped_at__isnull=True)),
            # The sweep: warnings not yet announced, and breaches not yet announced (late clocks only).
            models.Index(
                fields=["warn_at"],
                name="slaclock_warn_due_idx",
                condition=Q(stopped_at__isnull=True, warned_at__isnull=True),
            ),
            models.Index(
                fields=["due_at"],
                name="slaclock_breach_due_idx",
                condition=Q(breached_at__isnull=True) & (Q(stopped_at__isnull=True) | Q(stopped_at__gt=F("due_at"))),
            ),
            models.Index(fields=["started_at", "target"], name="slaclock_started_idx"),
            # The report's clocks at risk: running ones by due time.
            models.Index(fields=["due_at", "id"], name="slaclock_at_risk_idx", condition=Q(state="running")),
        ]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.target}#{self.cycle} {self.state}"

    def state_at(self, now: datetime) -> str:
        """The state at `now`: a running clock whose due time has passed is breached, sweep or not."""
        if self.state == self.State.RUNNING and self.due_at is not None and self.due_at <= now:
            return self.State.BREACHED
        return self.state

    def at_risk(self, now: datetime) -> bool:
        return self.state_at(now) == self.State.RUNNING and self.warn_at is not None and self.warn_at <= now

    def elapsed_at(self, now: datetime) -> timedelta:
        """Business time counted by `now`: a running clock keeps counting after its last replay."""
        stored = timedelta(seconds=self.elapsed_seconds)
        if self.state not in (self.State.RUNNING, self.State.BREACHED) or self.stopped_at is not None:
            return stored
        try:
            calendar = self.policy.calendar.as_calendar() if self.policy and self.policy.calendar else sla.ALWAYS
        except sla.CalendarError:
            return stored
        return stored + sla.business_time_between(self.computed_at, now, calendar)

    def paused_at(self, now: datetime) -> timedelta:
        """Wall time paused by `now`: a paused clock keeps adding to it after its last replay."""
        stored = timedelta(seconds=self.paused_seconds)
        if self.state == self.State.PAUSED and now > self.computed_at:
            return stored + (now - self.computed_at)
        return stored


class IncidentEvent(BaseModel):
    """The audit trail: who changed what, when, from what to what."""

    class Kind(models.TextChoices):
        OPENED = "opened", "Opened"
        POST_LINKED = "post_linked", "Post linked"
        CHANGED = "changed", "Field changed"
        REPLY_QUEUED = "reply_queued", "Reply queued"
        REPLY_SENT = "reply_sent", "Reply sent"
        REPLY_FAILED = "reply_failed", "Reply failed"
        REPLY_DELAYED = "reply_delayed", "Reply delayed"
        REPLY_RETRIED = "reply_retried", "Reply retried"
        REPLY_CANCELED = "reply_canceled", "Reply canceled"
        FIRST_RESPONSE = "first_response", "First response"
        PROMOTED = "promoted", "Post promoted"
        SLA_WARNING = "sla_warning", "SLA at risk"
        SLA_BREACHED = "sla_breached", "SLA breached"
        CLOCK_SKEW = "clock_skew", "Post time after receipt"
        ITSM_LINKED = "itsm_linked", "Linked in an ITSM suite"
        ITSM_CONFLICT = "itsm_conflict", "ITSM sync conflict"
        ITSM_FAILED = "itsm_failed", "ITSM sync failed"
        POST_DELETED = "post_deleted", "Post deleted by its author"
        POST_EDITED = "post_edited", "Post edited by its author"
        BROADCAST_DRAFTED = "broadcast_drafted", "Broadcast drafted"
        BROADCAST_CONFIRMED = "broadcast_confirmed", "Broadcast confirmed"
        STATUS_POST_QUEUED = "status_post_queued", "Status post queued"
        STATUS_POST_SENT = "status_post_sent", "Status post published"
        STATUS_POST_FAILED = "status_post_failed", "Status post failed"
        MAJOR_LINKED = "major_linked", "Linked to a major incident"
        MAJOR_UNLINKED = "major_unlinked", "Unlinked from a major incident"
        CHILD_LINKED = "child_linked", "Incident linked"
        CHILD_UNLINKED = "child_unlinked", "Incident unlinked"
        MERGED = "merged", "Merged into another incident"
        MERGED_IN = "merged_in", "Duplicate merged in"
        UNMERGED = "unmerged", "Merge undone"
        NOTE_ADDED = "note_added", "Internal note"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    field = models.CharField(max_length=64, blank=True)
    old_value = models.CharField(max_length=255, blank=True)
    new_value = models.CharField(max_length=255, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # The ITSM tick asks of each link whether its incident has events past its watermark.
            models.Index(fields=["incident", "id"], name="incidentevent_incident_id_idx"),
            # Metrics count SLA warnings and breaches at every scrape.
            models.Index(
                fields=["kind"], condition=Q(kind__in=["sla_warning", "sla_breached"]), name="incidentevent_sla_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.kind}"


class IncidentNote(BaseModel):
    """An agent's internal note on an incident: agents only, never sent to a network; ITSM
    suites get it as an internal comment (through its `note_added` audit event)."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["incident", "created_at"], name="incidentnote_incident_idx")]

    def __str__(self) -> str:
        return f"Note on {self.incident_id} by {self.author_id}"


class ReplyTemplate(BaseModel):
    """A canned reply of the team's library: text with {name}, {handle}, {service}, {incident}
    and {signature}, filled in for the post answered. Leads write them; agents use them."""

    name = models.CharField(max_length=100, unique=True)
    text = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AgentProfile(BaseModel):
    """An agent's own settings: the signature public replies carry and the time zone times are shown in."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="socialitsm_profile")
    signature = models.CharField(
        max_length=32, blank=True, help_text='Appended to public replies, e.g. "^AB"; empty for none.'
    )
    time_zone = models.CharField(
        max_length=64, blank=True, help_text="IANA zone, e.g. Europe/Berlin; empty: the browser's."
    )

    def __str__(self) -> str:
        return f"Profile of {self.user_id}"


class IncidentMerge(BaseModel):
    """One duplicate merged into another incident, and exactly what moved, so that undoing the
    merge moves the same posts, replies and events back."""

    duplicate = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="merges_out")
    target = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="merges_in")
    duplicate_state = models.CharField(
        max_length=16, choices=Incident.State.choices, help_text="The duplicate's state before the merge."
    )
    post_ids = models.JSONField(default=list)
    reply_ids = models.JSONField(default=list)
    event_ids = models.JSONField(default=list)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # A duplicate is merged once at a time: it must be unmerged before it can merge again.
            models.UniqueConstraint(
                fields=["duplicate"], condition=Q(undone_at__isnull=True), name="incidentmerge_duplicate_active_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.duplicate_id} into {self.target_id}"


class ItsmConnection(BaseModel):
    """One configured ITSM suite (or outbound webhook) that incidents are pushed to and pulled from."""

    class Kind(models.TextChoices):
        RT = "rt", "Request Tracker"
        SERVICENOW = "servicenow", "ServiceNow"
        JIRA = "jira", "Jira Service Management"
        ZENDESK = "zendesk", "Zendesk"
        WEBHOOK = "webhook", "Outbound webhook"
        FAKE = "fake", "Fake (tests and demo)"

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=64, unique=True, help_text="Names the inbound webhook URL.")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    base_url = models.URLField(help_text="The suite's base URL, e.g. https://acme.service-now.com.")
    credentials = EncryptedJSONField(
        blank=True,
        default=dict,
        help_text="Tokens and passwords, plus webhook_secret for inbound calls; encrypted at rest.",
    )
    config = models.JSONField(blank=True, default=dict, help_text="Adapter options that are not secret.")
    field_map = models.JSONField(
        blank=True,
        default=dict,
        help_text='Our names to the suite\'s ids: {"groups": {"Network": "<id>"}, "users": {"anna": "<id>"}}.',
    )
    state_map = models.JSONField(
        blank=True,
        default=dict,
        help_text='Overrides of the default state tables: {"out": {"resolved": "6"}, "in": {"6": "resolved"}}.',
    )
    rule_services = models.ManyToManyField(
        Service, blank=True, related_name="+", help_text="Push incidents of these services only; none means all."
    )
    rule_groups = models.ManyToManyField(
        Group, blank=True, related_name="+", help_text="Push incidents of these groups only; none means all."
    )
    rule_max_priority = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        choices=Incident.Priority.choices,
        help_text="Push incidents of this priority or higher (1 is highest); empty means all.",
    )
    poll_interval = models.PositiveIntegerField(default=300, help_text="Seconds between pulls of linked tickets.")
    enabled = models.BooleanField(default=True)
    # The audit-trail id up to which incidents were checked against the rules.
    event_cursor = models.PositiveBigIntegerField(default=0, editable=False)
    # The audit-trail id up to which changed incidents were handed to the sync.
    sync_cursor = models.PositiveBigIntegerField(default=0, editable=False)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "ITSM connection"

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class ItsmLinkQuerySet(models.QuerySet):
    def active(self) -> ItsmLinkQuerySet:
        return self.filter(connection__enabled=True).exclude(status=ItsmLink.Status.FAILED)


class ItsmLink(BaseModel):
    """An incident's record in one suite, and where its sync stands."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        OK = "ok", "In sync"
        FAILED = "failed", "Failed"

    connection = models.ForeignKey(ItsmConnection, on_delete=models.CASCADE, related_name="links")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="itsm_links")
    external_ref = models.CharField(max_length=128, help_text="Our reference, stored in the suite to find it again.")
    idempotency_key = models.UUIDField(default=uuid.uuid4, editable=False)
    remote_id = models.CharField(max_length=128, blank=True)
    remote_key = models.CharField(max_length=128, blank=True, help_text="The suite's own number, e.g. INC0010042.")
    remote_url = models.URLField(max_length=1000, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Failed attempts since the last success.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_pulled_at = models.DateTimeField(null=True, blank=True)
    # What we last sent (field -> value) and what the suite's state was when we last looked.
    pushed = models.JSONField(blank=True, default=dict)
    remote_state = models.CharField(max_length=16, blank=True, choices=Incident.State.choices)
    remote_status = models.CharField(max_length=64, blank=True, help_text="The state in the suite's own words.")
    remote_updated_at = models.DateTimeField(null=True, blank=True)
    # The audit-trail id up to which this incident's events were handled, and when to look once
    # more for events that were too young to be sure no earlier id was still uncommitted.
    event_watermark = models.PositiveBigIntegerField(default=0)
    recheck_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ItsmLinkQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "ITSM link"
        constraints = [
            models.UniqueConstraint(fields=["connection", "incident"], name="itsmlink_connection_incident_uniq")
        ]
        indexes = [
            models.Index(fields=["connection", "remote_id"], name="itsmlink_remote_idx"),
            models.Index(fields=["next_attempt_at"], name="itsmlink_unsynced_idx", condition=~Q(status="failed")),
            models.Index(
                fields=["recheck_at"],
                name="itsmlink_recheck_idx",
                condition=Q(recheck_at__isnull=False) & ~Q(status="failed"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.incident_id} in {self.connection_id}: {self.remote_key or self.remote_id or self.status}"


class ItsmDelivery(BaseModel):
    """The delivery log: one row per thing sent to a suite for a link; unique per reply and per
    event, so a comment or an event goes out once however often the sync runs."""

    class Action(models.TextChoices):
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        COMMENT = "comment", "Comment"
        EVENT = "event", "Event"

    class Status(models.TextChoices):
        OK = "ok", "Delivered"
        RETRYING = "retrying", "Retrying"
        FAILED = "failed", "Failed"

    link = models.ForeignKey(ItsmLink, on_delete=models.CASCADE, related_name="deliveries")
    action = models.CharField(max_length=8, choices=Action.choices)
    event = models.ForeignKey(IncidentEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    reply = models.ForeignKey(Reply, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices)
    attempts = models.PositiveSmallIntegerField(default=1)
    detail = models.TextField(blank=True, help_text="What was sent, or the error.")
    remote_ref = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "ITSM delivery"
        verbose_name_plural = "ITSM deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["link", "event"], name="itsmdelivery_link_event_uniq", condition=Q(event__isnull=False)
            ),
            models.UniqueConstraint(
                fields=["link", "reply"], name="itsmdelivery_link_reply_uniq", condition=Q(reply__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} for link {self.link_id}: {self.status}"


class AuthorErasure(BaseModel):
    """The record that a poster's details were erased at their request: who asked us to, when,
    and which author (by id, and by an opaque reference derived from their network id that lets
    a later request be recognised without keeping the id). What was removed is not recorded."""

    author_id_erased = models.BigIntegerField(help_text="The Author row's id.")
    author_ref = models.CharField(max_length=64, help_text="Keyed hash of the network, scope and external id.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["author_ref"], name="authorerasure_ref_idx")]

    def __str__(self) -> str:
        return f"author {self.author_id_erased} erased {self.created_at:%Y-%m-%d %H:%M}"


class ChannelAlert(BaseModel):
    """A problem with a channel's listening (quiet, stream falling back to polling, token
    expiring or refused, quota nearly spent): one row per channel and kind, raised once when the
    problem starts and cleared once when it ends (`services/alerts.py`)."""

    class Kind(models.TextChoices):
        QUIET = "quiet", "Quiet for far longer than usual"
        STREAM_FALLBACK = "stream_fallback", "Stream keeps falling back to polling"
        TOKEN_EXPIRING = "token_expiring", "Token about to expire"
        TOKEN_REVOKED = "token_revoked", "Credentials refused"
        QUOTA_LOW = "quota_low", "Quota nearly spent"

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    message = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    raised_at = models.DateTimeField(default=timezone.now)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at", "id"]
        constraints = [models.UniqueConstraint(fields=["channel", "kind"], name="channelalert_channel_kind_uniq")]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.kind} ({'active' if self.active else 'cleared'})"


class ChatWebhook(BaseModel):
    """A Slack or Microsoft Teams channel that a group's events are posted to, through its incoming
    webhook. Incoming webhooks are not signed: the URL itself is the secret, so it is encrypted."""

    class Kind(models.TextChoices):
        SLACK = "slack", "Slack"
        TEAMS = "teams", "Microsoft Teams"

    class Event(models.TextChoices):
        MAJOR_INCIDENT = "major_incident", "Major incident opened"
        SLA_BREACH = "sla_breach", "SLA breached"
        CHANNEL_QUIET = "channel_quiet", "Channel gone quiet"
        CHANNEL_PROBLEM = "channel_problem", "Other listening problems"

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    credentials = EncryptedJSONField(
        blank=True, default=dict, help_text='{"url": the incoming webhook URL}; encrypted.'
    )
    events = models.JSONField(default=list, help_text="Which events are posted (values of ChatWebhook.Event).")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["group__name", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class ChatMessage(BaseModel):
    """One message for one chat webhook; unique per webhook and event, so an event is posted once
    however often it is announced."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    webhook = models.ForeignKey(ChatWebhook, on_delete=models.CASCADE, related_name="messages")
    event_key = models.CharField(max_length=64, help_text='What it announces, e.g. "incident_event:42".')
    payload = models.JSONField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["webhook", "event_key"], name="chatmessage_once_uniq")]

    def __str__(self) -> str:
        return f"{self.event_key} to {self.webhook_id}: {self.status}"


class Heartbeat(BaseModel):
    """When a periodic task last ran on a worker: `socialitsm_doctor` and /readyz read it."""

    name = models.CharField(max_length=64, unique=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"


class SavedView(BaseModel):
    """A queue filter an agent named to pick again: the view, search words and filters as the
    queue's query string holds them. A shared one is listed for every agent; only its owner
    deletes it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="socialitsm_views")
    name = models.CharField(max_length=80)
    query = models.JSONField(default=dict, blank=True, help_text='The queue\'s filters, e.g. {"view": "mine"}.')
    shared = models.BooleanField(default=False, help_text="Listed for every agent, not only its owner.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="savedview_user_name_uniq")]
        indexes = [models.Index(fields=["shared"], name="savedview_shared_idx", condition=Q(shared=True))]

    def __str__(self) -> str:
        return self.name


class NotificationKind(models.TextChoices):
    """What a person can be told about; each has its own in-app and e-mail choice."""

    ASSIGNED = "assigned", "Assigned to me"
    POSTER_ANSWERED = "poster_answered", "The poster answered on my incident"
    SLA_WARNING = "sla_warning", "SLA warning on my or my group's incidents"
    SLA_BREACHED = "sla_breached", "SLA breach on my or my group's incidents"
    MAJOR_OPENED = "major_opened", "Major incident opened"
    CHANNEL_ALERT = "channel_alert", "Channel health alert (leads)"


class Notification(BaseModel):
    """One thing one person is told about, in the app and, if they chose it, by e-mail."""

    class Email(models.TextChoices):
        NONE = "", "Not wanted"
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        NO_ADDRESS = "no_address", "No address"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="socialitsm_notifications"
    )
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    key = models.CharField(max_length=128, help_text="What it is about; a person is told about one thing once.")
    incident = models.ForeignKey(Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(IncidentEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.ForeignKey(Channel, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=255)
    body = models.TextField(blank=True)
    in_app = models.BooleanField(default=True, help_text="Shown in the app; else wanted by e-mail only.")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    email_status = models.CharField(max_length=16, choices=Email.choices, blank=True, default=Email.NONE)
    email_error = models.TextField(blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="notification_user_key_uniq")]
        indexes = [
            models.Index(
                fields=["user", "created_at"],
                name="notification_unread_idx",
                condition=Q(read_at__isnull=True, in_app=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id}: {self.title}"


class NotificationPreference(BaseModel):
    """A person's choice for one kind of notification; without a row the kind's default holds."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    in_app = models.BooleanField(default=True)
    email = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="notificationpreference_user_kind_uniq")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}"
