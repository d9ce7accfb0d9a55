"""API shapes: output serializers render rows, input serializers validate commands. No side effects."""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import Any
from urllib.parse import quote

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q, QuerySet
from django.urls import NoReverseMatch
from django.urls import reverse as django_reverse
from django.utils import timezone
from django.utils.http import RFC3986_SUBDELIMS
from drf_spectacular.utils import extend_schema_field
from rest_framework import ISO_8601, serializers
from rest_framework.reverse import reverse
from rest_framework.settings import api_settings

from socialitsm import selectors
from socialitsm import sla as sla_maths
from socialitsm.api.representation import ModelSerializer, Serializer
from socialitsm.connectors import connector_for
from socialitsm.connectors.base import DetailKind
from socialitsm.exceptions import ApplicationError, PermanentError, TransientError
from socialitsm.http import check_url
from socialitsm.models import (
    Broadcast,
    Channel,
    Incident,
    IncidentEvent,
    IncidentNote,
    ItsmConnection,
    ItsmLink,
    Network,
    Post,
    PostRevision,
    Reply,
    ReplyTemplate,
    SavedView,
    Service,
    SlaCalendar,
    SlaClock,
    SlaPolicy,
    StatusPost,
)
from socialitsm.roles import AGENT_GROUP, LEAD_GROUP
from socialitsm.services.channels import credentials_host_check
from socialitsm.services.major import spike_thresholds
from socialitsm.text import clean_text

User = get_user_model()


def _agents() -> QuerySet:
    return (
        User.objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__name__in=(AGENT_GROUP, LEAD_GROUP)))
        .distinct()
    )


class DateTimeField(serializers.DateTimeField):
    """DRF's DateTimeField, looking up the current time zone once per field rather than for
    every value it prints: a page of incidents prints about 550 times, and the lookup was more
    than half the cost of each. A field lives as long as its serializer, within one request."""

    def default_timezone(self) -> Any:
        if "_zone" not in self.__dict__:
            self.__dict__["_zone"] = super().default_timezone()
        return self.__dict__["_zone"]

    def to_representation(self, value: Any) -> Any:
        # DRF's steps inline for what rows hold, an aware datetime printed in ISO 8601 in a zone;
        # anything else (naive, a string, another format, no zone, an overflow) takes DRF's path.
        if type(value) is datetime and value.utcoffset() is not None and not hasattr(self, "timezone"):
            zone = self.default_timezone()
            if zone is not None and getattr(self, "format", api_settings.DATETIME_FORMAT) == ISO_8601:
                try:
                    printed = value.astimezone(zone).isoformat()
                except OverflowError:
                    return super().to_representation(value)
                return printed[:-6] + "Z" if printed.endswith("+00:00") else printed
        return super().to_representation(value)


# The lists' serializers map the models' datetimes to the field above.
FIELD_MAPPING = {**serializers.ModelSerializer.serializer_field_mapping, models.DateTimeField: DateTimeField}


