"""The SocialITSM domain: channels listen, posts arrive, incidents are worked and answered."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .crypto import EncryptedJSONField


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


class Channel(models.Model):
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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_network_display()})"


class WatchRule(models.Model):
    """What a channel listens for, and what happens to what it hears."""

    class Kind(models.TextChoices):
        SEARCH = "search", "Search terms"
        HASHTAG = "hashtag", "Hashtag"
        MENTIONS = "mentions", "Mentions"
        DIRECT = "direct", "Direct messages"

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


class Author(models.Model):
    network = models.CharField(max_length=16, choices=Network.choices)
    external_id = models.CharField(max_length=255)
    handle = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=255, blank=True)
    profile_url = models.URLField(max_length=1000, blank=True)
    caller_email = models.EmailField(blank=True, help_text="Known caller, for ITSM suites.")
    employee_id = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["network", "external_id"], name="author_network_external_id_uniq")
        ]

    def __str__(self) -> str:
        return self.handle or self.name or self.external_id


class Service(models.Model):
    """A lightweight service catalogue used by classification and routing."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    aliases = models.JSONField(blank=True, default=list, help_text="Other names people use, e.g. product names.")
    owner_group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class IncidentQuerySet(models.QuerySet):
    def open(self) -> IncidentQuerySet:
        return self.filter(state__in=Incident.OPEN_STATES)


class Incident(models.Model):
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
    updated_at = models.DateTimeField(auto_now=True)

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ["priority", "opened_at"]
        indexes = [
            models.Index(fields=["state", "priority", "opened_at"], name="incident_queue_idx"),
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


class IncidentCounter(models.Model):
    """One row per number series; incremented under a row lock so numbers never collide."""

    name = models.CharField(max_length=32, unique=True)
    value = models.PositiveBigIntegerField()

    def __str__(self) -> str:
        return f"{self.name}: {self.value}"


class PostQuerySet(models.QuerySet):
    def pending(self) -> PostQuerySet:
        return self.filter(triage_state=Post.Triage.PENDING)


class Post(models.Model):
    class Triage(models.TextChoices):
        PENDING = "pending", "Pending"
        INCIDENT = "incident", "Linked to incident"
        QUEUED = "queued", "Queued for triage"
        IGNORED = "ignored", "Ignored (not a complaint)"

    class Label(models.TextChoices):
        COMPLAINT = "complaint", "Complaint"
        NOT_COMPLAINT = "not_complaint", "Not a complaint"

    network = models.CharField(max_length=16, choices=Network.choices)
    external_id = models.CharField(max_length=255)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="posts")
    rule = models.ForeignKey(WatchRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="posts")
    author = models.ForeignKey(Author, on_delete=models.PROTECT, related_name="posts")
    text = models.TextField(help_text="Plain text as posted; untrusted, always rendered escaped.")
    raw = models.JSONField(blank=True, default=dict)
    url = models.URLField(max_length=1000, blank=True)
    posted_at = models.DateTimeField(help_text="When the person posted, per the network.")
    ingested_at = models.DateTimeField(default=timezone.now)
    in_reply_to = models.CharField(max_length=255, blank=True, help_text="External id of the post this answers.")
    conversation_id = models.CharField(max_length=255, blank=True)
    language = models.CharField(max_length=16, blank=True)
    is_direct = models.BooleanField(default=False)
    is_complaint = models.BooleanField(null=True)
    complaint_score = models.FloatField(null=True, blank=True)
    sentiment = models.FloatField(null=True, blank=True)
    detected_service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    urgency_hint = models.PositiveSmallIntegerField(null=True, blank=True)
    reasons = models.JSONField(blank=True, default=list)
    triage_state = models.CharField(max_length=16, choices=Triage.choices, default=Triage.PENDING)
    incident = models.ForeignKey(Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="posts")
    label = models.CharField(
        max_length=16,
        choices=Label.choices,
        blank=True,
        help_text="An agent's verdict on the classifier's call; socialitsm_train learns from it.",
    )
    labelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    labelled_at = models.DateTimeField(null=True, blank=True)

    objects = PostQuerySet.as_manager()

    class Meta:
        ordering = ["posted_at", "id"]
        constraints = [models.UniqueConstraint(fields=["network", "external_id"], name="post_network_external_id_uniq")]
        indexes = [
            models.Index(fields=["ingested_at"], name="post_pending_idx", condition=Q(triage_state="pending")),
            models.Index(fields=["author", "conversation_id"], name="post_author_conversation_idx"),
            models.Index(fields=["triage_state", "posted_at"], name="post_triage_idx"),
            models.Index(fields=["labelled_at"], name="post_labelled_idx", condition=~Q(label="")),
        ]

    def __str__(self) -> str:
        return f"{self.network}:{self.external_id}"


class Reply(models.Model):
    """An answer to the poster, tracked until the network confirms it."""

    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public reply"
        DIRECT = "direct", "Direct message"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

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
    retry_after = models.DateTimeField(null=True, blank=True, help_text="Not to be sent again before this time.")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["created_at"], name="reply_unsent_idx", condition=Q(status__in=["queued", "sending"])),
        ]

    def __str__(self) -> str:
        return f"{self.get_visibility_display()} on {self.incident.number}"


class SlaPolicy(models.Model):
    """Response and resolution targets for one priority."""

    class Calendar(models.TextChoices):
        ALWAYS = "24x7", "24x7"
        BUSINESS = "business", "Business hours"

    name = models.CharField(max_length=100)
    priority = models.PositiveSmallIntegerField(choices=Incident.Priority.choices, unique=True)
    first_response_minutes = models.PositiveIntegerField()
    resolution_minutes = models.PositiveIntegerField()
    calendar = models.CharField(max_length=16, choices=Calendar.choices, default=Calendar.ALWAYS)
    timezone = models.CharField(max_length=64, default="UTC")
    pause_states = models.JSONField(
        blank=True, default=list, help_text='Incident states that stop the clock, e.g. ["on_hold"].'
    )

    class Meta:
        ordering = ["priority"]
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"

    def __str__(self) -> str:
        return f"{self.name} (P{self.priority})"


class IncidentEvent(models.Model):
    """The audit trail: who changed what, when, from what to what."""

    class Kind(models.TextChoices):
        OPENED = "opened", "Opened"
        POST_LINKED = "post_linked", "Post linked"
        CHANGED = "changed", "Field changed"
        REPLY_QUEUED = "reply_queued", "Reply queued"
        REPLY_SENT = "reply_sent", "Reply sent"
        REPLY_FAILED = "reply_failed", "Reply failed"
        FIRST_RESPONSE = "first_response", "First response"
        PROMOTED = "promoted", "Post promoted"

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

    def __str__(self) -> str:
        return f"{self.incident_id} {self.kind}"
