from __future__ import annotations

from django.urls import path
from rest_framework.routers import DefaultRouter

from .ingest import IngestView
from .itsm import ItsmWebhookView
from .views import (
    ChannelViewSet,
    IncidentViewSet,
    ItsmConnectionViewSet,
    ItsmLinkViewSet,
    PostViewSet,
    ReplyViewSet,
    ServiceViewSet,
    SlaCalendarViewSet,
    SlaPolicyViewSet,
    SlaReportView,
)

app_name = "socialitsm-api"

router = DefaultRouter()
router.register("incidents", IncidentViewSet, basename="incident")
router.register("posts", PostViewSet, basename="post")
router.register("replies", ReplyViewSet, basename="reply")
router.register("services", ServiceViewSet, basename="service")
router.register("channels", ChannelViewSet, basename="channel")
router.register("sla/policies", SlaPolicyViewSet, basename="sla-policy")
router.register("sla/calendars", SlaCalendarViewSet, basename="sla-calendar")
router.register("itsm-links", ItsmLinkViewSet, basename="itsm-link")
router.register("itsm-connections", ItsmConnectionViewSet, basename="itsm-connection")

urlpatterns = [
    path("ingest/<slug:slug>/", IngestView.as_view(), name="ingest"),
    path("reports/sla/", SlaReportView.as_view(), name="report-sla"),
    path("itsm/<slug:slug>/webhook/", ItsmWebhookView.as_view(), name="itsm-webhook"),
    *router.urls,
]