class SlugLookupField(serializers.SlugRelatedField):
    """A writable SlugRelatedField that answers "does not exist" for a value no row can hold
    (a NUL or a lone surrogate) instead of sending it to PostgreSQL, which fails the query."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and clean_text(data) != data:
            self.fail("does_not_exist", slug_name=self.slug_field, value=clean_text(data))
        return super().to_internal_value(data)


def _absolute(path: str, context: dict[str, Any]) -> str:
    request = context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


class UserRefSerializer(Serializer):
    id = serializers.IntegerField(read_only=True)
    # The login name, whatever the host's user model calls that field (USERNAME_FIELD).
    username = serializers.CharField(source="get_username", read_only=True)


class GroupRefSerializer(Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class IncidentLinksSerializer(Serializer):
    self = serializers.URLField(read_only=True)
    posts = serializers.URLField(read_only=True)
    events = serializers.URLField(read_only=True)
    replies = serializers.URLField(read_only=True)


class ItsmConnectionSerializer(ModelSerializer):
    """An ITSM suite connection. Credentials are write-only: omitted on update, they are kept."""

    credentials = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=4096),
        write_only=True,
        required=False,
        help_text="Tokens and passwords (RT: token; ServiceNow: username, password; Jira and Zendesk: email, "
        "api_token; webhook: secret), plus webhook_secret to accept signed inbound calls. Stored encrypted.",
    )
    has_credentials = serializers.SerializerMethodField()
    accepts_webhooks = serializers.SerializerMethodField(help_text="A webhook_secret is stored.")
    webhook_url = serializers.SerializerMethodField(help_text="Where the suite posts its signed change events.")
    rule_services: serializers.SlugRelatedField[Service] = SlugLookupField(
        slug_field="slug", queryset=Service.objects.all(), many=True, required=False
    )

    class Meta:
        model = ItsmConnection
        fields = (
            "id",
            "name",
            "slug",
            "kind",
            "base_url",
            "credentials",
            "has_credentials",
            "accepts_webhooks",
            "webhook_url",
            "config",
            "field_map",
            "state_map",
            "rule_services",
            "rule_groups",
            "rule_max_priority",
            "poll_interval",
            "enabled",
            "last_polled_at",
            "next_poll_at",
            "last_error",
            "last_error_at",
        )
        read_only_fields = ("last_polled_at", "next_poll_at", "last_error", "last_error_at")

    def get_has_credentials(self, connection: ItsmConnection) -> bool:
        return bool(connection.credentials)

    def get_accepts_webhooks(self, connection: ItsmConnection) -> bool:
        return bool(connection.credentials.get("webhook_secret"))

    def get_webhook_url(self, connection: ItsmConnection) -> str:
        return reverse(
            "socialitsm-api:itsm-webhook", kwargs={"slug": connection.slug}, request=self.context.get("request")
        )

    def validate_base_url(self, value: str) -> str:
        try:
            check_url(value)
        except PermanentError as exc:
            raise serializers.ValidationError(exc.message) from exc
        except TransientError:
            pass  # not resolvable now (DNS down, host not yet created): checked again on every call
        return value

    def validate_poll_interval(self, value: int) -> int:
        if value < 10:
            raise serializers.ValidationError("poll at most every 10 seconds")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for name in ("config", "field_map", "state_map"):
            if name in attrs and not isinstance(attrs[name], dict):
                raise serializers.ValidationError({name: ["must be a JSON object"]})
        connection = self.instance
        if isinstance(connection, ItsmConnection):
            try:
                credentials_host_check(
                    stored_url=connection.base_url,
                    new_url=attrs.get("base_url"),
                    stored=bool(connection.credentials),
                    replaced=bool(attrs.get("credentials")),
                )
            except ApplicationError as exc:
                raise serializers.ValidationError({"credentials": [exc.message]}) from exc
        return attrs


class ItsmLinkSerializer(ModelSerializer):
    incident: serializers.SlugRelatedField[Incident] = serializers.SlugRelatedField(slug_field="number", read_only=True)
    connection: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    suite = serializers.CharField(source="connection.kind", read_only=True, help_text="rt, servicenow, jira, ...")
    suite_name = serializers.CharField(source="connection.name", read_only=True)
    remote_state = serializers.CharField(read_only=True, help_text="The suite's state as an incident state.")
    retry = serializers.SerializerMethodField(help_text="POST here to retry a failed or waiting link.")

    class Meta:
        model = ItsmLink
        fields = (
            "id",
            "incident",
            "connection",
            "suite",
            "suite_name",
            "external_ref",
            "remote_id",
            "remote_key",
            "remote_url",
            "status",
            "last_error",
            "last_error_at",
            "attempts",
            "next_attempt_at",
            "last_synced_at",
            "last_pulled_at",
            "remote_status",
            "remote_state",
            "retry",
        )
        read_only_fields = fields

    def get_retry(self, link: ItsmLink) -> str:
        return reverse("socialitsm-api:itsm-link-retry", kwargs={"pk": link.pk}, request=self.context.get("request"))


# Impact and urgency share one scale; plain bounded integers keep the schema from naming one enum twice.
LEVEL_HELP = "1 high, 2 medium, 3 low."


class SlaClockSerializer(Serializer):
    target = serializers.ChoiceField(choices=SlaClock.Target.choices, read_only=True)
    cycle = serializers.IntegerField(read_only=True, help_text="Next-response turn; 0 for the other targets.")
    state = serializers.SerializerMethodField(help_text="running, paused, met, breached or canceled (not needed).")
    at_risk = serializers.SerializerMethodField(help_text="Running and past its warning share of the target.")
    started_at = DateTimeField(read_only=True)
    due_at = DateTimeField(read_only=True, allow_null=True, help_text="Null while paused short of it.")
    stopped_at = DateTimeField(read_only=True, allow_null=True)
    target_minutes = serializers.IntegerField(read_only=True)
    elapsed_seconds = serializers.SerializerMethodField(help_text="Business time counted so far.")
    paused_seconds = serializers.SerializerMethodField(help_text="Wall time the clock has been paused.")

    def _now(self) -> datetime:
        # One moment for the whole page (read once: setdefault would read the clock every time).
        now = self.context.get("now")
        if now is None:
            now = self.context["now"] = timezone.now()
        return now

    @extend_schema_field(serializers.ChoiceField(choices=SlaClock.State.choices))
    def get_state(self, clock: SlaClock) -> str:
        return clock.state_at(self._now())

    def get_at_risk(self, clock: SlaClock) -> bool:
        return clock.at_risk(self._now())

    def get_elapsed_seconds(self, clock: SlaClock) -> int:
        return int(clock.elapsed_at(self._now()).total_seconds())

    def get_paused_seconds(self, clock: SlaClock) -> int:
        return int(clock.paused_at(self._now()).total_seconds())


class IncidentSlaSerializer(Serializer):
    policy = serializers.CharField(source="sla_policy.name", read_only=True, allow_null=True, default=None)
    started_at = DateTimeField(
        source="sla_started_at", read_only=True, allow_null=True, help_text="When the poster wrote (clamped)."
    )
    ingest_lag_seconds = serializers.IntegerField(read_only=True, allow_null=True)
    clocks = SlaClockSerializer(source="clocks_listed", many=True, read_only=True)


class IncidentSerializer(ModelSerializer):
    serializer_field_mapping = FIELD_MAPPING
    impact = serializers.IntegerField(min_value=1, max_value=3, read_only=True, help_text=LEVEL_HELP)
    urgency = serializers.IntegerField(min_value=1, max_value=3, read_only=True, help_text=LEVEL_HELP)
    service: serializers.SlugRelatedField[Service] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    assignment_group = GroupRefSerializer(read_only=True, allow_null=True)
    assignee = UserRefSerializer(read_only=True, allow_null=True)
    # Shadows Field.parent only in the class body: the serializer metaclass moves declared fields out of it.
    parent: serializers.SlugRelatedField[Incident] = serializers.SlugRelatedField(  # type: ignore[assignment]
        slug_field="number", read_only=True, allow_null=True, help_text="The major incident this one belongs to."
    )
    merged_into: serializers.SlugRelatedField[Incident] = serializers.SlugRelatedField(
        slug_field="number", read_only=True, allow_null=True, help_text="The incident this duplicate was merged into."
    )
    # Annotated by the viewset's queryset, so a page costs no query per row.
    post_count = serializers.IntegerField(read_only=True)
    url = serializers.SerializerMethodField(help_text="The incident's page in the agent console.")
    links = serializers.SerializerMethodField()
    breach_due_at = DateTimeField(
        read_only=True, allow_null=True, help_text="The soonest due time among the running SLA clocks."
    )
    sla = IncidentSlaSerializer(source="*", read_only=True)
    itsm_links = ItsmLinkSerializer(
        source="itsm_links_listed", many=True, read_only=True, help_text="The incident's records in ITSM suites."
    )

    class Meta:
        model = Incident
        fields = (
            "number",
            "short_description",
            "description",
            "state",
            "impact",
            "urgency",
            "priority",
            "service",
            "category",
            "assignment_group",
            "assignee",
            "is_major",
            "parent",
            "merged_into",
            "opened_at",
            "first_response_at",
            "resolved_at",
            "closed_at",
            "response_due_at",
            "resolution_due_at",
            "breach_due_at",
            "sla",
            "post_count",
            "url",
            "links",
            "itsm_links",
            "version",
        )
        read_only_fields = fields
        extra_kwargs = {"version": {"help_text": "Moves on with every change; the ETag. Send it as If-Match."}}

    # A page of incidents resolves each URL once, for a stand-in number, and puts each
    # incident's number in its place: five reverse() calls per row cost more than the rest.
    _NUMBER = "number-0stand-in0"

    @cached_property
    def _url_templates(self) -> dict[str, str]:
        request = self.context.get("request")
        kwargs = {"number": self._NUMBER}
        try:
            page = django_reverse("socialitsm:incident", kwargs=kwargs)
        except NoReverseMatch:
            page = f"/incidents/{self._NUMBER}/"
        return {
            "url": _absolute(page, self.context),
            "self": reverse("socialitsm-api:incident-detail", kwargs=kwargs, request=request),
            "posts": reverse("socialitsm-api:incident-posts", kwargs=kwargs, request=request),
            "events": reverse("socialitsm-api:incident-events", kwargs=kwargs, request=request),
            "replies": reverse("socialitsm-api:incident-replies", kwargs=kwargs, request=request),
        }

    def _url(self, name: str, incident: Incident) -> str:
        # As reverse() quotes a path's part.
        return self._url_templates[name].replace(self._NUMBER, quote(incident.number, safe=RFC3986_SUBDELIMS + "~:@"))

    def get_url(self, incident: Incident) -> str:
        return self._url("url", incident)

    @extend_schema_field(IncidentLinksSerializer)
    def get_links(self, incident: Incident) -> dict[str, str]:
        return {name: self._url(name, incident) for name in ("self", "posts", "events", "replies")}


class IncidentUpdateSerializer(Serializer):
    """PATCH body: any subset of the fields an agent may change. Others are refused, not ignored."""

    state = serializers.ChoiceField(choices=Incident.State.choices, required=False)
    impact = serializers.IntegerField(min_value=1, max_value=3, required=False, help_text=LEVEL_HELP)
    urgency = serializers.IntegerField(min_value=1, max_value=3, required=False, help_text=LEVEL_HELP)
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=_agents(), allow_null=True, required=False, help_text="An agent's user id."
    )
    assignment_group = serializers.PrimaryKeyRelatedField(queryset=Group.objects.all(), allow_null=True, required=False)
    service = SlugLookupField(slug_field="slug", queryset=Service.objects.all(), allow_null=True, required=False)
    short_description = serializers.CharField(max_length=160, required=False)
    category = serializers.CharField(max_length=64, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if isinstance(self.initial_data, dict):
            unknown = sorted(set(self.initial_data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["This field cannot be changed."] for name in unknown})
        return attrs


class IncidentAssignSerializer(Serializer):
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=_agents(), allow_null=True, help_text="An agent's user id, or null to unassign."
    )
    group = serializers.PrimaryKeyRelatedField(
        queryset=Group.objects.all(), required=False, help_text="Also move the incident to this group."
    )


class IncidentEventSerializer(ModelSerializer):
    actor = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = IncidentEvent
        fields = ("id", "kind", "actor", "field", "old_value", "new_value", "message", "created_at")
        read_only_fields = fields


class AuthorSerializer(Serializer):
    handle = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    profile_url = serializers.CharField(read_only=True)


class PostDetailItemSerializer(Serializer):
    kind = serializers.ChoiceField(
        choices=DetailKind.choices,
        read_only=True,
        help_text="What the part is: a quoted post, a poll option, an image's description, an "
        "attachment, a link or the post a crosspost came from.",
    )
    text = serializers.CharField(read_only=True, help_text="Untrusted plain text, not HTML-escaped; may be empty.")
    url = serializers.CharField(
        read_only=True, help_text="The part's own address where it has one, as the network gave it; may be empty."
    )


class PostRevisionSerializer(ModelSerializer):
    text = serializers.CharField(
        read_only=True, help_text="The text before the edit: untrusted plain text, not HTML-escaped."
    )
    details = serializers.SerializerMethodField(help_text="The parts beside the text before the edit.")
    edited_at = DateTimeField(
        read_only=True, help_text="When the edit that replaced this version was made, per the network."
    )
    recorded_at = DateTimeField(read_only=True, help_text="When we learned of the edit.")

    class Meta:
        model = PostRevision
        fields = ("text", "details", "edited_at", "recorded_at")
        read_only_fields = fields

    @extend_schema_field(PostDetailItemSerializer(many=True))
    def get_details(self, revision: PostRevision) -> list[dict[str, str]]:
        return revision.detail_items()


class PostSerializer(ModelSerializer):
    serializer_field_mapping = FIELD_MAPPING
    channel: serializers.SlugRelatedField[Channel] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    author = AuthorSerializer(read_only=True)
    text = serializers.CharField(read_only=True, help_text="As posted: untrusted plain text, not HTML-escaped.")
    url = serializers.CharField(
        read_only=True, help_text="The post on its network, as the network gave it: may be empty, not always a URI."
    )
    detected_service: serializers.SlugRelatedField[Service] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    reasons = serializers.ListField(child=serializers.CharField(), read_only=True)
    incident: serializers.SlugRelatedField[Incident] = serializers.SlugRelatedField(
        slug_field="number", read_only=True, allow_null=True
    )
    # The serializer metaclass takes declared fields off the class, so this does not shadow Field.label.
    label = serializers.ChoiceField(  # type: ignore[assignment]
        choices=Post.Label.choices, allow_blank=True, read_only=True, help_text="An agent's verdict; empty until one."
    )
    labelled_by = UserRefSerializer(read_only=True, allow_null=True)
    edited_at = DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When the author last edited the post, per the network; null if never.",
    )
    revisions = PostRevisionSerializer(
        source="revisions_listed",
        many=True,
        read_only=True,
        help_text="The versions the post had before its edits, oldest first.",
    )
    details = serializers.SerializerMethodField(
        help_text="Parts of the post beside its text (quoted post, poll options, image descriptions, "
        "attachments), in the order the network gave them."
    )

    class Meta:
        model = Post
        fields = (
            "id",
            "network",
            "external_id",
            "channel",
            "author",
            "text",
            "details",
            "url",
            "posted_at",
            "posted_at_reported",
            "ingested_at",
            "in_reply_to",
            "conversation_id",
            "language",
            "is_direct",
            "is_complaint",
            "complaint_score",
            "sentiment",
            "detected_service",
            "urgency_hint",
            "reasons",
            "triage_state",
            "routing_error",
            "routing_failed_at",
            "incident",
            "label",
            "labelled_by",
            "labelled_at",
            "edited_at",
            "revisions",
        )
        read_only_fields = fields

    @extend_schema_field(PostDetailItemSerializer(many=True))
    def get_details(self, post: Post) -> list[dict[str, str]]:
        return post.detail_items()


class PostPromoteSerializer(Serializer):
    """Both optional: left out, the classifier's service guess and the priority its urgency gives."""

    service = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Service.objects.filter(active=True),
        required=False,
        allow_null=True,
        help_text="Service slug; null for none.",
    )
    priority = serializers.IntegerField(min_value=1, max_value=5, required=False)


