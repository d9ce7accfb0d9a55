"""Canned replies: the team's library of reply templates, filled in for the post answered."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from socialitsm.exceptions import ApplicationError
from socialitsm.models import Incident, Post, ReplyTemplate

from .broadcasts import MAX_TEMPLATE_CHARS, VARIABLES, template_parse, template_render
from .profiles import profile_of

TEMPLATE_VARIABLES = (*VARIABLES, "signature")


def reply_template_save(*, name: str, text: str, actor, template: ReplyTemplate | None = None) -> ReplyTemplate:
    """Create a template, or change `template`.

    Raises ApplicationError for an empty or taken name, an empty or too long text, and a
    variable other than {name}, {handle}, {service}, {incident} and {signature}."""
    name = name.strip()
    text = text.replace("\r\n", "\n").strip()
    if not name:
        raise ApplicationError("give the template a name", field="name")
    if len(name) > 100:
        raise ApplicationError("a name has at most 100 characters", field="name")
    if not text:
        raise ApplicationError("the template is empty", field="text")
    if len(text) > MAX_TEMPLATE_CHARS:
        raise ApplicationError(f"a template has at most {MAX_TEMPLATE_CHARS} characters", field="text")
    template_parse(text, TEMPLATE_VARIABLES)
    others = ReplyTemplate.objects.filter(name__iexact=name)
    if template is not None:
        others = others.exclude(pk=template.pk)
    if others.exists():
        raise ApplicationError(f"there is already a template named {name!r}", field="name")
    if template is None:
        template = ReplyTemplate(created_by=actor)
    template.name, template.text = name, text
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:
        raise ApplicationError(f"there is already a template named {name!r}", field="name") from None
    return template


def reply_template_values(*, incident: Incident, post: Post, agent) -> dict[str, str]:
    """What the variables stand for when `agent` answers `post` on `incident`."""
    author = post.author
    handle = author.handle or author.name or author.external_id
    return {
        "name": author.name or handle.lstrip("@"),
        "handle": handle,
        "service": incident.service.name if incident.service else "the service",
        "incident": incident.number,
        "signature": profile_of(agent).signature,
    }


def reply_template_render(*, template: ReplyTemplate, incident: Incident, post: Post, agent) -> str:
    """The template filled in for `post`; values are inserted as they are, never parsed.

    Raises ApplicationError when the post is not the incident's, or the stored text is no
    longer a valid template (written around the API's checks)."""
    if post.incident_id != incident.pk:
        raise ApplicationError(f"that post is not part of {incident.number}", field="post")
    parts = template_parse(template.text, TEMPLATE_VARIABLES)
    return template_render(parts, reply_template_values(incident=incident, post=post, agent=agent))
