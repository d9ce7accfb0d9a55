"""A read-mostly ops console; actions call services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from .connectors import config_parse
from .exceptions import ApplicationError, ExternalError
from .http import same_host
from .models import (
    Author,
    AuthorErasure,
    Broadcast,
    Channel,
    ChannelAlert,
    ChatMessage,
    ChatWebhook,
    Incident,
    IncidentEvent,
    IngestRejection,
    ItsmConnection,
    ItsmDelivery,
    ItsmLink,
    Notification,
    Post,
    PostRevision,
    Reply,
    Service,
    SlaCalendar,
    SlaClock,
    SlaPolicy,
    StatusPost,
    WatchRule,
)
from .roles import is_lead
from .selectors import channel_list
from .services import itsm_sync, replies
from .services.channels import channel_test, channel_verify, credentials_host_check
from .services.incidents import EDITABLE, incident_assign, incident_changes_check, incident_update
from .services.retention import author_erase
from .services.routing import post_label, post_promote, post_routing_retry
from .services.sla import sla_rules_changed


def _require_credentials_for_new_host(form: forms.ModelForm, cleaned: dict[str, Any]) -> None:
    """Stored credentials are not sent to a host the base URL was changed to: they are asked again."""
    instance = form.instance
    changed = "base_url" in form.changed_data and "base_url" in cleaned
    try:
        credentials_host_check(
            stored_url=instance.base_url,
            new_url=cleaned["base_url"] if changed else None,
            stored=bool(instance.pk and instance.credentials),
            replaced=bool(cleaned.get("new_credentials")),
        )
    except ApplicationError as exc:
        form.add_error("new_credentials", exc.message[:1].upper() + exc.message[1:] + ".")


def _require_credentials_for_new_stream_host(form: forms.ModelForm, cleaned: dict[str, Any]) -> None:
    """Mastodon's streaming connection carries the access token to config["streaming_url"]
    (learned from the server): set by hand to another host, the credentials are asked again."""
    instance = form.instance
    config = cleaned.get("config")
    wanted = config.get("streaming_url") if isinstance(config, dict) else None
    if not (instance.pk and instance.credentials and isinstance(wanted, str) and wanted):
        return
    current = instance.config.get("streaming_url") or instance.base_url
    if not cleaned.get("new_credentials") and not same_host(current, wanted):
        form.add_error("config", "streaming_url points to another host: enter the credentials for it again.")


class ChannelForm(forms.ModelForm):
    """Credentials are write-only: a blank field keeps what is stored. Saving checks them
    against the network (and learns the account's handle and id) unless told not to."""

    new_credentials = forms.JSONField(required=False, help_text="JSON object; replaces the stored credentials.")
    skip_verify = forms.BooleanField(
        required=False,
        label="Save without checking",
        help_text="Save even though the network cannot confirm the credentials now (e.g. it is down).",
    )

    class Meta:
        model = Channel
        fields = [
            "name",
            "slug",
            "network",
            "handle",
            "base_url",
            "new_credentials",
            "config",
            "listen_mode",
            "poll_interval",
            "enabled",
            "retention_days",
            "skip_verify",
        ]

    # Changing any of these can break the connection, so the credentials are checked again.
    VERIFY_ON = ("network", "handle", "base_url", "new_credentials", "config")

    def clean_new_credentials(self) -> dict | None:
        value = self.cleaned_data.get("new_credentials")
        if value not in (None, "", {}) and not isinstance(value, dict):
            raise forms.ValidationError('Enter a JSON object, e.g. {"access_token": "..."}.')
        return value or None

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        _require_credentials_for_new_host(self, cleaned)
        _require_credentials_for_new_stream_host(self, cleaned)
        if "config" in cleaned and cleaned.get("network"):
            try:
                config_parse(cleaned["network"], cleaned["config"])
            except ValueError as exc:
                self.add_error("config", f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
        if self.errors or cleaned.get("skip_verify"):
            return cleaned
        if self.instance.pk and not set(self.VERIFY_ON) & set(self.changed_data):
            return cleaned
        # The instance gets the form's values only after clean(): check a copy that has them.
        channel = Channel(
            pk=self.instance.pk,
            slug=cleaned.get("slug", ""),
            network=cleaned.get("network", ""),
            handle=cleaned.get("handle", ""),
            base_url=cleaned.get("base_url", ""),
            config=dict(cleaned.get("config") or {}),
            credentials=cleaned.get("new_credentials") or self.instance.credentials,
        )
        try:
            cleaned["handle"] = channel_verify(channel=channel)
        except ExternalError as exc:
            raise forms.ValidationError(
                f"The network did not accept this channel: {exc.message}. Fix it, or tick "
                '"Save without checking" to save anyway.'
            ) from exc
        cleaned["config"] = channel.config
        return cleaned

    def save(self, commit: bool = True) -> Channel:
        channel = super().save(commit=False)
        if self.cleaned_data.get("new_credentials"):
            channel.credentials = self.cleaned_data["new_credentials"]
        if commit:
            channel.save()
        return channel


class WatchRuleInline(admin.TabularInline):
    model = WatchRule
    extra = 0
    fields = [
        "name",
        "kind",
        "query",
        "complaint_threshold",
        "action",
        "default_service",
        "assignment_group",
        "enabled",
    ]


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = [
        "name",
        "slug",
        "network",
        "listen_mode",
        "enabled",
        "health",
        "quiet",
        "rejected",
        "last_event_at",
        "last_error_at",
        "quota",
        "requests_made",
        "cost_used",
    ]
    list_filter = ["network", "enabled", "health", "listen_mode"]
    search_fields = ["name", "slug", "handle"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = [
        "health",
        "quiet",
        "rejected",
        "last_polled_at",
        "last_event_at",
        "last_error",
        "last_error_at",
        "rate_limited_until",
        "next_poll_at",
        "quota",
        "quota_reset_at",
        "requests_made",
        "cost_used",
        "stream_cursor",
    ]
    inlines = [WatchRuleInline]
    actions = ["check_credentials"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Channel]:
        return channel_list()

    @admin.action(description="Check credentials with the network now")
    def check_credentials(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        for channel in queryset:
            try:
                check = channel_test(channel=channel)
            except ExternalError as exc:
                self.message_user(request, f"{channel.slug}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{channel.slug}: accepted as {check.handle}", messages.SUCCESS)

    @admin.display(boolean=True, description="Quiet")
    def quiet(self, channel: Channel) -> bool:
        """A busy channel that has heard nothing for far longer than usual."""
        return channel.is_quiet(recent_posts=getattr(channel, "recent_posts", 0), now=timezone.now())

    @admin.display(description="Set aside (24 h)")
    def rejected(self, channel: Channel) -> str:
        """Posts refused at ingest lately, linked to their list."""
        count = getattr(channel, "rejected_posts", 0)
        if not count:
            return "0"
        url = reverse("admin:socialitsm_ingestrejection_changelist") + f"?channel__id__exact={channel.pk}"
        return format_html('<a href="{}">{}</a>', url, count)

    @admin.display(description="Quota left")
    def quota(self, channel: Channel) -> str:
        if channel.quota_remaining is None:
            return "-"
        if channel.quota_limit is None:
            return str(channel.quota_remaining)
        return f"{channel.quota_remaining} / {channel.quota_limit}"


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    """The catalogue; spike_authors / spike_window_minutes override the spike thresholds (empty:
    SOCIALITSM_SPIKE_AUTHORS and SOCIALITSM_SPIKE_WINDOW_MINUTES)."""

    list_display = ["name", "slug", "owner_group", "active", "spike_authors", "spike_window_minutes"]
    list_filter = ["active"]
    search_fields = ["name", "slug", "description"]


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    list_display = ["handle", "name", "network", "external_id", "caller_email", "erased_at"]
    list_filter = ["network"]
    search_fields = ["handle", "name", "external_id", "caller_email"]
    readonly_fields = ["network", "external_id", "erased_at"]
    actions = ["erase"]

    @admin.action(description="Erase at the poster's request (posts and personal details, everywhere)")
    def erase(self, request: HttpRequest, queryset: QuerySet[Author]) -> None:
        if not is_lead(request.user):
            self.message_user(request, "Only team leads may erase a poster.", messages.ERROR)
            return
        for author in queryset.order_by("pk"):
            author_erase(author=author, actor=request.user)
            self.message_user(request, f"Author {author.pk} erased.", messages.SUCCESS)


@admin.register(AuthorErasure)
class AuthorErasureAdmin(admin.ModelAdmin):
    """The record that posters were erased at their request: who asked, when, which author."""

    list_display = ["author_id_erased", "author_ref", "actor", "created_at"]
    search_fields = ["author_ref"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuthorErasure | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuthorErasure | None = None) -> bool:
        return False


class RoutingFailedFilter(admin.SimpleListFilter):
    title = "routing"
    parameter_name = "routing"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("failed", "Failed (parked)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Post]) -> QuerySet[Post]:
        if self.value() == "failed":
            return queryset.filter(routing_failed_at__isnull=False)
        return queryset


class PostRevisionInline(admin.TabularInline):
    """The versions a post had before its author edited it (written by ingest only)."""

    model = PostRevision
    extra = 0
    can_delete = False
    fields = readonly_fields = ("edited_at", "recorded_at", "text", "details")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    """Posts are what the networks said and what routing made of them: view-only. Labelling and
    promoting go through the services, which record who did it."""

    list_display = [
        "__str__",
        "author",
        "posted_at",
        "triage_state",
        "complaint_score",
        "label",
        "detected_service",
        "incident",
    ]
    list_filter = [
        "network",
        "triage_state",
        RoutingFailedFilter,
        "label",
        "is_direct",
        "gone_reason",
        "detected_service",
    ]
    list_select_related = ["author", "incident", "detected_service"]
    search_fields = ["external_id", "text", "author__handle"]
    date_hierarchy = "posted_at"
    actions = ["label_complaint", "label_not_complaint", "promote", "route_again"]
    inlines = [PostRevisionInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Post | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Post | None = None) -> bool:
        return False

    def _label(self, request: HttpRequest, queryset: QuerySet[Post], label: str) -> None:
        for post in queryset:
            post_label(post=post, label=label, actor=request.user)
        self.message_user(
            request, f"{len(queryset)} posts labelled {Post.Label(label).label.lower()}.", messages.SUCCESS
        )

    @admin.action(description="Label as a complaint")
    def label_complaint(self, request: HttpRequest, queryset: QuerySet[Post]) -> None:
        self._label(request, queryset, Post.Label.COMPLAINT)

    @admin.action(description="Label as not a complaint")
    def label_not_complaint(self, request: HttpRequest, queryset: QuerySet[Post]) -> None:
        self._label(request, queryset, Post.Label.NOT_COMPLAINT)

    @admin.action(description="Open an incident for these posts (or add them to the one they continue)")
    def promote(self, request: HttpRequest, queryset: QuerySet[Post]) -> None:
        for post in queryset.order_by("posted_at", "id"):
            try:
                incident = post_promote(post=post, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{post}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{post}: linked to {incident.number}", messages.SUCCESS)

    @admin.action(description="Route posts that failed routing again")
    def route_again(self, request: HttpRequest, queryset: QuerySet[Post]) -> None:
        count = sum(post_routing_retry(post=post) for post in queryset.filter(routing_failed_at__isnull=False))
        self.message_user(request, f"{count} post(s) handed to routing again.", messages.SUCCESS)


@admin.register(IngestRejection)
class IngestRejectionAdmin(admin.ModelAdmin):
    """Posts the database refused at ingest, kept as they were for a person to read."""

    list_display = ["created_at", "channel", "network", "external_id", "error"]
    list_filter = ["network", "channel"]
    list_select_related = ["channel"]
    search_fields = ["external_id", "error"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class IncidentEventInline(admin.TabularInline):
    model = IncidentEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = ("created_at", "kind", "actor", "field", "old_value", "new_value", "message")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class SlaClockInline(admin.TabularInline):
    model = SlaClock
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "target",
        "cycle",
        "policy",
        "state",
        "started_at",
        "due_at",
        "stopped_at",
        "elapsed_seconds",
        "paused_seconds",
        "warned_at",
        "breached_at",
    )

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class IncidentAdminForm(forms.ModelForm):
    """Only what agents may change, and only through incident_update: each change is an audit
    event (the outbox the ITSM sync reads), state moves are checked and the SLA clocks replayed.
    A refused change is shown beside its field before anything is saved."""

    class Meta:
        model = Incident
        fields = list(EDITABLE)

    def changes(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.changed_data if name in self.cleaned_data}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # self.instance still holds the stored values here: the form's are set on it after clean().
        try:
            incident_changes_check(incident=self.instance, **self.changes())
        except ApplicationError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned


_INCIDENT_READONLY = [
    "number",
    "priority",
    "description",
    "is_major",
    "parent",
    "merged_into",
    "author",
    "channel",
    "opened_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "sla_policy",
    "sla_started_at",
    "ingest_lag_seconds",
    "response_due_at",
    "resolution_due_at",
    "response_breached",
    "resolution_breached",
]


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    """Incidents open from posts; agents' changes go through the incident services (see the form)."""

    form = IncidentAdminForm
    list_display = [
        "number",
        "short_description",
        "state",
        "priority",
        "service",
        "assignment_group",
        "assignee",
        "opened_at",
    ]
    list_filter = ["state", "priority", "is_major", "service", "assignment_group"]
    list_select_related = ["service", "assignment_group", "assignee"]
    search_fields = ["number", "short_description"]
    raw_id_fields = ["assignee"]
    fields = [
        "number",
        "short_description",
        "state",
        "impact",
        "urgency",
        "priority",
        "service",
        "category",
        "assignment_group",
        "assignee",
        *_INCIDENT_READONLY[2:],
    ]
    readonly_fields = _INCIDENT_READONLY
    inlines = [SlaClockInline, IncidentEventInline]
    actions = ["assign_to_me", "put_on_hold", "resolve"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Incident | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Incident, form: IncidentAdminForm, change: bool) -> None:
        changes = form.changes()
        if not changes:
            return
        try:
            incident_update(incident=obj, actor=request.user, **changes)
        except ApplicationError as exc:
            # Checked in the form; only a concurrent change gets here.
            self.message_user(request, f"{obj.number}: {exc.message}", messages.ERROR)

    def _each(self, request: HttpRequest, queryset: QuerySet[Incident], done: str, change: Any) -> None:
        for incident in queryset.order_by("number"):
            try:
                change(incident)
            except ApplicationError as exc:
                self.message_user(request, f"{incident.number}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{incident.number}: {done}", messages.SUCCESS)

    @admin.action(description="Assign to me")
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        self._each(
            request,
            queryset,
            "assigned to you",
            lambda incident: incident_assign(incident=incident, actor=request.user, assignee=request.user),
        )

    @admin.action(description="Put on hold")
    def put_on_hold(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        self._each(
            request,
            queryset,
            "on hold",
            lambda incident: incident_update(incident=incident, actor=request.user, state=Incident.State.ON_HOLD),
        )

    @admin.action(description="Resolve")
    def resolve(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        self._each(
            request,
            queryset,
            "resolved",
            lambda incident: incident_update(incident=incident, actor=request.user, state=Incident.State.RESOLVED),
        )


@admin.register(Reply)
class ReplyAdmin(admin.ModelAdmin):
    """Replies are written from the ticket and tracked until the network confirms: view-only; a
    failed or waiting one can be sent again now."""

    list_display = ["incident", "visibility", "status", "attempts", "agent", "created_at", "sent_at"]
    list_filter = ["status", "visibility"]
    list_select_related = ["incident", "agent"]
    actions = ["retry_failed"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Reply | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Reply | None = None) -> bool:
        return False

    @admin.action(description="Send failed or waiting replies again now")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Reply]) -> None:
        count = 0
        for reply in queryset.filter(status__in=(Reply.Status.FAILED, Reply.Status.QUEUED)):
            try:
                replies.reply_retry(reply=reply, actor=request.user)
            except ApplicationError:
                continue
            count += 1
        self.message_user(request, f"{count} replies queued again.", messages.SUCCESS)


class ViewOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Broadcast)
class BroadcastAdmin(ViewOnlyAdmin):
    """Broadcasts are written, previewed and confirmed on the major incident's broadcast page."""

    list_display = ["incident", "kind", "status", "recipient_count", "skipped_count", "created_by", "confirmed_at"]
    list_filter = ["status", "kind"]
    list_select_related = ["incident", "created_by"]


@admin.register(StatusPost)
class StatusPostAdmin(ViewOnlyAdmin):
    list_display = ["incident", "channel", "status", "attempts", "sent_at"]
    list_filter = ["status"]
    list_select_related = ["incident", "channel"]


class SlaRulesAdmin(admin.ModelAdmin):
    """Saving or deleting re-evaluates the open incidents' clocks."""

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        sla_rules_changed()

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        sla_rules_changed()

    def delete_queryset(self, request, queryset) -> None:
        super().delete_queryset(request, queryset)
        sla_rules_changed()


@admin.register(SlaPolicy)
class SlaPolicyAdmin(SlaRulesAdmin):
    list_display = [
        "name",
        "position",
        "priority",
        "service",
        "network",
        "assignment_group",
        "first_response_minutes",
        "next_response_minutes",
        "resolution_minutes",
        "calendar",
        "active",
    ]
    list_editable = ["position", "active"]
    list_filter = ["active", "priority", "network", "calendar"]
    list_select_related = ["service", "assignment_group", "calendar"]


@admin.register(SlaCalendar)
class SlaCalendarAdmin(SlaRulesAdmin):
    list_display = ["name", "timezone", "holiday_country", "holiday_subdivision", "updated_at"]


@admin.register(WatchRule)
class WatchRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "channel", "kind", "query", "complaint_threshold", "action", "enabled"]
    list_filter = ["kind", "action", "enabled", "channel"]


class ItsmConnectionForm(forms.ModelForm):
    """Credentials are write-only: a blank field keeps what is stored."""

    new_credentials = forms.JSONField(
        required=False,
        help_text=(
            "JSON object; replaces the stored credentials. RT: token (or username, password); ServiceNow: "
            "username, password (or token); Jira: email, api_token; Zendesk: email, api_token; webhook: secret. "
            "Add webhook_secret to accept signed inbound calls."
        ),
    )

    class Meta:
        model = ItsmConnection
        fields = [
            "name",
            "slug",
            "kind",
            "base_url",
            "new_credentials",
            "config",
            "field_map",
            "state_map",
            "rule_services",
            "rule_groups",
            "rule_max_priority",
            "poll_interval",
            "enabled",
        ]

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        new = cleaned.get("new_credentials")
        if new is not None and new != "" and not isinstance(new, dict):
            self.add_error("new_credentials", "Enter a JSON object.")
        _require_credentials_for_new_host(self, cleaned)
        return cleaned

    def save(self, commit: bool = True) -> ItsmConnection:
        connection = super().save(commit=False)
        if self.cleaned_data.get("new_credentials"):
            connection.credentials = self.cleaned_data["new_credentials"]
        if commit:
            connection.save()
            self.save_m2m()
        return connection


def _retry(modeladmin: admin.ModelAdmin, request, links) -> None:
    count = sum(itsm_sync.itsm_link_retry(link=link) for link in links)
    modeladmin.message_user(request, f"{count} ITSM links queued again.", messages.SUCCESS)


@admin.register(ItsmConnection)
class ItsmConnectionAdmin(admin.ModelAdmin):
    form = ItsmConnectionForm
    list_display = ["name", "slug", "kind", "base_url", "enabled", "poll_interval", "last_polled_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "slug", "base_url"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["rule_services", "rule_groups"]
    readonly_fields = ["last_polled_at", "next_poll_at", "last_error", "last_error_at"]
    actions = ["retry_failed_links"]

    @admin.action(description="Retry the failed links of these connections")
    def retry_failed_links(self, request, queryset) -> None:
        _retry(self, request, ItsmLink.objects.filter(connection__in=queryset, status=ItsmLink.Status.FAILED))


class ItsmDeliveryInline(admin.TabularInline):
    model = ItsmDelivery
    extra = 0
    can_delete = False
    fields = readonly_fields = ("created_at", "action", "status", "attempts", "detail", "remote_ref")
    ordering = ("-created_at", "-id")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ItsmLink)
class ItsmLinkAdmin(admin.ModelAdmin):
    list_display = ["incident", "connection", "remote_key", "status", "attempts", "last_synced_at", "remote_status"]
    list_filter = ["status", "connection"]
    list_select_related = ["incident", "connection"]
    search_fields = ["incident__number", "remote_id", "remote_key", "external_ref"]
    raw_id_fields = ["incident"]
    readonly_fields = [
        "external_ref",
        "idempotency_key",
        "remote_id",
        "remote_key",
        "remote_url",
        "status",
        "last_error",
        "last_error_at",
        "attempts",
        "next_attempt_at",
        "lease_until",
        "last_synced_at",
        "last_pulled_at",
        "pushed",
        "remote_state",
        "remote_status",
        "remote_updated_at",
        "event_watermark",
        "recheck_at",
    ]
    inlines = [ItsmDeliveryInline]
    actions = ["retry"]

    def get_readonly_fields(self, request: HttpRequest, obj: ItsmLink | None = None) -> list[str]:
        fields = [*super().get_readonly_fields(request, obj)]
        # A link is one incident's record in one suite: pointing it elsewhere would mix records.
        return [*fields, "connection", "incident", "created_at"] if obj is not None else fields

    @admin.action(description="Retry ITSM sync now")
    def retry(self, request, queryset) -> None:
        _retry(self, request, queryset)


@admin.register(ChannelAlert)
class ChannelAlertAdmin(ViewOnlyAdmin):
    list_display = ["channel", "kind", "active", "raised_at", "cleared_at", "message"]
    list_filter = ["kind", "active"]
    list_select_related = ["channel"]


class ChatMessageInline(admin.TabularInline):
    model = ChatMessage
    fields = ["event_key", "status", "attempts", "error", "created_at", "sent_at"]
    readonly_fields = ["event_key", "status", "attempts", "error", "created_at", "sent_at"]
    extra = 0
    can_delete = False
    ordering = ["-created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ChatWebhook)
class ChatWebhookAdmin(admin.ModelAdmin):
    """Added on the Chat page, where the URL is checked; here listed, paused or removed. The URL
    (the webhook's only secret) is never shown."""

    list_display = ["name", "group", "kind", "enabled", "last_sent_at", "last_error_at"]
    list_filter = ["kind", "enabled"]
    list_select_related = ["group"]
    fields = ["name", "group", "kind", "events", "enabled", "created_by", "last_sent_at", "last_error", "last_error_at"]
    readonly_fields = ["group", "kind", "events", "created_by", "last_sent_at", "last_error", "last_error_at"]
    inlines = [ChatMessageInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """What people were told and whether the e-mail went: view-only (it is written by the
    notification tasks); deleting old ones is allowed."""

    list_display = ["created_at", "user", "kind", "title", "read_at", "email_status"]
    list_filter = ["kind", "email_status"]
    list_select_related = ["user"]
    raw_id_fields = ["user", "incident", "event", "channel"]
    search_fields = ["title"]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return [*self.search_fields, f"user__{get_user_model().USERNAME_FIELD}"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Notification | None = None) -> bool:
        return False
