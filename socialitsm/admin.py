"""A read-mostly ops console; actions call services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from .models import Author, Channel, Incident, IncidentEvent, Post, Reply, Service, SlaPolicy, WatchRule
from .services import replies


class ChannelForm(forms.ModelForm):
    """Credentials are write-only: a blank field keeps what is stored."""

    new_credentials = forms.JSONField(required=False, help_text="JSON object; replaces the stored credentials.")

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
        ]

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
    list_display = ["name", "slug", "network", "listen_mode", "enabled", "health", "last_event_at", "last_error_at"]
    list_filter = ["network", "enabled", "health", "listen_mode"]
    search_fields = ["name", "slug", "handle"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = [
        "health",
        "last_polled_at",
        "last_event_at",
        "last_error",
        "last_error_at",
        "rate_limited_until",
        "next_poll_at",
    ]
    inlines = [WatchRuleInline]


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "owner_group", "active"]
    list_filter = ["active"]
    search_fields = ["name", "slug"]


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    list_display = ["handle", "name", "network", "external_id", "caller_email"]
    list_filter = ["network"]
    search_fields = ["handle", "name", "external_id", "caller_email"]
    readonly_fields = ["network", "external_id"]


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
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
    list_filter = ["network", "triage_state", "label", "is_direct", "detected_service"]
    list_select_related = ["author", "incident", "detected_service"]
    search_fields = ["external_id", "text", "author__handle"]
    raw_id_fields = ["author", "incident", "channel", "rule"]
    readonly_fields = [
        "network",
        "external_id",
        "raw",
        "ingested_at",
        "complaint_score",
        "sentiment",
        "reasons",
        # Agents label from the console or the API, which record who and when.
        "label",
        "labelled_by",
        "labelled_at",
    ]
    date_hierarchy = "posted_at"


class IncidentEventInline(admin.TabularInline):
    model = IncidentEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = ("created_at", "kind", "actor", "field", "old_value", "new_value", "message")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
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
    list_filter = ["state", "priority", "service", "assignment_group"]
    list_select_related = ["service", "assignment_group", "assignee"]
    search_fields = ["number", "short_description"]
    raw_id_fields = ["parent", "author", "channel", "assignee"]
    readonly_fields = ["number", "priority", "opened_at", "first_response_at", "resolved_at", "closed_at"]
    inlines = [IncidentEventInline]


@admin.register(Reply)
class ReplyAdmin(admin.ModelAdmin):
    list_display = ["incident", "visibility", "status", "attempts", "agent", "created_at", "sent_at"]
    list_filter = ["status", "visibility"]
    list_select_related = ["incident", "agent"]
    raw_id_fields = ["incident", "post", "channel", "agent"]
    readonly_fields = [
        "status",
        "attempts",
        "error",
        "idempotency_key",
        "external_id",
        "claimed_at",
        "sent_at",
        "retry_after",
    ]
    actions = ["retry_failed"]

    @admin.action(description="Send failed replies again")
    def retry_failed(self, request, queryset) -> None:
        count = 0
        for reply in queryset.filter(status=Reply.Status.FAILED):
            replies.reply_retry(reply=reply)
            count += 1
        self.message_user(request, f"{count} replies queued again.", messages.SUCCESS)


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "priority", "first_response_minutes", "resolution_minutes", "calendar", "timezone"]


@admin.register(WatchRule)
class WatchRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "channel", "kind", "query", "complaint_threshold", "action", "enabled"]
    list_filter = ["kind", "action", "enabled", "channel"]
