"""The incident page's workspace: internal notes, canned replies, who is viewing, the poster's
history, and the agent's own profile (signature, time zone)."""

from __future__ import annotations

import time
from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from socialitsm import selectors
from socialitsm.conf import conf
from socialitsm.exceptions import ApplicationError
from socialitsm.middleware import time_zone_remember
from socialitsm.models import Incident, Post, ReplyTemplate
from socialitsm.pagination import ShortListPaginator
from socialitsm.services.notes import note_add
from socialitsm.services.profiles import profile_of, profile_update, time_zone_default
from socialitsm.services.reply_templates import reply_template_render, reply_template_save

from .forms import NoteForm, ProfileForm, ReplyTemplateForm
from .views import _form_errors, _incident_get, agent_required, lead_required

# -- internal notes --------------------------------------------------------------------------------


@require_POST
@agent_required
def incident_note_view(request: HttpRequest, number: str) -> HttpResponse:
    incident = _incident_get(number)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            note_add(incident=incident, author=request.user, text=form.cleaned_data["text"])
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Internal note added.")
            return redirect(f"{reverse('socialitsm:incident', kwargs={'number': number})}#notes")
    else:
        _form_errors(request, form)
    return redirect(f"{reverse('socialitsm:incident', kwargs={'number': number})}#notes")


# -- canned replies --------------------------------------------------------------------------------


@require_GET
@agent_required
def reply_template_fill(request: HttpRequest, number: str, template_id: int) -> HttpResponse:
    """A canned reply filled in for one post of the incident, for the reply box."""
    incident = _incident_get(number)
    template = get_object_or_404(ReplyTemplate, pk=template_id)
    post = get_object_or_404(Post.objects.select_related("author"), pk=_int(request.GET.get("post")))
    try:
        text = reply_template_render(template=template, incident=incident, post=post, agent=request.user)
    except ApplicationError as exc:
        return JsonResponse({"error": exc.message}, status=400)
    return JsonResponse({"text": text})


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        return 0


@require_GET
@lead_required
def reply_template_list_view(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "socialitsm/reply_templates.html",
        {"templates": selectors.reply_template_list(), "form": ReplyTemplateForm()},
    )


@require_http_methods(["GET", "POST"])
@lead_required
def reply_template_edit_view(request: HttpRequest, template_id: int | None = None) -> HttpResponse:
    template = get_object_or_404(ReplyTemplate, pk=template_id) if template_id is not None else None
    if request.method == "GET":
        initial = {"name": template.name, "text": template.text} if template else {}
        return render(
            request, "socialitsm/reply_template_edit.html", {"template": template, "form": ReplyTemplateForm(initial)}
        )
    form = ReplyTemplateForm(request.POST)
    if form.is_valid():
        try:
            saved = reply_template_save(
                name=form.cleaned_data["name"], text=form.cleaned_data["text"], actor=request.user, template=template
            )
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Template {saved.name!r} saved.")
            return redirect("socialitsm:reply-templates")
    return render(request, "socialitsm/reply_template_edit.html", {"template": template, "form": form}, status=400)


@require_POST
@lead_required
def reply_template_delete_view(request: HttpRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(ReplyTemplate, pk=template_id)
    template.delete()
    messages.success(request, f"Template {template.name!r} deleted.")
    return redirect("socialitsm:reply-templates")


# -- who is viewing --------------------------------------------------------------------------------


def _presence_key(incident: Incident) -> str:
    return f"socialitsm:presence:{incident.pk}"


def initials(user) -> str:
    """ "AB" for Anna Berg; the first two letters of the user name when there is no full name."""
    words = [w for w in (user.first_name, user.last_name) if w]
    if words:
        return "".join(w[0] for w in words).upper()
    return user.get_username()[:2].upper()


def presence_touch(incident: Incident, user) -> list[dict[str, str]]:
    """Record that `user` has the incident open now, and return the others who have it open
    (seen within SOCIALITSM_PRESENCE_TTL_SECONDS), by name. Kept in the cache, never the database."""
    now = time.time()
    ttl = conf.PRESENCE_TTL_SECONDS
    key = _presence_key(incident)
    seen: dict[str, list[Any]] = cache.get(key) or {}
    seen = {uid: entry for uid, entry in seen.items() if entry[2] > now}
    name = user.get_full_name() or user.get_username()
    seen[str(user.pk)] = [initials(user), name, now + ttl]
    cache.set(key, seen, ttl)
    return [
        {"initials": entry[0], "name": entry[1]}
        for uid, entry in sorted(seen.items(), key=lambda item: item[1][1])
        if uid != str(user.pk)
    ]


@require_GET
@agent_required
def incident_presence(request: HttpRequest, number: str) -> HttpResponse:
    incident = _incident_get(number)
    return render(request, "socialitsm/_presence.html", presence_context(incident, request.user))


def presence_context(incident: Incident, user) -> dict[str, Any]:
    return {
        "incident": incident,
        "viewers": presence_touch(incident, user),
        "presence_every": f"{conf.PRESENCE_POLL_SECONDS}s",
    }


# -- who is this -----------------------------------------------------------------------------------


def poster_context(incident: Incident, page: str | None = None) -> dict[str, Any]:
    size = conf.POSTER_HISTORY_PAGE
    return {
        "incident": incident,
        "poster_incidents": ShortListPaginator(selectors.poster_incidents(incident), size).get_page(page),
        "poster_posts": ShortListPaginator(selectors.poster_posts(incident), size).get_page(page),
    }


@require_GET
@agent_required
def incident_poster(request: HttpRequest, number: str) -> HttpResponse:
    incident = _incident_get(number)
    return render(request, "socialitsm/_poster.html", poster_context(incident, request.GET.get("page")))


# -- profile ---------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@agent_required
def profile_view(request: HttpRequest) -> HttpResponse:
    profile = profile_of(request.user)
    if request.method == "GET":
        form = ProfileForm(initial={"signature": profile.signature, "time_zone": profile.time_zone})
        return render(request, "socialitsm/profile.html", {"form": form})
    form = ProfileForm(request.POST)
    if form.is_valid():
        try:
            saved = profile_update(
                user=request.user, signature=form.cleaned_data["signature"], time_zone=form.cleaned_data["time_zone"]
            )
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            time_zone_remember(request, saved.time_zone)
            messages.success(request, "Profile saved.")
            return redirect("socialitsm:profile")
    return render(request, "socialitsm/profile.html", {"form": form}, status=400)


@require_POST
@agent_required
def profile_time_zone_view(request: HttpRequest) -> HttpResponse:
    """The browser's zone, sent by the pages once: taken when the user has not chosen one."""
    if time_zone_default(user=request.user, time_zone=request.POST.get("time_zone", "")):
        time_zone_remember(request, request.POST["time_zone"])
        return JsonResponse({"time_zone": request.POST["time_zone"]})
    return JsonResponse({"time_zone": profile_of(request.user).time_zone}, status=200)