class PostLabelSerializer(Serializer):
    # The serializer metaclass takes declared fields off the class, so this does not shadow Field.label.
    label = serializers.ChoiceField(  # type: ignore[assignment]
        choices=Post.Label.choices,
        help_text="The agent's verdict; the next `socialitsm_train` learns from it.",
    )


class ReplySerializer(ModelSerializer):
    incident: serializers.SlugRelatedField[Incident] = serializers.SlugRelatedField(slug_field="number", read_only=True)
    post: serializers.PrimaryKeyRelatedField[Post] = serializers.PrimaryKeyRelatedField(read_only=True)
    agent: serializers.SlugRelatedField[AbstractBaseUser] = serializers.SlugRelatedField(
        slug_field=User.USERNAME_FIELD, read_only=True, allow_null=True
    )
    next_attempt_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When a reply queued again after a transient failure is tried next; null otherwise.",
    )
    retry_until = serializers.SerializerMethodField(
        help_text="When a reply that keeps failing transiently is given up and marked failed; null otherwise."
    )

    class Meta:
        model = Reply
        fields = (
            "id",
            "incident",
            "post",
            "visibility",
            "text",
            "status",
            "attempts",
            "error",
            "next_attempt_at",
            "retry_until",
            "external_id",
            "created_at",
            "sent_at",
            "agent",
        )
        read_only_fields = fields

    def get_retry_until(self, reply: Reply) -> datetime | None:
        return reply.retry_until if reply.status == Reply.Status.QUEUED else None


