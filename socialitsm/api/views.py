"""API v1: read viewsets over incidents, posts, replies and the catalogue; commands as actions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from django.db.models import ProtectedError, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet, ModelViewSet

from socialitsm import selectors
from socialitsm.exceptions import ApplicationError, ConflictError, PrivateDataError, VersionConflictError
from socialitsm.models import (
    Broadcast,
    Channel,
    Incident,
    ItsmConnection,
    ItsmLink,
    Post,
    Reply,
    ReplyTemplate,
    SavedView,
    Service,
    SlaCalendar,
    SlaPolicy,
)
from socialitsm.pagination import CappedPageNumberPagination, KeyedPageNumberPagination
from socialitsm.selectors import channel_list
from socialitsm.services import (
    broadcasts,
    bulk,
    incidents,
    itsm_sync,
    major,
    notes,
    replies,
    reply_templates,
    retention,
    routing,
    saved_views,
)
from socialitsm.services.sla import sla_rules_changed

from . import serializers as s
from .base import ApiPolicy, Pagination
from .filters import IncidentFilter, NullsLastOrderingFilter, PostFilter, ReplyFilter, ViewFilterSetBackend
from .permissions import CanManage, IsAgent, IsLead
from .schema import ErrorSerializer

# Slugs and incident numbers in URLs: any character but a NUL, which PostgreSQL refuses in a
# query (a 500 instead of a 404).
LOOKUP_REGEX = r"[^/.\x00]+"
# Broadcast ids in URLs: digits that fit the database's integer.
BROADCAST_ID_REGEX = r"[0-9]{1,9}"
BROADCAST_ID = OpenApiParameter("broadcast_id", int, OpenApiParameter.PATH, description="The broadcast's id.")


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The current state does not allow this."
    default_code = "conflict"


class ApiViewSet(ApiPolicy, GenericViewSet):
    """Turns a service's refusal into a 400 naming the field it concerns, or a 409 when the
    row's state does not allow the command."""

    # Service field names that an action's input calls something else.
    error_fields: ClassVar[dict[str, str]] = {}

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, PrivateDataError):
            findings = [{"kind": kind, "text": text} for kind, text in exc.findings]
            return Response(
                {"error": exc.code, "detail": exc.message, "findings": findings}, status=status.HTTP_400_BAD_REQUEST
            )
        if isinstance(exc, ConflictError):
            exc = Conflict(exc.message)
        elif isinstance(exc, ApplicationError):
            field = exc.field or api_settings.NON_FIELD_ERRORS_KEY
            exc = ValidationError({self.error_fields.get(field, field): [exc.message]})
        return super().handle_exception(exc)


def _incident_response(incident: Incident, context: dict[str, Any], code: int = status.HTTP_200_OK) -> Response:
    fresh = selectors.incident_list().get(pk=incident.pk)
    return Response(s.IncidentSerializer(fresh, context=context).data, status=code)


def _etag(incident: Incident) -> str:
    return f'"{incident.version}"'


def _if_match(request: Request) -> int | None:
    """The incident version an If-Match header names: None when absent or "*" (no check, as
    before versions existed). Raises ValidationError for a header that is no version of ours."""
    header = request.headers.get("If-Match", "").strip()
    if not header or header == "*":
        return None
    tag = header.split(",")[0].strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise ValidationError({"If-Match": ['an ETag of this incident, e.g. "3", as its GET answered']})
    return int(tag)


def _reply_target(incident: Incident) -> Post:
    """The post a reply answers when the agent names none (see selectors.reply_default_post)."""
    post = selectors.reply_default_post(incident, list(incident.posts.order_by("posted_at", "id")))
    if post is None:
        raise ApplicationError(f"{incident.number} has no posts to answer", field="post")
    return post


