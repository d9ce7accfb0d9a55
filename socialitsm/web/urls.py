"""Routes of the agents' web UI."""

from __future__ import annotations

from django.urls import path, register_converter
from django.urls.converters import StringConverter

from . import broadcasts, notifications, operations, views, workspace


class IncidentNumberConverter(StringConverter):
    """An incident number: any character but "/" and NUL, which PostgreSQL refuses in a query."""

    regex = r"[^/\x00]+"


register_converter(IncidentNumberConverter, "incident_number")

app_name = "socialitsm"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("queue/live/", views.queue_live, name="queue-live"),
    path("queue/views/", views.saved_view_create_view, name="saved-view-create"),
    path("queue/views/<int:pk>/delete/", views.saved_view_delete_view, name="saved-view-delete"),
    path("incidents/bulk/", views.incidents_bulk_view, name="incidents-bulk"),
    path("posts/bulk/", views.posts_bulk_view, name="posts-bulk"),
    path("incidents/link/", views.incidents_link_view, name="incidents-link"),
    path("incidents/merge/", views.incidents_merge_view, name="incidents-merge"),
    path("incidents/<incident_number:number>/", views.incident_detail, name="incident"),
    path("incidents/<incident_number:number>/unlink/", views.incident_unlink_view, name="incident-unlink"),
    path("incidents/<incident_number:number>/unmerge/", views.incident_unmerge_view, name="incident-unmerge"),
    path("incidents/<incident_number:number>/replies/", views.incident_replies, name="incident-replies"),
    path("incidents/<incident_number:number>/update/", views.incident_update_view, name="incident-update"),
    path("incidents/<incident_number:number>/assign/", views.incident_assign_view, name="incident-assign"),
    path("incidents/<incident_number:number>/reply/", views.incident_reply_view, name="incident-reply"),
    path(
        "incidents/<incident_number:number>/replies/<int:reply_id>/retry/",
        views.incident_reply_retry_view,
        name="incident-reply-retry",
    ),
    path(
        "incidents/<incident_number:number>/replies/<int:reply_id>/cancel/",
        views.incident_reply_cancel_view,
        name="incident-reply-cancel",
    ),
    path(
        "incidents/<incident_number:number>/itsm/<int:link_id>/retry/",
        views.incident_itsm_retry_view,
        name="incident-itsm-retry",
    ),
    path("incidents/<incident_number:number>/broadcast/", broadcasts.incident_broadcast, name="incident-broadcast"),
    path(
        "incidents/<incident_number:number>/broadcast/new/",
        broadcasts.incident_broadcast_create,
        name="incident-broadcast-create",
    ),
    path(
        "incidents/<incident_number:number>/broadcast/<int:broadcast_id>/edit/",
        broadcasts.incident_broadcast_edit,
        name="incident-broadcast-edit",
    ),
    path(
        "incidents/<incident_number:number>/broadcast/<int:broadcast_id>/confirm/",
        broadcasts.incident_broadcast_confirm,
        name="incident-broadcast-confirm",
    ),
    path(
        "incidents/<incident_number:number>/broadcast/<int:broadcast_id>/discard/",
        broadcasts.incident_broadcast_discard,
        name="incident-broadcast-discard",
    ),
    path(
        "incidents/<incident_number:number>/status-posts/",
        broadcasts.incident_status_post_create,
        name="incident-status-post",
    ),
    path("incidents/<incident_number:number>/notes/", workspace.incident_note_view, name="incident-note"),
    path("incidents/<incident_number:number>/presence/", workspace.incident_presence, name="incident-presence"),
    path("incidents/<incident_number:number>/poster/", workspace.incident_poster, name="incident-poster"),
    path(
        "incidents/<incident_number:number>/templates/<int:template_id>/",
        workspace.reply_template_fill,
        name="incident-template-fill",
    ),
    path("reply-templates/", workspace.reply_template_list_view, name="reply-templates"),
    path("reply-templates/new/", workspace.reply_template_edit_view, name="reply-template-new"),
    path("reply-templates/<int:template_id>/", workspace.reply_template_edit_view, name="reply-template-edit"),
    path(
        "reply-templates/<int:template_id>/delete/", workspace.reply_template_delete_view, name="reply-template-delete"
    ),
    path("profile/", workspace.profile_view, name="profile"),
    path("profile/time-zone/", workspace.profile_time_zone_view, name="profile-time-zone"),
    path("posts/", views.triage, name="triage"),
    path("posts/<int:pk>/promote/", views.post_promote_view, name="post-promote"),
    path("posts/<int:pk>/route/", views.post_route_retry_view, name="post-route-retry"),
    path("sla/", views.sla_dashboard, name="sla-dashboard"),
    path("sla/export.csv", views.sla_dashboard_csv, name="sla-dashboard-csv"),
    path("sla/incidents/", views.sla_incidents, name="sla-incidents"),
    path("posts/<int:pk>/label/", views.post_label_view, name="post-label"),
    path("metrics", operations.metrics_view, name="metrics"),
    path("channels/health/", operations.channel_health, name="channel-health"),
    path("chat/", operations.chat_webhooks, name="chat-webhooks"),
    path("chat/<int:pk>/delete/", operations.chat_webhook_delete, name="chat-webhook-delete"),
    path("notifications/", notifications.notification_list, name="notifications"),
    path("notifications/read-all/", notifications.notification_read_all, name="notifications-read-all"),
    path("notifications/preferences/", notifications.notification_preferences, name="notification-preferences"),
    path("notifications/<int:pk>/open/", notifications.notification_open, name="notification-open"),
    path("notifications/<int:pk>/read/", notifications.notification_read, name="notification-read"),
]
