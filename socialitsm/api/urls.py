from __future__ import annotations

from django.urls import path
from rest_framework.routers import DefaultRouter

from .base import RootView
from .ingest import IngestView
from .itsm import ItsmWebhookView
from .notifications import NotificationViewSet
from .views import (
    ChannelViewSet,
    IncidentViewSet,
    ItsmConnectionViewSet,
    ItsmLinkViewSet,
    PostViewSet,
    ReplyTemplateViewSet,
    ReplyViewSet,
    SavedViewViewSet,
    ServiceViewSet,
    SlaCalendarViewSet,
    SlaPolicyViewSet,
    SlaReportIncidentsView,
    SlaReportView,
)

app_name = "socialitsm-api"

router = DefaultRouter()
router.APIRootView = RootView
router.register("incidents", IncidentViewSet, basename="incident")
router.register("posts", PostViewSet, basename="post")
router.register("replies", ReplyViewSet, basename="reply")
router.register("reply-templates", ReplyTemplateViewSet, basename="reply-template")
router.register("services", ServiceViewSet, basename="service")
router.register("channels", ChannelViewSet, basename="channel")
router.register("sla/policies", SlaPolicyViewSet, basename="sla-policy")
router.register("sla/calendars", SlaCalendarViewSet, basename="sla-calendar")
router.register("itsm-links", ItsmLinkViewSet, basename="itsm-link")
router.register("itsm-connections", ItsmConnectionViewSet, basename="itsm-connection")
router.register("saved-views", SavedViewViewSet, basename="saved-view")
router.register("notifications", NotificationViewSet, basename="notification")

urlpatterns = [
    # Any text as the slug (an unknown one is refused by the view with the documented 401), and
    # without the trailing slash too: a redirect would lose the POSTed body.
    path("ingest/<str:slug>/", IngestView.as_view(), name="ingest"),
    path("ingest/<str:slug>", IngestView.as_view(schema=None), name="ingest-no-slash"),
    path("reports/sla/", SlaReportView.as_view(), name="report-sla"),
    path("reports/sla/incidents/", SlaReportIncidentsView.as_view(), name="report-sla-incidents"),
    path("itsm/<str:slug>/webhook/", ItsmWebhookView.as_view(), name="itsm-webhook"),
    path("itsm/<str:slug>/webhook", ItsmWebhookView.as_view(schema=None), name="itsm-webhook-no-slash"),
    *router.urls,
]