class ReplyCreateSerializer(Serializer):
    text = serializers.CharField(help_text="A public reply gets the agent's signature appended, if they set one.")
    visibility = serializers.ChoiceField(choices=Reply.Visibility.choices)
    confirm_public = serializers.BooleanField(
        default=False,
        help_text="Send a public reply although it looks like it carries private data (an e-mail address, a phone, "
        'account or card number); without it such a reply is refused with 400 {"error": "private_data"}.',
    )
    post = serializers.PrimaryKeyRelatedField(
        queryset=Post.objects.all(),
        required=False,
        help_text=(
            "The post to answer; by default the latest post of the incident's author, else the incident's latest post."
        ),
    )


class ServiceSerializer(ModelSerializer):
    aliases = serializers.ListField(child=serializers.CharField(), read_only=True)
    owner_group = GroupRefSerializer(read_only=True, allow_null=True)
    spike_authors = serializers.IntegerField(
        min_value=2,
        max_value=10_000,
        allow_null=True,
        required=False,
        help_text="Distinct people complaining within the window that open a major incident; null: the default.",
    )
    spike_window_minutes = serializers.IntegerField(
        min_value=1,
        max_value=1440,
        allow_null=True,
        required=False,
        help_text="Minutes the spike is counted over; null: the default.",
    )
    spike_threshold = serializers.SerializerMethodField(help_text="The values in force (the service's or the default).")

    class Meta:
        model = Service
        fields = (
            "slug",
            "name",
            "aliases",
            "description",
            "owner_group",
            "spike_authors",
            "spike_window_minutes",
            "spike_threshold",
        )
        read_only_fields = ("slug", "name", "aliases", "description", "owner_group")

    @extend_schema_field(
        {
            "type": "object",
            "properties": {"authors": {"type": "integer"}, "window_minutes": {"type": "integer"}},
            "required": ["authors", "window_minutes"],
        }
    )
    def get_spike_threshold(self, service: Service) -> dict[str, int]:
        authors, window = spike_thresholds(service)
        return {"authors": authors, "window_minutes": window}


class MajorOpenSerializer(Serializer):
    incidents = serializers.ListField(
        child=serializers.CharField(max_length=32), min_length=1, max_length=1000, help_text="Numbers of the children."
    )
    short_description = serializers.CharField(max_length=160, required=False, allow_blank=True, default="")
    service = SlugLookupField(
        slug_field="slug",
        queryset=Service.objects.all(),
        allow_null=True,
        required=False,
        help_text="Default: the service the incidents share.",
    )
    impact = serializers.IntegerField(min_value=1, max_value=3, default=2, help_text=LEVEL_HELP)
    urgency = serializers.IntegerField(min_value=1, max_value=3, default=2, help_text=LEVEL_HELP)


class MajorLinkSerializer(Serializer):
    incidents = serializers.ListField(
        child=serializers.CharField(max_length=32), min_length=1, max_length=1000, help_text="Numbers of the children."
    )


