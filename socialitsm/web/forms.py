"""Forms of the agents' web UI: they parse input; the services decide."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Q
from django.forms.models import ModelChoiceIterator

from socialitsm.models import Broadcast, Channel, Incident, Network, Post, Reply, Service, SlaCalendar, SlaClock
from socialitsm.roles import AGENT_GROUP, LEAD_GROUP
from socialitsm.selectors import QueueView
from socialitsm.services.bulk import IncidentAction, PostAction
from socialitsm.services.incidents import TRANSITIONS
from socialitsm.services.profiles import SIGNATURE_MAX_CHARS, time_zones

from .widgets import Select

TRIAGE_STATES = (Post.Triage.QUEUED, Post.Triage.IGNORED)

_F = TypeVar("_F", bound=forms.Field)


def _field(form: forms.BaseForm, name: str, kind: type[_F]) -> _F:
    """`form.fields` holds plain Fields; narrow one to its declared kind to set its choices or queryset."""
    field = form.fields[name]
    if not isinstance(field, kind):
        raise TypeError(f"{type(form).__name__}.{name} is a {type(field).__name__}, not a {kind.__name__}")
    return field


class QueueFilterForm(forms.Form):
    SORTS = (("priority", "Priority"), ("breach", "Time to breach"), ("activity", "Last activity"))
    # The query-string keys a saved view keeps.
    KEYS = ("view", "q", "sort", "mine", "unassigned", "service", "priority", "state")

    view = forms.ChoiceField(required=False, choices=QueueView.choices, label="View", widget=Select)
    q = forms.CharField(required=False, max_length=200, label="Search", strip=True)
    sort = forms.ChoiceField(required=False, choices=SORTS, label="Sort by", widget=Select)
    mine = forms.BooleanField(required=False, label="Mine")
    unassigned = forms.BooleanField(required=False, label="Unassigned")
    service = forms.ChoiceField(required=False, widget=Select)
    priority = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, widget=Select)
    state = forms.ChoiceField(required=False, widget=Select)

    def __init__(self, *args: Any, counts: dict[str, dict[Any, int]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)

        def label(text: str, n: int) -> str:
            return f"{text} ({n})"

        _field(self, "service", forms.ChoiceField).choices = [("", "Any service")] + [
            (slug, label(name, counts["service"].get(slug, 0)))
            for slug, name in Service.objects.order_by("name").values_list("slug", "name")
        ]
        _field(self, "priority", forms.ChoiceField).choices = [("", "Any priority")] + [
            (value, label(f"P{value}", counts["priority"].get(value, 0))) for value in Incident.Priority.values
        ]
        # Counts are of open incidents; the states after them show in the resolved and all views.
        _field(self, "state", forms.ChoiceField).choices = [("", "Any state of the view")] + [
            (state.value, label(state.label, counts["state"].get(state.value, 0)))
            if state in Incident.OPEN_STATES
            else (state.value, state.label)
            for state in Incident.State
        ]


def _agents(current_id: int | None):
    # The current assignee stays selectable even if they left the groups, so saving the form
    # for another field does not silently unassign them.
    user_model = get_user_model()
    return (
        user_model.objects.filter(Q(groups__name__in=(AGENT_GROUP, LEAD_GROUP), is_active=True) | Q(pk=current_id))
        .distinct()
        .order_by(user_model.USERNAME_FIELD)
    )


class ModelChoices(ModelChoiceIterator):
    """A select's model choices read in one plain query. Django's own iterator streams them
    through a server-side cursor on PostgreSQL, three round trips each (DECLARE, FETCH, CLOSE),
    which is for lists too long for a select anyway."""

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset.all():
            yield self.choice(obj)


class ModelChoiceField(forms.ModelChoiceField):
    iterator = ModelChoices


def agent_label(user: Any) -> str:
    """How a select names an agent: "Full Name (login)", or the login alone. The host's user
    model names its login field (USERNAME_FIELD); a full name is optional."""
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return f"{full} ({user.get_username()})" if full else user.get_username()


class AgentChoiceField(ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return agent_label(obj)


class IncidentUpdateForm(forms.Form):
    """Every field carries its value as rendered, so only what this agent changed is sent on,
    and a colleague's change made meanwhile is not overwritten by a stale page."""

    state = forms.ChoiceField(choices=Incident.State.choices, show_hidden_initial=True, widget=Select)
    impact = forms.TypedChoiceField(choices=Incident.Level.choices, coerce=int, show_hidden_initial=True, widget=Select)
    urgency = forms.TypedChoiceField(
        choices=Incident.Level.choices, coerce=int, show_hidden_initial=True, widget=Select
    )
    assignee = AgentChoiceField(
        queryset=None, required=False, empty_label="(unassigned)", show_hidden_initial=True, widget=Select
    )
    assignment_group: forms.ModelChoiceField[Group] = ModelChoiceField(
        queryset=None, required=False, empty_label="(none)", label="Group", show_hidden_initial=True, widget=Select
    )
    service: forms.ModelChoiceField[Service] = ModelChoiceField(
        queryset=None, required=False, empty_label="(none)", show_hidden_initial=True, widget=Select
    )

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, incident: Incident, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        kwargs.setdefault(
            "initial",
            {
                "version": incident.version,
                "state": incident.state,
                "impact": incident.impact,
                "urgency": incident.urgency,
                "assignee": incident.assignee_id,
                "assignment_group": incident.assignment_group_id,
                "service": incident.service_id,
            },
        )
        super().__init__(*args, **kwargs)
        _field(self, "assignee", AgentChoiceField).queryset = _agents(incident.assignee_id)
        _field(self, "assignment_group", forms.ModelChoiceField).queryset = Group.objects.order_by("name")
        _field(self, "service", forms.ModelChoiceField).queryset = Service.objects.filter(
            Q(active=True) | Q(pk=incident.service_id)
        ).order_by("name")
        if not self.is_bound:
            # Only the moves the life cycle allows from here; a submitted form takes any state,
            # so a move made on a page that has gone stale meets the service's own checks.
            _field(self, "state", forms.ChoiceField).choices = [
                (incident.state, Incident.State(incident.state).label),
                *((s.value, s.label) for s in Incident.State if s.value in TRANSITIONS[incident.state]),
            ]

    def changes(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.changed_data if name != "version"}

    def seen(self) -> dict[str, Any]:
        """Each changed field's value as the page showed it (its hidden initial)."""
        out: dict[str, Any] = {}
        for name in self.changes():
            field = self.fields[name]
            raw = field.hidden_widget().value_from_datadict(self.data, self.files, self.add_initial_prefix(name))
            try:
                out[name] = field.clean(raw)
            except forms.ValidationError:
                out[name] = None
        return out


