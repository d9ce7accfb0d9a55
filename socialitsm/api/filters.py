"""Query-string filters for the API lists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib.auth.models import Group
from django.db.models import F, Q, QuerySet
from django_filters import rest_framework as filters
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter

from socialitsm import datetimes
from socialitsm.models import Incident, IncidentQuerySet, Network, Post, Reply


class InstantFormField(forms.Field):
    """ISO 8601, read in the current time zone without an offset, within the filters' window
    (1970 to 9999-12-30) and with an offset PostgreSQL accepts; else a 400 naming the filter."""

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        try:
            return datetimes.parse_instant(
                value,
                earliest=datetimes.FILTERS_EARLIEST,
                latest=datetimes.FILTERS_LATEST,
                require_offset=False,
            )
        except datetimes.InstantError as exc:
            raise forms.ValidationError(str(exc), code=exc.code) from exc


class InstantFilter(filters.IsoDateTimeFilter):
    field_class = InstantFormField


class IncidentFilter(filters.FilterSet):
    state = filters.MultipleChoiceFilter(
        choices=Incident.State.choices, help_text="Repeat to match any of several states."
    )
    open = filters.BooleanFilter(
        method="filter_open", help_text="true: new, in progress or on hold; false: the others."
    )
    priority = filters.TypedMultipleChoiceFilter(choices=Incident.Priority.choices, coerce=int)
    service = filters.CharFilter(field_name="service__slug", help_text="Service slug, e.g. vpn.")
    assignee = filters.CharFilter(method="filter_assignee", help_text='"me", "unassigned" or a user id.')
    assignment_group = filters.ModelChoiceFilter(queryset=Group.objects.all(), help_text="Group id.")
    opened_after = InstantFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = InstantFilter(field_name="opened_at", lookup_expr="lt")
    q = filters.CharFilter(method="filter_q", help_text="Words in the number or the short description.")

    class Meta:
        model = Incident
        fields: tuple[str, ...] = ()

    def filter_open(self, queryset: IncidentQuerySet, name: str, value: bool) -> QuerySet[Incident]:
        if value:
            return queryset.open()
        return queryset.exclude(state__in=Incident.OPEN_STATES)

    def filter_assignee(self, queryset: QuerySet[Incident], name: str, value: str) -> QuerySet[Incident]:
        value = value.strip()
        if value == "me":
            return queryset.filter(assignee_id=self.request.user.pk if self.request else None)
        if value == "unassigned":
            return queryset.filter(assignee__isnull=True)
        if not value.isdigit():
            raise ValidationError({"assignee": ['Expected "me", "unassigned" or a user id.']})
        return queryset.filter(assignee_id=int(value))

    def filter_q(self, queryset: QuerySet[Incident], name: str, value: str) -> QuerySet[Incident]:
        for word in value.split():
            queryset = queryset.filter(Q(number__icontains=word) | Q(short_description__icontains=word))
        return queryset


class PostFilter(filters.FilterSet):
    triage_state = filters.MultipleChoiceFilter(choices=Post.Triage.choices)
    network = filters.ChoiceFilter(choices=Network.choices)
    channel = filters.CharFilter(field_name="channel__slug", help_text="Channel slug.")
    is_complaint = filters.BooleanFilter()
    service = filters.CharFilter(field_name="detected_service__slug", help_text="Detected service slug, e.g. vpn.")
    incident = filters.CharFilter(field_name="incident__number", help_text="Incident number, e.g. INC0001001.")
    label = filters.ChoiceFilter(choices=Post.Label.choices, help_text="Agents' label, for reviewing feedback.")

    class Meta:
        model = Post
        fields: tuple[str, ...] = ()


class ReplyFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=Reply.Status.choices)
    visibility = filters.ChoiceFilter(choices=Reply.Visibility.choices)
    incident = filters.CharFilter(field_name="incident__number", help_text="Incident number, e.g. INC0001001.")

    class Meta:
        model = Reply
        fields: tuple[str, ...] = ()


class NullsLastOrderingFilter(OrderingFilter):
    """?ordering= with empty values last in either direction, the same on SQLite and PostgreSQL
    (e.g. incidents without a running SLA clock after all the others when sorting by time to breach)."""

    def filter_queryset(self, request, queryset, view):
        ordering = self.get_ordering(request, queryset, view)
        if not ordering:
            return queryset
        return queryset.order_by(
            *(
                F(term[1:]).desc(nulls_last=True) if term.startswith("-") else F(term).asc(nulls_last=True)
                for term in ordering
            )
        )