class IncidentMergeSerializer(Serializer):
    into = serializers.CharField(max_length=32, help_text="The number of the incident that stays.")
    other_author = serializers.BooleanField(
        default=False, help_text="Merge although the posters differ (team leads only)."
    )


class AffectedPosterSerializer(Serializer):
    incident = serializers.CharField(source="number", help_text="The poster's own incident.")
    state = serializers.CharField()
    handle = serializers.SerializerMethodField()
    network = serializers.CharField(source="first_post_network", allow_null=True)
    post_text = serializers.CharField(source="first_post_text", allow_null=True, help_text="Their first post.")
    post_url = serializers.CharField(source="first_post_url", allow_null=True)
    posted_at = serializers.DateTimeField(source="first_posted_at", allow_null=True)
    answered = serializers.BooleanField(help_text="Whether a reply to them was sent on their incident.")

    def get_handle(self, incident: Incident) -> str:
        return str(incident.author) if incident.author else ""


class GrowthPointSerializer(Serializer):
    start = serializers.DateTimeField()
    posts = serializers.IntegerField()
    total = serializers.IntegerField(help_text="Posts so far.")


class SpikeGrowthSerializer(Serializer):
    first_post_at = serializers.DateTimeField(allow_null=True)
    bucket_minutes = serializers.IntegerField(help_text="Minutes per point (1 unless the spike lasted long).")
    peak = serializers.IntegerField(help_text="Most posts in one point.")
    total = serializers.IntegerField()
    points = GrowthPointSerializer(many=True)


class IngestResultSerializer(Serializer):
    received = serializers.IntegerField(help_text="Posts in the request.")
    created = serializers.IntegerField(help_text="Posts stored now.")
    duplicates = serializers.IntegerField(
        help_text="Posts already stored (same channel and id, no later edited_at), left as they were."
    )
    rejected = serializers.IntegerField(
        required=False, help_text="Present when some posts could not be stored: set aside for an admin, not retried."
    )
    edited = serializers.IntegerField(
        required=False,
        help_text="Present when stored posts came again with a later edited_at: they took the new text.",
    )


class IngestErrorSerializer(Serializer):
    error = serializers.ChoiceField(
        choices=["invalid_signature", "too_large", "invalid_json", "invalid_post", "throttled"]
    )
    detail = serializers.CharField(required=False)
    # Shadows Serializer.fields only in the class body: the serializer metaclass moves declared fields out of it.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text='For invalid_post: field path -> messages, e.g. {"posts[3].created_at": ["..."]}.',
    )


