"""Routes of the agents' web UI."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "socialitsm"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("incidents/<str:number>/", views.incident_detail, name="incident"),
    path("incidents/<str:number>/replies/", views.incident_replies, name="incident-replies"),
    path("incidents/<str:number>/update/", views.incident_update_view, name="incident-update"),
    path("incidents/<str:number>/assign/", views.incident_assign_view, name="incident-assign"),
    path("incidents/<str:number>/reply/", views.incident_reply_view, name="incident-reply"),
    path(
        "incidents/<str:number>/itsm/<int:link_id>/retry/", views.incident_itsm_retry_view, name="incident-itsm-retry"
    ),
    path("posts/", views.triage, name="triage"),
    path("posts/<int:pk>/promote/", views.post_promote_view, name="post-promote"),
    path("sla/", views.sla_dashboard, name="sla-dashboard"),
    path("sla/export.csv", views.sla_dashboard_csv, name="sla-dashboard-csv"),
    path("posts/<int:pk>/label/", views.post_label_view, name="post-label"),
]
