"""Rows read from the database build the same instances through BaseModel.from_db as through
Django's own from_db."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models
from django.db.models.signals import post_init

from socialitsm.models import BaseModel, Channel, Incident, Post, SlaClock
from tests.factories import IncidentFactory, PostFactory, ReplyFactory

pytestmark = pytest.mark.django_db


def django_built(model: type[models.Model], db: str, names: list[str], values: list[object]) -> models.Model:
    return models.Model.from_db.__func__(model, db, names, values)  # type: ignore[attr-defined]


def same(ours: models.Model, theirs: models.Model) -> None:
    assert type(ours) is type(theirs)
    assert {k: v for k, v in vars(ours).items() if k != "_state"} == {
        k: v for k, v in vars(theirs).items() if k != "_state"
    }
    assert (ours._state.adding, ours._state.db) == (theirs._state.adding, theirs._state.db) == (False, "default")
    assert ours.get_deferred_fields() == theirs.get_deferred_fields()


def test_every_model_of_the_app_loads_through_the_fast_path():
    ours = [m for m in apps.get_app_config("socialitsm").get_models()]
    assert ours and all(issubclass(m, BaseModel) for m in ours)


def test_whole_rows_build_the_same_instances():
    ReplyFactory(incident=IncidentFactory(), post=PostFactory(text="VPN down"))
    for model in (Incident, Post, Channel, SlaClock):
        for row in model.objects.all():
            names = [f.attname for f in model._meta.concrete_fields]
            values = [getattr(row, name) for name in names]
            same(model.from_db("default", names, values), django_built(model, "default", names, values))


def test_rows_read_in_part_build_the_same_instances_and_load_the_rest_on_access():
    incident = IncidentFactory(short_description="Mail is slow")
    loaded = Incident.objects.only("number", "state").get(pk=incident.pk)
    assert loaded.get_deferred_fields() >= {"short_description", "description"}
    assert "short_description" not in vars(loaded)
    names = ["id", "number", "state"]
    values = [incident.pk, incident.number, incident.state]
    same(Incident.from_db("default", names, values), django_built(Incident, "default", names, values))
    assert loaded.short_description == "Mail is slow"  # read on access, as Django does


def test_a_loaded_row_saves_as_an_update_and_compares_by_key():
    incident = IncidentFactory(short_description="before")
    loaded = Incident.objects.get(pk=incident.pk)
    assert loaded == incident and not loaded._state.adding
    loaded.short_description = "after"
    loaded.save(update_fields=["short_description"])
    assert Incident.objects.filter(short_description="after").count() == 1
    assert Incident.objects.count() == 1


def test_a_model_with_an_init_receiver_is_built_by_django():
    incident = IncidentFactory()
    seen: list[object] = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=Incident)
    try:
        loaded = Incident.objects.get(pk=incident.pk)
    finally:
        post_init.disconnect(receiver, sender=Incident)
    assert seen == [loaded]
    Incident.objects.get(pk=incident.pk)
    assert len(seen) == 1


def test_every_choice_label_is_what_django_gives():
    """get_FOO_display reads a lookup made once per field: the same labels as Django's, for
    every choice of every field, a value outside the choices and an empty one."""
    checked = 0
    for model in apps.get_app_config("socialitsm").get_models():
        for field in model._meta.concrete_fields:
            if not field.choices:
                continue
            for value in [choice for choice, _ in field.flatchoices] + ["not-a-choice", None]:
                row = model(**{field.attname: value})
                ours = getattr(row, f"get_{field.name}_display")()
                theirs = models.Model._get_FIELD_display(row, field)
                assert (ours, type(ours)) == (theirs, type(theirs)), (model.__name__, field.name, value)
                checked += 1
    assert checked > 50
    assert Incident(state="on_hold").get_state_display() == "On hold"
