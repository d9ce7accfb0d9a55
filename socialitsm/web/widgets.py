"""Widgets of the agents' web UI."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe


def _attrs(attrs: dict[str, Any]) -> str:
    # django/forms/widgets/attrs.html: True as a bare name, False left out, the rest as text.
    out = []
    for name, value in attrs.items():
        if value is False:
            continue
        out.append(f" {conditional_escape(name)}")
        if value is not True:
            out.append(f'="{conditional_escape(str(value))}"')
    return "".join(out)


class Select(forms.Select):
    """Django's Select, written out in Python: the HTML of its templates (select.html, which
    includes select_option.html for each option, which includes attrs.html), character for
    character (tests/web/test_widgets.py), at a tenth of the cost. A form with the assignee
    list of 50 agents and the services spent about 10 ms of every incident page in those
    templates. A subclass that names other templates is rendered by them; a project's own
    copies of Django's select templates do not reach the forms that use this widget."""

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        if (self.template_name, self.option_template_name) != (Select.template_name, Select.option_template_name):
            return super().render(name, value, attrs, renderer)
        widget = self.get_context(name, value, attrs)["widget"]
        out = [f'<select name="{conditional_escape(widget["name"])}"{_attrs(widget["attrs"])}>']
        for group_name, options, _index in widget["optgroups"]:
            if group_name:
                out.append(f'\n  <optgroup label="{conditional_escape(localize(group_name))}">')
            for option in options:
                out.append(
                    f'\n  <option value="{conditional_escape(str(option["value"]))}"{_attrs(option["attrs"])}>'
                    f"{conditional_escape(localize(option['label']))}</option>\n"
                )
            if group_name:
                out.append("\n  </optgroup>")
        out.append("\n</select>")  # the renderer strips the template's last newline
        return mark_safe("".join(out))  # noqa: S308 - every value above is escaped