class SlaReportQuerySerializer(Serializer):
    # "from" is a keyword: declared under another name and renamed below.
    from_ = serializers.DateField(required=False, help_text="First day, default a week before `to`.")
    to = serializers.DateField(required=False, help_text="Last day (included), default today.")
    group = serializers.PrimaryKeyRelatedField(
        queryset=Group.objects.all(), required=False, help_text="Assignment group id (a team, not a role group)."
    )
    network = serializers.ChoiceField(choices=Network.choices, required=False)
    calendar = serializers.PrimaryKeyRelatedField(
        queryset=SlaCalendar.objects.all(),
        required=False,
        help_text="SLA calendar id: days start at midnight in its time zone (default UTC).",
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class SlaReportPeriodSerializer(Serializer):
    # "from" is a keyword: declared under another name and renamed below.
    from_ = serializers.DateField()
    to = serializers.DateField()
    group = serializers.CharField(allow_null=True)
    network = serializers.CharField(allow_null=True)
    calendar = serializers.CharField(allow_null=True)
    timezone = serializers.CharField(help_text="The time zone days are counted in.")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class SlaReportFlowSerializer(Serializer):
    in_ = serializers.IntegerField(help_text="Opened in the period.")
    out = serializers.IntegerField(help_text="Resolved in the period.")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["in"] = fields.pop("in_")
        return fields


class SlaReportTargetSerializer(Serializer):
    target = serializers.ChoiceField(choices=SlaClock.Target.choices)
    priority = serializers.IntegerField()
    met = serializers.IntegerField()
    breached = serializers.IntegerField(help_text="Including clocks still running past their due time.")
    open = serializers.IntegerField(help_text="Running or paused, not yet due.")
    canceled = serializers.IntegerField(help_text="Stopped before due without being needed.")
    met_percent = serializers.FloatField(allow_null=True, help_text="met / (met + breached), null when neither.")


class SlaReportDurationsSerializer(Serializer):
    count = serializers.IntegerField()
    median_minutes = serializers.FloatField(allow_null=True)
    p90_minutes = serializers.FloatField(allow_null=True, help_text="Nearest-rank 90th percentile.")


class SlaReportAgentSerializer(Serializer):
    agent = serializers.CharField()
    breached = serializers.IntegerField()


class SlaReportGroupSerializer(Serializer):
    group = serializers.CharField()
    breached = serializers.IntegerField()


class SlaReportAtRiskSerializer(Serializer):
    number = serializers.CharField()
    short_description = serializers.CharField()
    priority = serializers.IntegerField()
    target = serializers.ChoiceField(choices=SlaClock.Target.choices)
    due_at = serializers.DateTimeField()
    minutes_left = serializers.IntegerField()
    assignee = serializers.CharField(allow_null=True)
    group = serializers.CharField(allow_null=True)


class SlaReportSentimentSerializer(Serializer):
    date = serializers.DateField(help_text="Day in the report's time zone.")
    network = serializers.ChoiceField(choices=Network.choices)
    negative = serializers.IntegerField()
    positive = serializers.IntegerField()
    ratio = serializers.FloatField(allow_null=True, help_text="negative / positive, null without positive posts.")
    only_negative = serializers.BooleanField(help_text="Negative posts and no positive one: the ratio is infinite.")


class SlaReportBreakdownSerializer(Serializer):
    incidents = serializers.IntegerField(help_text="Incidents opened in the period.")
    met = serializers.IntegerField()
    breached = serializers.IntegerField()
    met_percent = serializers.FloatField(allow_null=True)
    median_first_response_minutes = serializers.FloatField(allow_null=True)


class SlaReportServiceSerializer(SlaReportBreakdownSerializer):
    service = serializers.CharField()


class SlaReportAgentBreakdownSerializer(SlaReportBreakdownSerializer):
    agent = serializers.CharField()


class SlaReportIncidentsQuerySerializer(SlaReportQuerySerializer):
    """The report's scope and which figure to list the incidents of."""

    flow = serializers.ChoiceField(choices=["in", "out"], required=False, help_text="Opened or resolved in the period.")
    target = serializers.ChoiceField(choices=SlaClock.Target.choices, required=False)
    outcome = serializers.ChoiceField(choices=["met", "breached", "open", "canceled", "decided"], required=False)
    priority = serializers.IntegerField(min_value=1, max_value=5, required=False)
    agent = serializers.CharField(required=False, max_length=150, help_text='Username, or "(unassigned)".')
    team = serializers.CharField(required=False, max_length=150, help_text='Group name, or "(no group)".')
    service = serializers.CharField(required=False, max_length=100, help_text='Service name, or "(no service)".')


class SlaReportMajorSerializer(Serializer):
    number = serializers.CharField()
    short_description = serializers.CharField()
    service = serializers.CharField(allow_null=True, help_text="The service's name; null when it has none.")
    state = serializers.ChoiceField(choices=Incident.State.choices)
    opened_at = serializers.DateTimeField()
    children = serializers.IntegerField(help_text="Incidents linked to it, one per affected poster as a rule.")
    first_post_at = serializers.DateTimeField(
        allow_null=True, help_text="The earliest post of the major incident or its children; null without posts."
    )
    minutes_to_major = serializers.FloatField(
        allow_null=True, help_text="From the first post to the major incident's opening; null without posts."
    )
    minutes_to_first_broadcast = serializers.FloatField(
        allow_null=True,
        help_text="From the first post (else the opening) to the first confirmed broadcast; null before one.",
    )
    posters = serializers.IntegerField(help_text="Affected posters: authors of its and its children's posts.")
    answered = serializers.IntegerField(help_text="Posters with a reply sent on their incident.")
    unanswered = serializers.IntegerField(help_text="Posters without one.")


class SlaReportSerializer(Serializer):
    """The report's shape, for the API docs (the view returns the selector's plain dict)."""

    period = SlaReportPeriodSerializer()
    incidents = SlaReportFlowSerializer()
    targets = SlaReportTargetSerializer(many=True)
    first_response = SlaReportDurationsSerializer(help_text="Business time to the first reply sent.")
    ingest_lag = SlaReportDurationsSerializer(help_text="From the first post to its arrival here.")
    breaches_by_agent = SlaReportAgentSerializer(many=True)
    breaches_by_group = SlaReportGroupSerializer(many=True)
    by_service = SlaReportServiceSerializer(many=True)
    by_agent = SlaReportAgentBreakdownSerializer(many=True)
    at_risk = SlaReportAtRiskSerializer(many=True)
    sentiment = SlaReportSentimentSerializer(many=True)
    major_incidents = SlaReportMajorSerializer(many=True, help_text="Major incidents opened in the period.")


class SlaCalendarSerializer(ModelSerializer):
    class Meta:
        model = SlaCalendar
        fields = ("id", "name", "timezone", "hours", "holiday_country", "holiday_subdivision", "closed_dates")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        calendar = SlaCalendar(**{**self._current(), **attrs})
        try:
            calendar.as_calendar()
        except sla_maths.CalendarError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return attrs

    def _current(self) -> dict[str, Any]:
        if self.instance is None:
            return {}
        return {name: getattr(self.instance, name) for name in self.Meta.fields if name != "id"}


class SlaPolicySerializer(ModelSerializer):
    service: serializers.SlugRelatedField[Service] = SlugLookupField(
        slug_field="slug", queryset=Service.objects.all(), allow_null=True, required=False
    )
    network = serializers.ChoiceField(choices=Network.choices, allow_blank=True, required=False)
    pause_states = serializers.ListField(
        child=serializers.ChoiceField(choices=[(s.value, s.label) for s in Incident.OPEN_STATES]), required=False
    )

    class Meta:
        model = SlaPolicy
        fields = (
            "id",
            "name",
            "position",
            "active",
            "priority",
            "service",
            "network",
            "assignment_group",
            "first_response_minutes",
            "next_response_minutes",
            "resolution_minutes",
            "calendar",
            "pause_states",
        )


class ReplyLimitSerializer(Serializer):
    max_length = serializers.IntegerField(help_text="Longest reply the network accepts, in `unit`.")
    unit = serializers.CharField(help_text="characters, graphemes or weighted characters (X).")
    public = serializers.BooleanField(help_text="Public replies are possible on this channel.")
    direct = serializers.BooleanField(help_text="Direct messages are possible on this channel.")


class ChannelSerializer(ModelSerializer):
    """A channel's identity and health; credentials and connector options are never shown."""

    quiet = serializers.SerializerMethodField(
        help_text="A busy channel that has heard nothing for far longer than usual: check its stream or access."
    )
    recent_posts = serializers.IntegerField(read_only=True, help_text="Posts stored within the quiet window.")
    rejected_posts = serializers.IntegerField(
        read_only=True, help_text="Posts set aside in the last 24 hours because they could not be stored."
    )
    reply_limit = serializers.SerializerMethodField()
    base_url = serializers.CharField(read_only=True, help_text="The network's server; empty where there is one only.")

    class Meta:
        model = Channel
        fields = (
            "slug",
            "name",
            "network",
            "handle",
            "base_url",
            "listen_mode",
            "enabled",
            "health",
            "quiet",
            "recent_posts",
            "rejected_posts",
            "last_event_at",
            "last_polled_at",
            "last_error",
            "last_error_at",
            "rate_limited_until",
            "quota_remaining",
            "quota_limit",
            "quota_reset_at",
            "requests_made",
            "cost_used",
            "reply_limit",
            "retention_days",
        )
        read_only_fields = fields

    def get_quiet(self, channel: Channel) -> bool:
        return channel.is_quiet(recent_posts=getattr(channel, "recent_posts", 0), now=self.context["now"])

    @extend_schema_field(ReplyLimitSerializer(allow_null=True))
    def get_reply_limit(self, channel: Channel) -> dict[str, Any] | None:
        try:
            limits = connector_for(channel).limits()
        except (LookupError, ImportError):
            return None
        return {
            "max_length": limits.max_reply_chars,
            "unit": limits.unit,
            "public": limits.supports_public,
            "direct": limits.supports_direct,
        }


# -- broadcasts and status posts -------------------------------------------------------------------


class BroadcastCreateSerializer(Serializer):
    text = serializers.CharField(
        trim_whitespace=True,
        help_text="The message; {name}, {handle}, {service} and {incident} are filled per poster, "
        "{{ and }} are literal braces.",
    )
    kind = serializers.ChoiceField(choices=Broadcast.Kind.choices, default=Broadcast.Kind.UPDATE)
    visibility = serializers.ChoiceField(
        choices=Broadcast.Visibility.choices,
        default=Broadcast.Visibility.PUBLIC,
        help_text="public: a reply to each poster's latest post, a direct message where the network refuses "
        "that; direct: direct messages only.",
    )


class BroadcastUpdateSerializer(Serializer):
    text = serializers.CharField(required=False)
    visibility = serializers.ChoiceField(choices=Broadcast.Visibility.choices, required=False)


class BroadcastConfirmSerializer(Serializer):
    exclude = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        default=list,
        max_length=10_000,
        help_text="Author ids (from the preview) to leave out.",
    )