class ReplyForm(forms.Form):
    post: forms.ModelChoiceField[Post] = forms.ModelChoiceField(queryset=None)
    visibility = forms.ChoiceField(choices=Reply.Visibility.choices)
    text = forms.CharField(strip=False)
    confirm_public = forms.BooleanField(required=False, label="Send it publicly anyway")

    def __init__(self, *args: Any, incident: Incident, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _field(self, "post", forms.ModelChoiceField).queryset = incident.posts.select_related("channel")

    def clean_text(self) -> str:
        # Browsers submit textarea line breaks as CRLF but count them as one character.
        return self.cleaned_data["text"].replace("\r\n", "\n")


# Not a triage state: pending posts routing failed on, waiting for a person.
PARKED = "parked"


# Not a triage state either: posts an agent labelled "not a complaint", kept out of the list.
DISMISSED = "dismissed"


TRIAGE_TABS: list[tuple[str, str]] = [
    ("", "To triage"),
    *((s.value, s.label) for s in TRIAGE_STATES),
    (PARKED, "Routing failed"),
    (DISMISSED, "Dismissed (not a complaint)"),
]


class TriageFilterForm(forms.Form):
    state = forms.ChoiceField(required=False, choices=TRIAGE_TABS)

    def chosen(self) -> str:
        return self.cleaned_data.get("state", "") if self.is_valid() else ""

    def posts_q(self) -> Q:
        """The posts the filter shows: triage states and, unless another state is chosen, parked
        posts; posts labelled not a complaint only under "dismissed"."""
        chosen = self.chosen()
        parked = Q(routing_failed_at__isnull=False)
        dismissed = Q(label=Post.Label.NOT_COMPLAINT, incident__isnull=True)
        if chosen == PARKED:
            return parked
        if chosen == DISMISSED:
            return dismissed & (Q(triage_state__in=TRIAGE_STATES) | parked)
        if chosen:
            return Q(triage_state=chosen) & ~dismissed
        return (Q(triage_state__in=TRIAGE_STATES) | parked) & ~dismissed


PRIORITY_CHOICES = [(value, f"P{label}") for value, label in Incident.Priority.choices]


class PromoteForm(forms.Form):
    """Service and priority for the incident a post is promoted to; absent, the proposal holds."""

    service = forms.ModelChoiceField(queryset=Service.objects.none(), required=False, empty_label="No service")
    priority = forms.TypedChoiceField(choices=PRIORITY_CHOICES, coerce=int, required=False, empty_value=None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _field(self, "service", forms.ModelChoiceField).queryset = Service.objects.filter(active=True).order_by("name")


class SlaReportForm(forms.Form):
    """The dashboard's filters, the same as the API report's query: days in a calendar's time zone
    (UTC without one), team, network."""

    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    group = forms.ModelChoiceField(queryset=Group.objects.none(), required=False, empty_label="Any group")
    network = forms.ChoiceField(choices=[("", "Any network"), *Network.choices], required=False)
    calendar = forms.ModelChoiceField(
        queryset=SlaCalendar.objects.order_by("name"),
        required=False,
        empty_label="UTC",
        label="Days in",
        help_text="Days start at midnight in this calendar's time zone.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from socialitsm.selectors import team_groups

        _field(self, "group", forms.ModelChoiceField).queryset = team_groups()

    def add_prefix(self, field_name: str) -> str:
        # The query string says from/to, as the API's does; a Python name cannot be "from".
        return {"start": "from", "end": "to"}.get(field_name, field_name)


class SlaDrillForm(forms.Form):
    """Which figure of the dashboard to list the incidents of (see selectors.Drill)."""

    flow = forms.ChoiceField(choices=[("", ""), ("in", "Opened"), ("out", "Resolved")], required=False)
    target = forms.ChoiceField(choices=[("", "Any target"), *SlaClock.Target.choices], required=False)
    outcome = forms.ChoiceField(
        choices=[
            ("", "Any"),
            ("met", "Met"),
            ("breached", "Breached"),
            ("open", "Open"),
            ("canceled", "Not needed"),
            ("decided", "Met or breached"),
        ],
        required=False,
    )
    priority = forms.TypedChoiceField(
        choices=[("", "Any"), *PRIORITY_CHOICES], coerce=int, required=False, empty_value=None
    )
    agent = forms.CharField(required=False, max_length=150)
    team = forms.CharField(required=False, max_length=150)
    service = forms.CharField(required=False, max_length=100)


class BroadcastForm(forms.Form):
    """A broadcast's message and how it goes; the template's variables are checked by the service."""

    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=5000,
        label="Message",
        help_text="{name}, {handle}, {service} and {incident} (the poster's own incident) are filled in per poster.",
    )
    visibility = forms.ChoiceField(
        choices=Broadcast.Visibility.choices,
        initial=Broadcast.Visibility.PUBLIC,
        widget=forms.RadioSelect,
        label="Send as",
    )


class StatusPostForm(forms.Form):
    channel = forms.ModelChoiceField(queryset=Channel.objects.none(), label="Channel", empty_label=None)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=5000, label="Status post")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _field(self, "channel", forms.ModelChoiceField).queryset = Channel.objects.filter(enabled=True).order_by("name")


NEW_MAJOR = "new"


class IncidentSelectionForm(forms.Form):
    """The queue's selected incidents and what to do with them: link them to a major incident
    (a new one, or one already open) or merge them."""

    major = forms.ChoiceField(label="Major incident", required=False)
    short_description = forms.CharField(label="Title of a new major incident", max_length=160, required=False)
    other_author = forms.BooleanField(label="Merge although the posters differ (team leads)", required=False)

    def __init__(self, *args: Any, list_majors: bool = True, **kwargs: Any) -> None:
        """`list_majors` False offers only a new major incident (the caller knows none is open)."""
        super().__init__(*args, **kwargs)
        majors = Incident.objects.filter(is_major=True, state__in=Incident.OPEN_STATES).order_by("-opened_at")
        if not list_majors:
            majors = majors.none()
        major_field = self.fields["major"]
        assert isinstance(major_field, forms.ChoiceField)
        major_field.choices = [
            (NEW_MAJOR, "New major incident"),
            *((m.number, f"{m.number} {m.short_description}"[:90]) for m in majors[:100]),
        ]


class IncidentBulkForm(forms.Form):
    """One change for the incidents ticked in the queue: assign (to me, to nobody or to an
    agent), a state, a priority, or a link to an open major incident."""

    ME = "me"

    action = forms.ChoiceField(choices=IncidentAction.choices)
    assignee = forms.CharField(required=False, label="Assign to")
    state = forms.ChoiceField(required=False, choices=[("", "State…"), *Incident.State.choices], label="State")
    priority = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, choices=[("", "Priority…"), *Incident.Priority.choices]
    )
    major = forms.CharField(required=False, label="Major incident")

    def assignee_choices(self) -> list[tuple[str, str]]:
        return [(self.ME, "Me"), ("", "Nobody (unassign)")] + [
            (str(user.pk), agent_label(user)) for user in _agents(None)
        ]

    def clean_assignee(self):
        value = self.cleaned_data["assignee"]
        if value in ("", self.ME):
            return value
        if not value.isdigit():
            raise forms.ValidationError("Choose an agent.")
        agent = _agents(None).filter(pk=int(value)).first()
        if agent is None:
            raise forms.ValidationError("Choose an agent.")
        return agent


class PostBulkForm(forms.Form):
    action = forms.ChoiceField(choices=PostAction.choices)


class NoteForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Internal note",
        help_text="Agents only; never sent to the poster.",
    )


class ReplyTemplateForm(forms.Form):
    name = forms.CharField(max_length=100)
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        label="Text",
        help_text="{name}, {handle}, {service}, {incident} and {signature} (the agent's) are filled in; "
        "{{ and }} are braces.",
    )


class ProfileForm(forms.Form):
    signature = forms.CharField(
        max_length=SIGNATURE_MAX_CHARS,
        required=False,
        help_text="Public replies end with it, e.g. ^AB, so posters know a person answers.",
    )
    time_zone = forms.ChoiceField(required=False, label="Time zone", help_text="Times are shown in it.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _field(self, "time_zone", forms.ChoiceField).choices = [("", "(the browser's)")] + [
            (name, name) for name in time_zones()
        ]
