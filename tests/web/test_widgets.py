"""The web UI's Select writes out what Django's select templates render, character for character."""

from __future__ import annotations

import pytest
from django import forms
from django.utils.safestring import mark_safe

from socialitsm.web.widgets import Select

CHOICES = [
    ("", "(none)"),
    (1, "Ada <Lovelace> & \"co\" 'x'"),
    ("2", mark_safe("<b>already safe</b>")),
    ("a&b", "ampersand value"),
    ("ß", "Straße ‮ bidi"),
    (
        "Group <g>",
        [("g1", "In group"), ("g2", "Also in group")],
    ),
    (None, "None as a value"),
]


def _both(value, *, attrs=None, choices=CHOICES, multiple=False):
    kind = forms.SelectMultiple if multiple else forms.Select
    ours_kind = type("OursMultiple", (Select,), {"allow_multiple_selected": True}) if multiple else Select
    theirs = kind(attrs=attrs, choices=choices).render("field", value, attrs={"id": "id_field"})
    ours = ours_kind(attrs=attrs, choices=choices).render("field", value, attrs={"id": "id_field"})
    return ours, theirs


@pytest.mark.parametrize("value", [None, "", 1, "1", "2", "g2", "a&b", "ß", "missing"])
def test_a_select_renders_as_djangos(value):
    ours, theirs = _both(value)
    assert ours == theirs


@pytest.mark.parametrize(
    "attrs",
    [
        None,
        {"class": 'x" onmouseover="y', "required": True, "disabled": False, "data-n": 0, "aria-label": "<a>"},
        {"autofocus": True},
    ],
)
def test_a_selects_attributes_render_as_djangos(attrs):
    ours, theirs = _both(2, attrs=attrs)
    assert ours == theirs


def test_a_select_of_several_values_and_an_empty_one_render_as_djangos():
    assert _both(["1", "g1"], multiple=True)[0] == _both(["1", "g1"], multiple=True)[1]
    assert _both(None, choices=[])[0] == _both(None, choices=[])[1]


@pytest.mark.django_db
def test_the_incident_forms_selects_render_as_djangos():
    from django.contrib.auth.models import Group

    from socialitsm.models import Service
    from socialitsm.roles import AGENT_GROUP
    from socialitsm.web.forms import IncidentUpdateForm
    from tests.factories import IncidentFactory, UserFactory

    agents, _ = Group.objects.get_or_create(name=AGENT_GROUP)
    UserFactory(username="ada&co", first_name="Ada <A>").groups.add(agents)
    UserFactory(username="bob").groups.add(agents)
    Service.objects.create(slug="vpn-remote", name="VPN <remote>")
    incident = IncidentFactory()
    form = IncidentUpdateForm(incident=incident)
    for name in ("state", "impact", "urgency", "assignee", "assignment_group", "service"):
        ours = str(form[name])
        assert isinstance(form.fields[name].widget, Select), name
        form.fields[name].widget.__class__ = forms.Select
        assert ours == str(form[name]), name
        assert ours.count("<option") >= 2, name


def test_a_select_whose_subclass_names_another_template_uses_it():
    class Custom(Select):
        option_template_name = "django/forms/widgets/select_option.html#custom"

    with pytest.raises(Exception, match=r"select_option\.html#custom"):
        Custom(choices=[("1", "one")]).render("field", "1")


@pytest.mark.django_db
@pytest.mark.postgres
def test_the_incident_forms_choices_are_read_in_one_query_each_without_a_cursor():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from socialitsm.web.forms import IncidentUpdateForm
    from tests.factories import IncidentFactory

    form = IncidentUpdateForm(incident=IncidentFactory())
    with CaptureQueriesContext(connection) as queries:
        html = "".join(str(form[name]) for name in ("assignee", "assignment_group", "service"))
    assert len(queries) == 3
    assert not [q for q in queries.captured_queries if "CURSOR" in q["sql"].upper()]
    assert html.count("<select") == 3
