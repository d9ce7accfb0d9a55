"""Query-string filters for the API lists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib.auth.models import Group
from django.db.models import F
from django_filters import rest_framework as filters
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter

from socialitsm import datetimes, selectors
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
        choices=Incident.State.choices, help_text="Repeat to match any of several states.", distinct=False
    )
    open = filters.BooleanFilter(help_text="true: new, in progress or on hold; false: the others.")
    priority = filters.TypedMultipleChoiceFilter(choices=Incident.Priority.choices, coerce=int, distinct=False)
    service = filters.CharFilter(field_name="service__slug", help_text="Service slug, e.g. vpn.")
    assignee = filters.CharFilter(help_text='"me", "unassigned" or a user id.')
    assignment_group = filters.ModelChoiceFilter(queryset=Group.objects.all(), help_text="Group id.")
    opened_after = InstantFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = InstantFilter(field_name="opened_at", lookup_expr="lt")
    q = filters.CharFilter(help_text="Words in the number or the short description.")
    search = filters.CharFilter(
        help_text="Full-text search: every word (as a word prefix) in the number or short description, "
        "in one of its posts' text, or in its poster's handle or name."
    )
    view = filters.ChoiceFilter(
        choices=selectors.QueueView.choices,
        help_text="A queue view: open, mine, unassigned, breaching (soon), on_hold, done (resolved and closed), all.",
    )

    class Meta:
        model = Incident
        fields: tuple[str, ...] = ()

    def filter_queryset(self, queryset: IncidentQuerySet) -> IncidentQuerySet:
        """The cleaned parameters, narrowed by the same selector as the web queue."""
        return selectors.incident_queue(queryset, self.query(), user=self.request.user if self.request else None)

    def query(self) -> selectors.IncidentQuery:
        """The cleaned parameters as the queue's selectors take them (after is_valid())."""
        data = self.form.cleaned_data
        return selectors.IncidentQuery(
            states=data.get("state") or (),
            open=data.get("open"),
            priorities=data.get("priority") or (),
            service=data.get("service") or "",
            group=data.get("assignment_group"),
            opened_after=data.get("opened_after"),
            opened_before=data.get("opened_before"),
            words=data.get("q") or "",
            search=data.get("search") or "",
            view=data.get("view") or "",
            **self._assignee(data.get("assignee") or ""),
        )

    @staticmethod
    def _assignee(value: str) -> dict[str, Any]:
        value = value.strip()
        if not value:
            return {}
        if value == "me":
            return {"mine": True}
        if value == "unassigned":
            return {"unassigned": True}
        if not value.isdigit():
            raise ValidationError({"assignee": ['Expected "me", "unassigned" or a user id.']})
        return {"assignee_id": int(value)}


class PostFilter(filters.FilterSet):
    # distinct=False: a column of the post itself matches each post once, and a DISTINCT over
    # every selected column makes PostgreSQL sort the whole result.
    triage_state = filters.MultipleChoiceFilter(choices=Post.Triage.choices, distinct=False)
    network = filters.ChoiceFilter(choices=Network.choices)
    channel = filters.CharFilter(field_name="channel__slug", help_text="Channel slug.")
    is_complaint = filters.BooleanFilter()
    service = filters.CharFilter(field_name="detected_service__slug", help_text="Detected service slug, e.g. vpn.")
    incident = filters.CharFilter(field_name="incident__number", help_text="Incident number, e.g. INC0001001.")
    label = filters.ChoiceFilter(choices=Post.Label.choices, help_text="Agents' label, for reviewing feedback.")
    search = filters.CharFilter(
        method="filter_search",
        help_text="Full-text search: every word (as a word prefix) in the text or the poster's handle or name.",
    )

    class Meta:
        model = Post
        fields: tuple[str, ...] = ()

    def filter_search(self, queryset, name: str, value: str):
        return selectors.post_search(queryset, value)


class ReplyFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=Reply.Status.choices, distinct=False)
    visibility = filters.ChoiceFilter(choices=Reply.Visibility.choices)
    incident = filters.CharFilter(field_name="incident__number", help_text="Incident number, e.g. INC0001001.")

    class Meta:
        model = Reply
        fields: tuple[str, ...] = ()


class ViewFilterSetBackend(filters.DjangoFilterBackend):
    """django-filter's backend, taking the view's own filterset when it has one for the request
    (`view.request_filterset()`): a list whose pagination reads the filters too (its count, its
    paging) then builds and validates them once, not three times."""

    def get_filterset(self, request: Any, queryset: Any, view: Any) -> Any:
        own = getattr(view, "request_filterset", None)
        return own() if callable(own) else super().get_filterset(request, queryset, view)


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
