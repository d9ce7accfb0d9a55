"""Output serializers that look their fields up by a plan made once per serializer.

DRF's `Serializer.to_representation` asks each field, for each row, to find its value: a
generator over the fields, the field's `get_attribute`, the module's `get_attribute` walking the
source, an abstract-class check that the row is not a Mapping and a check that the value is not a
callable to call. A page of 50 incidents asks about 3,000 times, and the asking cost more than
printing the values. `PlannedRepresentation` gives the same output: for each kind of row it
represents (a model, not a Mapping), it reads a field whose source is one plain attribute with
`getattr`, and hands every other case (a callable value, a missing attribute, a dotted source, a
field with its own `get_attribute`, a Mapping row) to DRF's own lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.fields import Field, SkipField
from rest_framework.relations import PKOnlyObject

# How a planned field finds its value.
_ROW = 0  # the row itself (source "*")
_ATTRIBUTE = 1  # getattr(row, name), unless the value is callable or the lookup fails
_FIELD = 2  # the field's own get_attribute, as DRF does

_Step = tuple[str, int, str, Field, Callable[[Any], Any]]


def _plan(fields: Any) -> list[_Step]:
    steps: list[_Step] = []
    for field in fields:
        own_lookup = type(field).get_attribute is not Field.get_attribute
        attrs = field.source_attrs
        if own_lookup:
            how, name = _FIELD, ""
        elif not attrs:
            how, name = _ROW, ""
        elif len(attrs) == 1:
            how, name = _ATTRIBUTE, attrs[0]
        else:
            how, name = _FIELD, ""
        steps.append((field.field_name, how, name, field, field.to_representation))
    return steps


# No docstrings on these classes: the OpenAPI schema describes a serializer by the first
# docstring in its ancestry short of DRF's own, which would then be this one.


class PlannedRepresentation:
    # Mixin for a `serializers.Serializer`: `to_representation` as DRF's, field by field the same
    # values, None checks and skips, with the lookups planned once (see the module docstring).

    def to_representation(self, instance: Any) -> Any:
        plans: dict[type, list[_Step] | None] = self.__dict__.setdefault("_representation_plans", {})
        kind = type(instance)
        if kind in plans:
            plan = plans[kind]
        else:
            plan = plans[kind] = None if isinstance(instance, Mapping) else _plan(self._readable_fields)  # type: ignore[attr-defined]
        if plan is None:
            return super().to_representation(instance)  # type: ignore[misc]
        ret: dict[str, Any] = {}
        for name, how, attribute_name, field, represent in plan:
            if how == _ROW:
                attribute = instance
            else:
                try:
                    if how == _ATTRIBUTE:
                        try:
                            attribute = getattr(instance, attribute_name)
                        except Exception:  # DRF's lookup decides: a default, None, a skip or the error
                            attribute = field.get_attribute(instance)
                        else:
                            if callable(attribute):  # a method to call, or a manager: DRF decides
                                attribute = field.get_attribute(instance)
                    else:
                        attribute = field.get_attribute(instance)
                except SkipField:
                    continue
            check_for_none = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
            ret[name] = None if check_for_none is None else represent(attribute)
        return ret


class Serializer(PlannedRepresentation, serializers.Serializer):
    pass


class ModelSerializer(PlannedRepresentation, serializers.ModelSerializer):
    pass