class BroadcastRecipientSerializer(Serializer):
    """One affected poster in a draft's preview."""

    author = serializers.IntegerField(source="author.pk")
    handle = serializers.CharField(source="author.handle")
    name = serializers.CharField(source="author.name")
    incident = serializers.CharField(source="incident.number", help_text="The poster's own incident.")
    post = serializers.IntegerField(source="post.pk", help_text="The post the message answers.")
    channel = serializers.CharField(source="channel.slug")
    network = serializers.CharField(source="channel.network")
    visibility = serializers.CharField(help_text='"public", "direct", or "" when the poster is left out.')
    text = serializers.CharField(help_text="The message as this poster gets it.")
    length = serializers.IntegerField(help_text="Its length in the network's unit.")
    limit = serializers.IntegerField()
    unit = serializers.CharField()
    sendable = serializers.BooleanField()
    reason_code = serializers.CharField(help_text='"", "already_had", "no_reply", "too_long" or "closed".')
    reason = serializers.CharField(help_text="Why the poster is left out, for a person to read.")


class BroadcastReplySerializer(ModelSerializer):
    """One poster's copy of a confirmed broadcast, as the reply that carries it stands."""

    incident: serializers.SlugRelatedField[Incident] = serializers.SlugRelatedField(slug_field="number", read_only=True)
    author = serializers.IntegerField(source="post.author_id", read_only=True)
    handle = serializers.CharField(source="post.author.handle", read_only=True)
    channel: serializers.SlugRelatedField[Channel] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    scheduled_at = serializers.DateTimeField(
        source="next_attempt_at",
        read_only=True,
        allow_null=True,
        help_text="When a queued reply goes out (its paced slot, or its next attempt); null otherwise.",
    )

    class Meta:
        model = Reply
        fields = (
            "id",
            "incident",
            "author",
            "handle",
            "channel",
            "post",
            "visibility",
            "text",
            "status",
            "attempts",
            "error",
            "scheduled_at",
            "sent_at",
            "external_id",
        )
        read_only_fields = fields


class BroadcastSerializer(ModelSerializer):
    incident: serializers.SlugRelatedField[Incident] = serializers.SlugRelatedField(slug_field="number", read_only=True)
    created_by: serializers.SlugRelatedField[AbstractBaseUser] = serializers.SlugRelatedField(
        slug_field=User.USERNAME_FIELD, read_only=True, allow_null=True
    )
    confirmed_by: serializers.SlugRelatedField[AbstractBaseUser] = serializers.SlugRelatedField(
        slug_field=User.USERNAME_FIELD, read_only=True, allow_null=True
    )
    skipped_count = serializers.IntegerField(read_only=True, help_text="Posters left out at confirmation.")
    sent = serializers.IntegerField(read_only=True, help_text="Replies the networks took.")
    pending = serializers.IntegerField(read_only=True, help_text="Replies queued or being sent.")
    failed = serializers.IntegerField(read_only=True)
    canceled = serializers.IntegerField(read_only=True)

    class Meta:
        model = Broadcast
        fields: tuple[str, ...] = (
            "id",
            "incident",
            "kind",
            "text",
            "visibility",
            "status",
            "created_by",
            "created_at",
            "confirmed_by",
            "confirmed_at",
            "excluded",
            "skipped",
            "recipient_count",
            "skipped_count",
            "sent",
            "pending",
            "failed",
            "canceled",
        )
        read_only_fields: tuple[str, ...] = fields


class BroadcastListSerializer(BroadcastSerializer):
    """A broadcast with, once confirmed, each poster's reply and its status (`replies`)."""

    replies = serializers.SerializerMethodField()

    class Meta(BroadcastSerializer.Meta):
        fields = (*BroadcastSerializer.Meta.fields, "replies")
        read_only_fields = fields

    @extend_schema_field(BroadcastReplySerializer(many=True))
    def get_replies(self, broadcast: Broadcast) -> Any:
        if broadcast.status != Broadcast.Status.CONFIRMED:
            return []
        return BroadcastReplySerializer(selectors.broadcast_replies(broadcast), many=True).data