@extend_schema_view(
    list=extend_schema(summary="Incidents, highest priority first"),
    retrieve=extend_schema(summary="One incident by number"),
)
class IncidentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.IncidentSerializer
    lookup_field = "number"
    lookup_value_regex = LOOKUP_REGEX
    filterset_class = IncidentFilter
    filter_backends = (ViewFilterSetBackend, NullsLastOrderingFilter)
    pagination_class = KeyedPageNumberPagination
    # breach_due_at: time to breach, soonest first; incidents with no running clock come last.
    ordering_fields = ("priority", "opened_at", "updated_at", "response_due_at", "breach_due_at")
    ordering = ("priority", "opened_at", "id")

    def get_queryset(self) -> QuerySet[Incident]:
        return selectors.incident_list()

    # Parameters that narrow the list by state alone (or only order or page it).
    _STATE_ONLY = frozenset({"state", "open", "view", "ordering", "page"})

    def request_filterset(self) -> IncidentFilter:
        """The request's filters, built once (the filter backend and the pagination read them)."""
        if "_filterset" not in self.__dict__:
            self.__dict__["_filterset"] = IncidentFilter(
                self.request.query_params, queryset=self.get_queryset(), request=self.request
            )
        return self.__dict__["_filterset"]

    def list_count(self) -> int | None:
        """The list's count from the incidents per state when only states narrow it (see
        selectors.incident_queue_count), so a page does not count the table; else None."""
        if self.action != "list" or not set(self.request.query_params) <= self._STATE_ONLY:
            return None
        filterset = self.request_filterset()
        if not filterset.is_valid():
            return None
        return selectors.incident_queue_count(filterset.query())

    def list_paging(self) -> dict[str, Any]:
        """How the list is paged (selectors.incident_queue_paging): searched lists count up to a cap."""
        if self.action != "list":
            return {}
        filterset = self.request_filterset()
        if not filterset.is_valid():
            return {}
        return selectors.incident_queue_paging(filterset.query())

    @extend_schema(
        summary="One incident by number",
        description="The answer's ETag is the incident's version; send it back as If-Match with a PATCH.",
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incident = self.get_object()
        response = Response(self.get_serializer(incident).data)
        response["ETag"] = _etag(incident)
        return response

    @extend_schema(
        summary="Change an incident",
        description='With `If-Match: "<version>"` (the ETag of a GET), the change is refused with 412 and the '
        "incident as it is now when someone changed it since. Without If-Match (or with `*`) the change is made "
        "as before, unchecked; clients should send it.",
        parameters=[
            OpenApiParameter(
                "If-Match", str, OpenApiParameter.HEADER, required=False, description="The ETag the change is based on."
            )
        ],
        request=s.IncidentUpdateSerializer,
        responses={
            200: s.IncidentSerializer,
            400: OpenApiResponse(description="Invalid value or refused change, by field"),
            412: OpenApiResponse(s.IncidentSerializer, description="Changed since the If-Match version: it is now so"),
        },
    )
    def partial_update(self, request: Request, number: str | None = None) -> Response:
        incident = self.get_object()
        version = _if_match(request)
        data = s.IncidentUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            incidents.incident_update(incident=incident, actor=request.user, version=version, **data.validated_data)
        except VersionConflictError:
            response = _incident_response(incident, self.get_serializer_context(), status.HTTP_412_PRECONDITION_FAILED)
        else:
            response = _incident_response(incident, self.get_serializer_context())
        response["ETag"] = f'"{response.data["version"]}"'
        return response

    @extend_schema(methods=["GET"], summary="The incident's internal notes, oldest first")
    @extend_schema(
        methods=["POST"],
        summary="Add an internal note (agents only; never sent to a network; ITSM suites get an internal comment)",
        request=s.IncidentNoteSerializer,
        responses={201: s.IncidentNoteSerializer, 400: OpenApiResponse(description="Empty or too long")},
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[], serializer_class=s.IncidentNoteSerializer)
    def notes(self, request: Request, number: str | None = None) -> Response:
        incident = self.get_object()
        if request.method == "GET":
            return self._page(selectors.incident_notes(incident))
        data = s.IncidentNoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        note = notes.note_add(incident=incident, author=request.user, text=data.validated_data["text"])
        return Response(self.get_serializer(note).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Assign an incident (a new incident moves to in progress)",
        request=s.IncidentAssignSerializer,
        responses={
            200: s.IncidentSerializer,
            400: OpenApiResponse(description="Invalid value or refused change, by field"),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[], error_fields={"assignment_group": "group"})
    def assign(self, request: Request, number: str | None = None) -> Response:
        incident = self.get_object()
        data = s.IncidentAssignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        incidents.incident_assign(
            incident=incident,
            actor=request.user,
            assignee=data.validated_data["assignee"],
            group=data.validated_data.get("group"),
        )
        return _incident_response(incident, self.get_serializer_context())

    @extend_schema(
        summary="Resolve an incident",
        request=None,
        responses={
            200: s.IncidentSerializer,
            400: OpenApiResponse(description="The incident cannot be resolved from its state"),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def resolve(self, request: Request, number: str | None = None) -> Response:
        incident = self.get_object()
        incidents.incident_update(incident=incident, actor=request.user, state=Incident.State.RESOLVED)
        return _incident_response(incident, self.get_serializer_context())

    @extend_schema(summary="The incident's posts, oldest first", responses=s.PostSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], serializer_class=s.PostSerializer)
    def posts(self, request: Request, number: str | None = None) -> Response:
        incident = self.get_object()
        return self._page(selectors.incident_posts(incident))

    @extend_schema(summary="The incident's audit trail, oldest first", responses=s.IncidentEventSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], serializer_class=s.IncidentEventSerializer)
    def events(self, request: Request, number: str | None = None) -> Response:
        incident = self.get_object()
        return self._page(selectors.incident_events(incident))

    @extend_schema(
        methods=["GET"],
        summary="Replies to the incident's posters, oldest first",
        responses=s.ReplySerializer(many=True),
    )
    @extend_schema(
        methods=["POST"],
        summary="Reply to a poster, publicly or by direct message",
        request=s.ReplyCreateSerializer,
        responses={
            201: s.ReplySerializer,
            400: OpenApiResponse(description="Invalid reply, e.g. too long for the network"),
        },
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[], serializer_class=s.ReplySerializer)
    def replies(self, request: Request, number: str | None = None) -> Response:
        incident = self.get_object()
        if request.method == "GET":
            return self._page(selectors.incident_replies(incident))
        data = s.ReplyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        post = data.validated_data.get("post") or _reply_target(incident)
        reply = replies.reply_queue(
            incident=incident,
            post=post,
            text=data.validated_data["text"],
            visibility=data.validated_data["visibility"],
            agent=request.user,
            sign=True,
            confirm_public=data.validated_data["confirm_public"],
        )
        # Read back: with an eager or fast worker the reply may already be sent.
        fresh = selectors.reply_list().get(pk=reply.pk)
        return Response(self.get_serializer(fresh).data, status=status.HTTP_201_CREATED)

    # -- broadcasts and status posts of a major incident ----------------------------------------

    @extend_schema(
        methods=["GET"],
        summary="The major incident's broadcasts, newest first, with each poster's reply and its status",
        responses=s.BroadcastListSerializer(many=True),
    )
    @extend_schema(
        methods=["POST"],
        summary="Draft a broadcast to every affected poster and preview it (nothing is sent)",
        description="The answer's `recipients` is the preview: each affected poster (authors of the posts of the "
        "major incident and its children) with the personalised text, or why they are left out. Send it with "
        "`POST .../broadcasts/{broadcast_id}/confirm/`.",
        request=s.BroadcastCreateSerializer,
        responses={
            201: s.BroadcastDetailSerializer,
            400: OpenApiResponse(description="Not a major incident, empty text or an unknown variable"),
        },
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[], serializer_class=s.BroadcastListSerializer)
    def broadcasts(self, request: Request, number: str | None = None) -> Response:
        incident = self.get_object()
        if request.method == "GET":
            return self._page(selectors.broadcast_list(incident))
        data = s.BroadcastCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        broadcast = broadcasts.broadcast_create(major=incident, actor=request.user, **data.validated_data)
        return self._broadcast_answer(broadcast, status.HTTP_201_CREATED)

    @extend_schema(
        methods=["GET"],
        summary="One broadcast: its preview while a draft, each poster's reply and status once confirmed",
        parameters=[BROADCAST_ID],
        responses=s.BroadcastDetailSerializer,
    )
    @extend_schema(
        methods=["PATCH"],
        summary="Change a draft broadcast's text or visibility",
        parameters=[BROADCAST_ID],
        request=s.BroadcastUpdateSerializer,
        responses={
            200: s.BroadcastDetailSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The broadcast is confirmed or discarded"),
        },
    )
    @action(
        detail=True,
        methods=["get", "patch"],
        url_path=rf"broadcasts/(?P<broadcast_id>{BROADCAST_ID_REGEX})",
        filter_backends=[],
        serializer_class=s.BroadcastDetailSerializer,
    )
    def broadcast_detail(self, request: Request, number: str | None = None, broadcast_id: str = "") -> Response:
        broadcast = self._broadcast_get(broadcast_id)
        if request.method == "PATCH":
            data = s.BroadcastUpdateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            broadcast = broadcasts.broadcast_update(broadcast=broadcast, actor=request.user, **data.validated_data)
        return self._broadcast_answer(broadcast)

    @extend_schema(
        summary="Confirm a draft broadcast: queue one paced reply per poster, less the exclusions",
        description="Idempotent: confirming a confirmed broadcast again queues nothing and answers it as it is.",
        parameters=[BROADCAST_ID],
        request=s.BroadcastConfirmSerializer,
        responses={
            200: s.BroadcastDetailSerializer,
            400: OpenApiResponse(description="An exclusion that names no affected poster"),
            409: OpenApiResponse(ErrorSerializer, description="The broadcast was discarded"),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=rf"broadcasts/(?P<broadcast_id>{BROADCAST_ID_REGEX})/confirm",
        filter_backends=[],
        serializer_class=s.BroadcastDetailSerializer,
    )
    def broadcast_confirm(self, request: Request, number: str | None = None, broadcast_id: str = "") -> Response:
        broadcast = self._broadcast_get(broadcast_id)
        data = s.BroadcastConfirmSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        broadcast = broadcasts.broadcast_confirm(
            broadcast=broadcast, actor=request.user, exclude=data.validated_data["exclude"]
        )
        return self._broadcast_answer(broadcast)

    @extend_schema(
        summary="Discard a draft broadcast",
        parameters=[BROADCAST_ID],
        request=None,
        responses={
            200: s.BroadcastDetailSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The broadcast is confirmed"),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=rf"broadcasts/(?P<broadcast_id>{BROADCAST_ID_REGEX})/discard",
        filter_backends=[],
        serializer_class=s.BroadcastDetailSerializer,
    )
    def broadcast_discard(self, request: Request, number: str | None = None, broadcast_id: str = "") -> Response:
        broadcast = broadcasts.broadcast_discard(broadcast=self._broadcast_get(broadcast_id), actor=request.user)
        return self._broadcast_answer(broadcast)

    def _broadcast_get(self, broadcast_id: str) -> Broadcast:
        incident = self.get_object()
        return get_object_or_404(
            Broadcast.objects.select_related("incident__service"), pk=broadcast_id, incident=incident
        )

    def _broadcast_answer(self, broadcast: Broadcast, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.broadcast_list(broadcast.incident).get(pk=broadcast.pk)
        preview = broadcasts.broadcast_preview(fresh) if fresh.status == Broadcast.Status.DRAFT else None
        context = {**self.get_serializer_context(), "preview": preview}
        return Response(s.BroadcastDetailSerializer(fresh, context=context).data, status=code)

    @extend_schema(
        methods=["GET"],
        summary="The major incident's status posts, one per channel at most",
        responses=s.StatusPostSerializer(many=True),
    )
    @extend_schema(
        methods=["POST"],
        summary="Publish a standalone status post about the major incident on a channel",
        request=s.StatusPostCreateSerializer,
        responses={
            201: s.StatusPostSerializer,
            400: OpenApiResponse(description="Not a major incident, a network without status posts, or too long"),
            409: OpenApiResponse(ErrorSerializer, description="The channel already has this incident's status post"),
        },
    )
    @action(
        detail=True,
        methods=["get", "post"],
        url_path="status-posts",
        filter_backends=[],
        serializer_class=s.StatusPostSerializer,
    )
    def status_posts(self, request: Request, number: str | None = None) -> Response:
        incident = self.get_object()
        if request.method == "GET":
            return self._page(selectors.status_post_list(incident))
        data = s.StatusPostCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        status_post = broadcasts.status_post_publish(major=incident, actor=request.user, **data.validated_data)
        fresh = selectors.status_post_list(incident).get(pk=status_post.pk)
        return Response(self.get_serializer(fresh).data, status=status.HTTP_201_CREATED)

    def _page(self, queryset: QuerySet[Any]) -> Response:
        page = self.paginate_queryset(queryset)
        serializer = self.get_serializer(page, many=True)
        return self.get_paginated_response(serializer.data)

    # -- major incidents and duplicates --

    @extend_schema(
        summary="Open a major incident and link incidents to it as its children",
        request=s.MajorOpenSerializer,
        responses={
            201: s.IncidentSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Unknown incidents, or one is a major incident"),
            409: OpenApiResponse(ErrorSerializer, description="An incident is over, merged or linked elsewhere"),
        },
    )
    @action(detail=False, methods=["post"], url_path="major", filter_backends=[], pagination_class=None)
    def major_open(self, request: Request) -> Response:
        data = s.MajorOpenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        opened = major.major_open(
            incidents=selectors.incidents_by_number(data.validated_data["incidents"]),
            actor=request.user,
            short_description=data.validated_data["short_description"],
            service=data.validated_data.get("service"),
            impact=data.validated_data["impact"],
            urgency=data.validated_data["urgency"],
        )
        return _incident_response(opened, self.get_serializer_context(), status.HTTP_201_CREATED)

    @extend_schema(
        summary="One change for many incidents: assign, state, priority or link to a major incident",
        description="Each incident goes through the same service as a single change (audit events, SLA, "
        "ITSM sync); one refused does not stop the others: `results` says per incident.",
        request=s.IncidentBulkSerializer,
        responses={
            200: s.BulkResultSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Bad input, unknown incidents or major incident"),
        },
    )
    @action(detail=False, methods=["post"], url_path="bulk", filter_backends=[], pagination_class=None)
    def bulk(self, request: Request) -> Response:
        data = s.IncidentBulkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        wanted = data.validated_data
        value = {
            "assign": lambda: wanted.get("assignee"),
            "state": lambda: wanted.get("state"),
            "priority": lambda: wanted.get("priority"),
            "link": lambda: selectors.incidents_by_number([wanted["major"]], field="major")[0],
        }[wanted["action"]]()
        result = bulk.incidents_bulk_change(
            incidents=selectors.incidents_by_number(wanted["incidents"]),
            actor=request.user,
            action=wanted["action"],
            value=value,
            group=wanted.get("group"),
        )
        return Response(s.BulkResultSerializer(result).data)

    @extend_schema(
        summary="Link incidents to this major incident as its children",
        request=s.MajorLinkSerializer,
        responses={
            200: s.IncidentSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Not a major incident, unknown or major children"),
            409: OpenApiResponse(ErrorSerializer, description="An incident is over, merged or linked elsewhere"),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def link(self, request: Request, number: str | None = None) -> Response:
        parent = self.get_object()
        data = s.MajorLinkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        children = selectors.incidents_by_number(data.validated_data["incidents"])
        major.major_link(major=parent, incidents=children, actor=request.user)
        return _incident_response(parent, self.get_serializer_context())

    @extend_schema(
        summary="Take this incident out of its major incident",
        request=None,
        responses={
            200: s.IncidentSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The incident has no major incident"),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def unlink(self, request: Request, number: str | None = None) -> Response:
        child = major.major_unlink(incident=self.get_object(), actor=request.user)
        return _incident_response(child, self.get_serializer_context())

    @extend_schema(
        summary="Merge this duplicate into another incident of the same poster",
        description="Its posts, replies and their events move to `into`; this incident is canceled. "
        "Incidents of different posters merge only with `other_author`, which needs a team lead.",
        request=s.IncidentMergeSerializer,
        responses={
            200: s.IncidentSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Unknown target, itself, or a major incident"),
            403: OpenApiResponse(ErrorSerializer, description="other_author without the team lead role"),
            409: OpenApiResponse(ErrorSerializer, description="Different posters, or a state that does not allow it"),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[], error_fields={"target": "into"})
    def merge(self, request: Request, number: str | None = None) -> Response:
        duplicate = self.get_object()
        data = s.IncidentMergeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        [target] = selectors.incidents_by_number([data.validated_data["into"]], field="into")
        major.incident_merge(
            duplicate=duplicate, target=target, actor=request.user, other_author=data.validated_data["other_author"]
        )
        return _incident_response(target, self.get_serializer_context())

    @extend_schema(
        summary="Undo the merge of this duplicate: what moved goes back",
        request=None,
        responses={
            200: s.IncidentSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The incident is not merged"),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def unmerge(self, request: Request, number: str | None = None) -> Response:
        duplicate = major.incident_unmerge(duplicate=self.get_object(), actor=request.user)
        return _incident_response(duplicate, self.get_serializer_context())

    @extend_schema(
        summary="The people a major incident affects: each child incident's poster and whether they had an answer",
        responses={200: s.AffectedPosterSerializer(many=True), 400: OpenApiResponse(ErrorSerializer)},
    )
    @action(detail=True, methods=["get"], filter_backends=[], serializer_class=s.AffectedPosterSerializer)
    def affected(self, request: Request, number: str | None = None) -> Response:
        return self._page(selectors.major_affected_posters(self._major()))

    @extend_schema(
        summary="How a major incident's spike grew: its posts per minute since the first",
        responses={200: s.SpikeGrowthSerializer, 400: OpenApiResponse(ErrorSerializer)},
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def spike(self, request: Request, number: str | None = None) -> Response:
        return Response(s.SpikeGrowthSerializer(selectors.major_spike_growth(self._major())).data)

    def _major(self) -> Incident:
        incident = self.get_object()
        if not incident.is_major:
            raise ApplicationError(f"{incident.number} is not a major incident")
        return incident


@extend_schema_view(
    list=extend_schema(summary="Posts heard on the channels"),
    retrieve=extend_schema(summary="One post"),
)
class PostViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.PostSerializer
    filterset_class = PostFilter
    pagination_class = CappedPageNumberPagination
    ordering_fields = ("posted_at",)
    ordering = ("posted_at", "id")

    def get_queryset(self) -> QuerySet[Post]:
        return selectors.post_list()

    @extend_schema(
        summary="Open an incident from an ignored or queued post",
        description="With the service and priority given, else those proposed from the classifier's verdict.",
        request=s.PostPromoteSerializer,
        responses={
            201: s.IncidentSerializer,
            400: OpenApiResponse(description="The post is already linked or not yet classified"),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def promote(self, request: Request, pk: str | None = None) -> Response:
        post = self.get_object()
        data = s.PostPromoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        incident = routing.post_promote(post=post, actor=request.user, **data.validated_data)
        return _incident_response(incident, self.get_serializer_context(), status.HTTP_201_CREATED)

    @extend_schema(
        summary="Label a post as a complaint or not, for the classifier to learn from",
        request=s.PostLabelSerializer,
        responses={200: s.PostSerializer, 400: OpenApiResponse(description="Unknown label")},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def label(self, request: Request, pk: str | None = None) -> Response:
        post = self.get_object()
        data = s.PostLabelSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        routing.post_label(post=post, label=data.validated_data["label"], actor=request.user)
        fresh = selectors.post_list().get(pk=post.pk)
        return Response(s.PostSerializer(fresh, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Erase the poster of this post at their request (team leads)",
        description="Their posts and personal details are removed everywhere: posts no incident counts and "
        "nobody answered are deleted, the others keep only their times (incidents keep their figures), and "
        "replies to them lose their text. The answer is the audit record: who asked, when, which author.",
        request=None,
        responses={200: s.AuthorErasureSerializer, 403: OpenApiResponse(ErrorSerializer)},
    )
    @action(detail=True, methods=["post"], filter_backends=[], url_path="erase-author", permission_classes=[IsLead])
    def erase_author(self, request: Request, pk: str | None = None) -> Response:
        record = retention.author_erase(author=self.get_object().author, actor=request.user)
        return Response(s.AuthorErasureSerializer(record).data)


@extend_schema_view(
    list=extend_schema(summary="Replies, oldest first"),
    retrieve=extend_schema(summary="One reply"),
)
class ReplyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.ReplySerializer
    filterset_class = ReplyFilter
    ordering_fields = ("created_at", "sent_at")
    ordering = ("created_at", "id")

    def get_queryset(self) -> QuerySet[Reply]:
        return selectors.reply_list()

    def _answer(self, reply: Reply) -> Response:
        """The reply as it now stands, read again with everything the list shows."""
        return Response(self.get_serializer(selectors.reply_list().get(pk=reply.pk)).data)

    @extend_schema(
        summary="Send a failed reply, or one waiting for its next attempt, again now",
        description="The reply's backoff and retry window start over; the incident's history records who asked.",
        request=None,
        responses={
            200: s.ReplySerializer,
            409: OpenApiResponse(
                ErrorSerializer, description="The reply is being sent, sent, canceled or not failed yet"
            ),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        return self._answer(replies.reply_retry(reply=self.get_object(), actor=request.user))

    @extend_schema(
        summary="Cancel a queued, waiting or failed reply",
        description="A canceled reply is never sent; the incident's history records who canceled it.",
        request=None,
        responses={
            200: s.ReplySerializer,
            409: OpenApiResponse(ErrorSerializer, description="The reply is being sent, sent or canceled already"),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        return self._answer(replies.reply_cancel(reply=self.get_object(), actor=request.user))


@extend_schema_view(
    list=extend_schema(summary="The service catalogue"),
    retrieve=extend_schema(summary="One service by slug"),
    partial_update=extend_schema(
        summary="Set a service's spike thresholds (team leads)",
        description="Only `spike_authors` and `spike_window_minutes` change; null returns to the default.",
    ),
)
class ServiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, ApiViewSet):
    serializer_class = s.ServiceSerializer
    lookup_field = "slug"
    lookup_value_regex = LOOKUP_REGEX
    filter_backends: tuple[type, ...] = ()
    http_method_names = ["get", "patch", "head", "options"]

    def get_permissions(self) -> Sequence[Any]:
        if self.action == "partial_update":
            return [IsLead()]
        return super().get_permissions()

    def get_queryset(self) -> QuerySet[Service]:
        return Service.objects.filter(active=True).select_related("owner_group").order_by("name")


@extend_schema_view(
    list=extend_schema(summary="Canned replies, by name"),
    retrieve=extend_schema(summary="One canned reply"),
    create=extend_schema(summary="Add a canned reply (team leads)"),
    update=extend_schema(summary="Replace a canned reply (team leads)"),
    partial_update=extend_schema(summary="Change a canned reply (team leads)"),
    destroy=extend_schema(summary="Delete a canned reply (team leads)"),
)
class ReplyTemplateViewSet(ApiPolicy, ModelViewSet):
    """The team's canned replies: agents read them, leads write them."""

    serializer_class = s.ReplyTemplateSerializer
    filter_backends: tuple[type, ...] = ()

    def get_queryset(self) -> QuerySet[ReplyTemplate]:
        return selectors.reply_template_list()

    def get_permissions(self) -> Sequence[Any]:
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [IsAgent()]
        return [IsLead()]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ApplicationError):
            exc = ValidationError({exc.field or api_settings.NON_FIELD_ERRORS_KEY: [exc.message]})
        return super().handle_exception(exc)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = reply_templates.reply_template_save(
            name=data["name"], text=data["text"], actor=self.request.user
        )

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        data = serializer.validated_data
        template = serializer.instance
        assert isinstance(template, ReplyTemplate)
        serializer.instance = reply_templates.reply_template_save(
            name=data.get("name", template.name),
            text=data.get("text", template.text),
            actor=self.request.user,
            template=template,
        )


class SlaReportView(ApiPolicy, APIView):
    """The lead's SLA figures; the dashboard page and its CSV show the same numbers."""

    permission_classes = (IsLead,)

    @extend_schema(
        summary="SLA report for a period, group and network",
        parameters=[s.SlaReportQuerySerializer],
        responses={200: s.SlaReportSerializer, 400: OpenApiResponse(description="Bad filter, by field")},
    )
    def get(self, request: Request) -> Response:
        query = s.SlaReportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(selectors.sla_report(scope=_report_scope(query.validated_data), now=timezone.now()))


def _report_scope(data: dict[str, Any]) -> selectors.ReportFilter:
    try:
        return selectors.report_filter(
            start=data.get("from"),
            end=data.get("to"),
            group=data.get("group"),
            network=data.get("network", ""),
            calendar=data.get("calendar"),
            today=selectors.report_today(data.get("calendar"), timezone.now()),
        )
    except ApplicationError as exc:
        raise ValidationError({exc.field or api_settings.NON_FIELD_ERRORS_KEY: [exc.message]}) from exc


class SlaReportIncidentsView(ApiPolicy, APIView):
    """The incidents behind one figure of the SLA report (the dashboard's drill-down)."""

    permission_classes = (IsLead,)
    filter_backends = ()

    @extend_schema(
        summary="Incidents behind a figure of the SLA report",
        parameters=[s.SlaReportIncidentsQuerySerializer],
        responses={200: s.IncidentSerializer(many=True), 400: OpenApiResponse(description="Bad filter, by field")},
    )
    def get(self, request: Request) -> Response:
        query = s.SlaReportIncidentsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        drill = selectors.Drill(
            **{key: data[key] for key in ("flow", "target", "outcome", "agent", "team", "service") if key in data},
            priority=data.get("priority"),
        )
        found = selectors.sla_report_incidents(scope=_report_scope(data), drill=drill, now=timezone.now())
        incidents = selectors.incident_list().filter(pk__in=found.values("pk")).order_by("opened_at", "pk")
        paginator = Pagination()
        page = paginator.paginate_queryset(incidents, request, view=self)
        return paginator.get_paginated_response(
            s.IncidentSerializer(page, many=True, context={"request": request, "view": self}).data
        )


class SlaRulesViewSet(ApiPolicy, ModelViewSet):
    """Leads edit SLA rules; every change re-evaluates the open incidents' clocks."""

    permission_classes = (IsLead,)
    filter_backends: tuple[type, ...] = ()

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.save()
        sla_rules_changed()

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        serializer.save()
        sla_rules_changed()

    def perform_destroy(self, instance: Any) -> None:
        try:
            instance.delete()
        except ProtectedError as exc:
            raise ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [f"{instance} is still in use"]}) from exc
        sla_rules_changed()


@extend_schema_view(
    list=extend_schema(summary="SLA policies in the order they are tried"),
    create=extend_schema(summary="Add an SLA policy"),
)
class SlaPolicyViewSet(SlaRulesViewSet):
    serializer_class = s.SlaPolicySerializer
    queryset = SlaPolicy.objects.select_related("service", "calendar").order_by("position", "priority", "id")


@extend_schema_view(list=extend_schema(summary="Business-hours calendars"))
class SlaCalendarViewSet(SlaRulesViewSet):
    serializer_class = s.SlaCalendarSerializer
    queryset = SlaCalendar.objects.order_by("name")


@extend_schema_view(
    list=extend_schema(summary="Incidents' records in ITSM suites"),
    retrieve=extend_schema(summary="One incident's record in one suite"),
)
class ItsmLinkViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.ItsmLinkSerializer
    filter_backends: tuple[type, ...] = ()

    def get_queryset(self) -> QuerySet[ItsmLink]:
        return selectors.itsm_link_list()

    @extend_schema(
        summary="Retry a failed link, or one waiting out a backoff, now",
        request=None,
        responses={
            200: s.ItsmLinkSerializer,
            400: OpenApiResponse(description="The link is in sync; nothing to retry"),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        link = itsm_sync.itsm_link_retry_for_agent(link=self.get_object())
        return Response(self.get_serializer(selectors.itsm_link_list().get(pk=link.pk)).data)


@extend_schema_view(
    list=extend_schema(summary="ITSM suite connections"),
    retrieve=extend_schema(summary="One ITSM connection by slug"),
    create=extend_schema(summary="Connect an ITSM suite"),
    update=extend_schema(summary="Replace an ITSM connection's settings"),
    partial_update=extend_schema(summary="Change an ITSM connection; omitted credentials are kept"),
    destroy=extend_schema(summary="Remove an ITSM connection and its links (the suite's records stay)"),
)
class ItsmConnectionViewSet(ApiPolicy, ModelViewSet):
    serializer_class = s.ItsmConnectionSerializer
    permission_classes = (CanManage,)
    lookup_field = "slug"
    lookup_value_regex = LOOKUP_REGEX
    filter_backends: tuple[type, ...] = ()

    def get_queryset(self) -> QuerySet[ItsmConnection]:
        return ItsmConnection.objects.prefetch_related("rule_services", "rule_groups").order_by("name", "pk")


@extend_schema_view(
    list=extend_schema(summary="Channels and their health: last event, last error, quota, quiet flag"),
    retrieve=extend_schema(summary="One channel by slug"),
)
class ChannelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.ChannelSerializer
    lookup_field = "slug"
    lookup_value_regex = LOOKUP_REGEX
    filter_backends: tuple[type, ...] = ()
    http_method_names = ["get", "patch", "head", "options"]

    def get_permissions(self) -> Sequence[Any]:
        if self.action == "partial_update":
            return [IsLead()]
        return super().get_permissions()

    @extend_schema(
        summary="Set a channel's retention period (team leads)",
        description="Only `retention_days` changes: posts older than that many days are removed or "
        "anonymised by the hourly retention sweep; null keeps them.",
        request=s.ChannelRetentionSerializer,
        responses={200: s.ChannelSerializer, 400: OpenApiResponse(ErrorSerializer)},
    )
    def partial_update(self, request: Request, slug: str | None = None) -> Response:
        channel = self.get_object()
        data = s.ChannelRetentionSerializer(channel, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        # One column: the pollers write the channel's health to the same row meanwhile.
        if "retention_days" in data.validated_data:
            Channel.objects.filter(pk=channel.pk).update(retention_days=data.validated_data["retention_days"])
        return Response(self.get_serializer(self.get_queryset().get(pk=channel.pk)).data)

    def get_queryset(self) -> QuerySet[Channel]:
        return channel_list().order_by("name", "pk")

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "now": timezone.now()}


@extend_schema_view(
    list=extend_schema(summary="Saved queue views: the user's own and those others shared"),
    retrieve=extend_schema(summary="One saved view"),
    create=extend_schema(summary="Save a queue filter under a name"),
    destroy=extend_schema(summary="Delete one of the user's own saved views"),
)
class SavedViewViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, ApiViewSet
):
    serializer_class = s.SavedViewSerializer
    filter_backends: tuple[type, ...] = ()

    def get_queryset(self) -> QuerySet[SavedView]:
        if self.action == "destroy":
            # Agents only (IsAgent): the caller is a signed-in user.
            return SavedView.objects.filter(user_id=self.request.user.pk or 0)
        return selectors.saved_view_list(self.request.user)

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        data = serializer.validated_data
        serializer.instance = saved_views.saved_view_create(
            user=self.request.user, name=data["name"], query=data["query"], shared=data.get("shared", False)
        )

    def perform_destroy(self, instance: SavedView) -> None:
        saved_views.saved_view_delete(view=instance, user=self.request.user)
