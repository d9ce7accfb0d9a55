"""API: the caller's own notifications, and marking them read."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from socialitsm import selectors
from socialitsm.api.base import ApiPolicy
from socialitsm.api.representation import ModelSerializer, Serializer
from socialitsm.models import Channel, Incident, Notification
from socialitsm.services.notifications import notifications_mark_read


class NotificationSerializer(ModelSerializer):
    incident: serializers.SlugRelatedField[Incident] = serializers.SlugRelatedField(slug_field="number", read_only=True)
    channel: serializers.SlugRelatedField[Channel] = serializers.SlugRelatedField(slug_field="name", read_only=True)
    read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ("id", "kind", "title", "body", "incident", "channel", "created_at", "read", "read_at", "email_status")
        read_only_fields = fields

    def get_read(self, obj: Notification) -> bool:
        return obj.read_at is not None


class ReadAllSerializer(Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=1000,
        help_text="Only these notifications; all unread ones when left out.",
    )


class MarkedSerializer(Serializer):
    marked = serializers.IntegerField()
    unread = serializers.IntegerField()


@extend_schema_view(
    list=extend_schema(
        summary="The caller's notifications, newest first",
        parameters=[OpenApiParameter("unread", bool, description="Only unread ones.")],
    ),
    retrieve=extend_schema(summary="One of the caller's notifications"),
)
class NotificationViewSet(ApiPolicy, mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """Every caller sees only their own notifications; another person's is a 404."""

    serializer_class = NotificationSerializer
    queryset = Notification.objects.none()  # for the schema; get_queryset gives the caller's own
    lookup_value_regex = r"\d+"
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[Notification]:
        notifications = selectors.notification_list(user=self.request.user)
        if self.action == "list" and self.request.query_params.get("unread", "").lower() in ("1", "true", "yes"):
            notifications = notifications.filter(read_at__isnull=True)
        return notifications

    @extend_schema(summary="Mark one notification read", request=None, responses={200: NotificationSerializer})
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        notification = self.get_object()
        notifications_mark_read(user=request.user, ids=[notification.pk])
        notification.refresh_from_db()
        return Response(self.get_serializer(notification).data)

    @extend_schema(
        summary="Mark all (or the listed) unread notifications read",
        request=ReadAllSerializer,
        responses={200: MarkedSerializer},
    )
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request: Request) -> Response:
        given = ReadAllSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        ids = given.validated_data.get("ids")
        marked = notifications_mark_read(user=request.user, ids=ids)
        return Response({"marked": marked, "unread": selectors.notification_unread_count(request.user)})