class BroadcastDetailSerializer(BroadcastListSerializer):
    """A broadcast with, while it is a draft, its preview (`recipients`: each affected poster
    with the text they would get, or why they are left out), and once confirmed, `replies`."""

    recipients = serializers.SerializerMethodField()

    class Meta(BroadcastListSerializer.Meta):
        fields = (*BroadcastListSerializer.Meta.fields, "recipients")
        read_only_fields = fields

    @extend_schema_field(BroadcastRecipientSerializer(many=True))
    def get_recipients(self, broadcast: Broadcast) -> Any:
        preview = self.context.get("preview")
        if preview is None:
            return []
        return BroadcastRecipientSerializer(preview.recipients, many=True).data


class StatusPostCreateSerializer(Serializer):
    channel = SlugLookupField(slug_field="slug", queryset=Channel.objects.all())
    text = serializers.CharField()


class StatusPostSerializer(ModelSerializer):
    incident: serializers.SlugRelatedField[Incident] = serializers.SlugRelatedField(slug_field="number", read_only=True)
    channel: serializers.SlugRelatedField[Channel] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    agent: serializers.SlugRelatedField[AbstractBaseUser] = serializers.SlugRelatedField(
        slug_field=User.USERNAME_FIELD, read_only=True, allow_null=True
    )

    class Meta:
        model = StatusPost
        fields = (
            "id",
            "incident",
            "channel",
            "text",
            "status",
            "attempts",
            "error",
            "retry_after",
            "external_id",
            "url",
            "created_at",
            "sent_at",
            "agent",
        )
        read_only_fields = fields


class ChannelRetentionSerializer(ModelSerializer):
    """PATCH body of a channel: what a lead may change from the API."""

    retention_days = serializers.IntegerField(
        min_value=1,
        max_value=36_500,
        allow_null=True,
        help_text="Days a post is kept in full (e.g. 400); older ones are removed or anonymised. null keeps them.",
    )

    class Meta:
        model = Channel
        fields = ("retention_days",)


class AuthorErasureSerializer(Serializer):
    """The record of an erasure: which author, who asked, when; never what was removed."""

    author = serializers.IntegerField(source="author_id_erased", read_only=True)
    author_ref = serializers.CharField(read_only=True, help_text="Opaque reference to the person.")
    erased_by = serializers.CharField(source="actor.get_username", read_only=True, allow_null=True)
    erased_at = serializers.DateTimeField(source="created_at", read_only=True)


class IncidentBulkSerializer(Serializer):
    """One change for many incidents; which value is needed depends on `action`."""

    incidents = serializers.ListField(
        child=serializers.CharField(max_length=32), min_length=1, max_length=200, help_text="Incident numbers."
    )
    action = serializers.ChoiceField(choices=["assign", "state", "priority", "link"])
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=_agents(), allow_null=True, required=False, help_text="assign: a user id, or null to unassign."
    )
    group = serializers.PrimaryKeyRelatedField(
        queryset=Group.objects.all(), required=False, help_text="assign: also move the incidents to this group."
    )
    state = serializers.ChoiceField(choices=Incident.State.choices, required=False, help_text="state: the new state.")
    priority = serializers.ChoiceField(
        choices=Incident.Priority.choices, required=False, help_text="priority: 1..5, set through impact and urgency."
    )
    major = serializers.CharField(max_length=32, required=False, help_text="link: the major incident's number.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        needed = {"assign": "assignee", "state": "state", "priority": "priority", "link": "major"}[attrs["action"]]
        if needed not in attrs:
            raise serializers.ValidationError({needed: [f"Required for {attrs['action']}."]})
        return attrs


class BulkOutcomeSerializer(Serializer):
    number = serializers.CharField(source="ref")
    ok = serializers.BooleanField()
    error = serializers.CharField(allow_blank=True)


class BulkResultSerializer(Serializer):
    changed = serializers.SerializerMethodField()
    failed = serializers.SerializerMethodField()
    results = BulkOutcomeSerializer(source="outcomes", many=True)

    def get_changed(self, result) -> int:
        return len(result.done)

    def get_failed(self, result) -> int:
        return len(result.failed)


class SavedViewSerializer(ModelSerializer):
    owner = serializers.CharField(source="user.get_username", read_only=True)
    mine = serializers.SerializerMethodField()
    query = serializers.DictField(
        child=serializers.JSONField(),
        help_text='The queue filters, e.g. {"view": "mine", "search": "vpn", "priority": "2"}; keys: '
        "view, q, search, sort, mine, unassigned, service, priority, state.",
    )

    class Meta:
        model = SavedView
        fields = ("id", "name", "query", "shared", "owner", "mine", "created_at")
        read_only_fields = ("id", "owner", "mine", "created_at")

    def get_mine(self, view: SavedView) -> bool:
        request = self.context.get("request")
        return bool(request and view.user_id == request.user.pk)


class IncidentNoteSerializer(ModelSerializer):
    author = UserRefSerializer(read_only=True, allow_null=True)
    text = serializers.CharField(help_text="Plain text; agents only, never sent to a network.")

    class Meta:
        model = IncidentNote
        fields = ("id", "author", "text", "created_at")
        read_only_fields = ("id", "author", "created_at")


class ReplyTemplateSerializer(ModelSerializer):
    """A canned reply. Saving goes through the service, which checks the variables."""

    text = serializers.CharField(
        help_text="{name}, {handle}, {service}, {incident} and {signature} are filled in; {{ and }} are braces; "
        "any other variable is refused."
    )
    created_by = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = ReplyTemplate
        fields = ("id", "name", "text", "created_by", "updated_at")
        read_only_fields = ("id", "created_by", "updated_at")
        # The name's uniqueness (case-insensitive) is the service's to check.
        extra_kwargs: dict[str, dict[str, Any]] = {"name": {"validators": []}}


class PrivateDataErrorSerializer(Serializer):
    error = serializers.CharField(help_text='"private_data"')
    detail = serializers.CharField()
    findings = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField()),
        help_text='What looks private: [{"kind": "email" | "phone" | "iban" | "card" | "number", "text": "..."}].',
    )
