from __future__ import annotations

from django.urls import path
from rest_framework.routers import DefaultRouter

from .ingest import IngestView
from .views import ChannelViewSet, IncidentViewSet, PostViewSet, ReplyViewSet, ServiceViewSet

app_name = "socialitsm-api"

router = DefaultRouter()
router.register("incidents", IncidentViewSet, basename="incident")
router.register("posts", PostViewSet, basename="post")
router.register("replies", ReplyViewSet, basename="reply")
router.register("services", ServiceViewSet, basename="service")
router.register("channels", ChannelViewSet, basename="channel")

urlpatterns = [
    path("ingest/<slug:slug>/", IngestView.as_view(), name="ingest"),
    *router.urls,
]
