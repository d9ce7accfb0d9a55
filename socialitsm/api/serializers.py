"""API shapes: output serializers render rows, input serializers validate commands. No side effects."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group
from django.db.models import Q, QuerySet
from django.urls import NoReverseMatch
from django.urls import reverse as django_reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from socialitsm.models import Channel, Incident, IncidentEvent, Post, Reply, Service
from socialitsm.roles import AGENT_GROUP, LEAD_GROUP

User = get_user_model()


def _agents() -> QuerySet:
    return (
        User.objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__name__in=(AGENT_GROUP, LEAD_GROUP)))
        .distinct()
    )


def _absolute(path: str, context: dict[str, Any]) -> str:
    request = context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)


class GroupRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class IncidentLinksSerializer(serializers.Serializer):
    self = serializers.URLField(read_only=True)
    posts = serializers.URLField(read_only=True)
    events = serializers.URLField(read_only=True)
    replies = serializers.URLField(read_only=True)


# Impact and urgency share one scale; plain bounded integers keep the schema from naming one enum twice.
LEVEL_HELP = "1 high, 2 medium, 3 low."


class IncidentSerializer(serializers.ModelSerializer):
    impact = serializers.IntegerField(min_value=1, max_value=3, read_only=True, help_text=LEVEL_HELP)
    urgency = serializers.IntegerField(min_value=1, max_value=3, read_only=True, help_text=LEVEL_HELP)
    service: serializers.SlugRelatedField[Service] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    assignment_group = GroupRefSerializer(read_only=True, allow_null=True)
    assignee = UserRefSerializer(read_only=True, allow_null=True)
    # Shadows Field.parent only in the class body: the serializer metaclass moves declared fields out of it.
    parent: serializers.SlugRelatedField[Incident] = serializers.SlugRelatedField(  # type: ignore[assignment]
        slug_field="number", read_only=True, allow_null=True
    )
    # Annotated by the viewset's queryset, so a page costs no query per row.
    post_count = serializers.IntegerField(read_only=True)
    url = serializers.SerializerMethodField(help_text="The incident's page in the agent console.")
    links = serializers.SerializerMethodField()

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
            "parent",
            "opened_at",
            "first_response_at",
            "resolved_at",
            "closed_at",
            "response_due_at",
            "resolution_due_at",
            "post_count",
            "url",
            "links",
        )
        read_only_fields = fields

    def get_url(self, incident: Incident) -> str:
        try:
            path = django_reverse("socialitsm:incident", kwargs={"number": incident.number})
        except NoReverseMatch:
            path = f"/incidents/{incident.number}/"
        return _absolute(path, self.context)

    @extend_schema_field(IncidentLinksSerializer)
    def get_links(self, incident: Incident) -> dict[str, str]:
        request = self.context.get("request")
        kwargs = {"number": incident.number}
        return {
            "self": reverse("socialitsm-api:incident-detail", kwargs=kwargs, request=request),
            "posts": reverse("socialitsm-api:incident-posts", kwargs=kwargs, request=request),
            "events": reverse("socialitsm-api:incident-events", kwargs=kwargs, request=request),
            "replies": reverse("socialitsm-api:incident-replies", kwargs=kwargs, request=request),
        }


class IncidentUpdateSerializer(serializers.Serializer):
    """PATCH body: any subset of the fields an agent may change. Others are refused, not ignored."""

    state = serializers.ChoiceField(choices=Incident.State.choices, required=False)
    impact = serializers.IntegerField(min_value=1, max_value=3, required=False, help_text=LEVEL_HELP)
    urgency = serializers.IntegerField(min_value=1, max_value=3, required=False, help_text=LEVEL_HELP)
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=_agents(), allow_null=True, required=False, help_text="An agent's user id."
    )
    assignment_group = serializers.PrimaryKeyRelatedField(queryset=Group.objects.all(), allow_null=True, required=False)
    service = serializers.SlugRelatedField(
        slug_field="slug", queryset=Service.objects.all(), allow_null=True, required=False
    )
    short_description = serializers.CharField(max_length=160, required=False)
    category = serializers.CharField(max_length=64, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if isinstance(self.initial_data, dict):
            unknown = sorted(set(self.initial_data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["This field cannot be changed."] for name in unknown})
        return attrs


class IncidentAssignSerializer(serializers.Serializer):
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=_agents(), allow_null=True, help_text="An agent's user id, or null to unassign."
    )
    group = serializers.PrimaryKeyRelatedField(
        queryset=Group.objects.all(), required=False, help_text="Also move the incident to this group."
    )


class IncidentEventSerializer(serializers.ModelSerializer):
    actor = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = IncidentEvent
        fields = ("id", "kind", "actor", "field", "old_value", "new_value", "message", "created_at")
        read_only_fields = fields


class AuthorSerializer(serializers.Serializer):
    handle = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    profile_url = serializers.CharField(read_only=True)


class PostSerializer(serializers.ModelSerializer):
    channel: serializers.SlugRelatedField[Channel] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    author = AuthorSerializer(read_only=True)
    text = serializers.CharField(read_only=True, help_text="As posted: untrusted plain text, not HTML-escaped.")
    detected_service: serializers.SlugRelatedField[Service] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    reasons = serializers.ListField(child=serializers.CharField(), read_only=True)
    incident: serializers.SlugRelatedField[Incident] = serializers.SlugRelatedField(
        slug_field="number", read_only=True, allow_null=True
    )
    labelled_by = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Post
        fields = (
            "id",
            "network",
            "external_id",
            "channel",
            "author",
            "text",
            "url",
            "posted_at",
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
            "incident",
            "label",
            "labelled_by",
            "labelled_at",
        )
        read_only_fields = fields


class PostLabelSerializer(serializers.Serializer):
    # The serializer metaclass takes declared fields off the class, so this does not shadow Field.label.
    label = serializers.ChoiceField(  # type: ignore[assignment]
        choices=Post.Label.choices,
        help_text="The agent's verdict; the next `socialitsm_train` learns from it.",
    )


class ReplySerializer(serializers.ModelSerializer):
    incident: serializers.SlugRelatedField[Incident] = serializers.SlugRelatedField(slug_field="number", read_only=True)
    post: serializers.PrimaryKeyRelatedField[Post] = serializers.PrimaryKeyRelatedField(read_only=True)
    agent: serializers.SlugRelatedField[AbstractBaseUser] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
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
            "external_id",
            "created_at",
            "sent_at",
            "agent",
        )
        read_only_fields = fields


class ReplyCreateSerializer(serializers.Serializer):
    text = serializers.CharField()
    visibility = serializers.ChoiceField(choices=Reply.Visibility.choices)
    post = serializers.PrimaryKeyRelatedField(
        queryset=Post.objects.all(),
        required=False,
        help_text=(
            "The post to answer; by default the latest post of the incident's author, else the incident's latest post."
        ),
    )


class ServiceSerializer(serializers.ModelSerializer):
    aliases = serializers.ListField(child=serializers.CharField(), read_only=True)
    owner_group = GroupRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Service
        fields = ("slug", "name", "aliases", "owner_group")
        read_only_fields = fields


class IngestResultSerializer(serializers.Serializer):
    received = serializers.IntegerField(help_text="Posts in the request.")
    created = serializers.IntegerField(help_text="Posts stored now.")
    duplicates = serializers.IntegerField(help_text="Posts already stored (same network and id), left as they were.")


class IngestErrorSerializer(serializers.Serializer):
    error = serializers.ChoiceField(choices=["invalid_signature", "too_large", "invalid_json", "invalid_post"])
    detail = serializers.CharField(required=False)
    # Shadows Serializer.fields only in the class body: the serializer metaclass moves declared fields out of it.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text='For invalid_post: field path -> messages, e.g. {"posts[3].created_at": ["..."]}.',
    )
