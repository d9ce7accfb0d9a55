"""The broadcast page of a major incident: compose, preview, confirm, and follow each poster's
reply; the channels' status posts. Views parse, call one service, redirect."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from socialitsm import selectors
from socialitsm.exceptions import ApplicationError
from socialitsm.models import Broadcast, Incident
from socialitsm.services import broadcasts

from .forms import BroadcastForm, StatusPostForm
from .views import _form_errors, agent_required


def _major_get(number: str) -> Incident:
    return get_object_or_404(selectors.incident_page(), number=number)


def _page_url(incident: Incident, anchor: str = "") -> str:
    url = reverse("socialitsm:incident-broadcast", kwargs={"number": incident.number})
    return f"{url}#{anchor}" if anchor else url


def _broadcasts_view(incident: Incident) -> list[dict[str, Any]]:
    """Each broadcast with what the page shows of it: a draft's preview (or why there is
    none), a confirmed one's replies."""
    out = []
    for broadcast in selectors.broadcast_list(incident):
        item: dict[str, Any] = {"broadcast": broadcast, "preview": None, "error": "", "replies": []}
        if broadcast.status == Broadcast.Status.DRAFT:
            try:
                item["preview"] = broadcasts.broadcast_preview(broadcast)
            except ApplicationError as exc:
                item["error"] = exc.message
        elif broadcast.status == Broadcast.Status.CONFIRMED:
            item["replies"] = list(selectors.broadcast_replies(broadcast))
        out.append(item)
    return out


@require_GET
@agent_required
def incident_broadcast(request: HttpRequest, number: str) -> HttpResponse:
    incident = _major_get(number)
    context = {
        "incident": incident,
        "posters": len(selectors.major_poster_posts(incident)) if incident.is_major else 0,
        "broadcasts": _broadcasts_view(incident) if incident.is_major else [],
        "form": BroadcastForm(),
        "status_form": StatusPostForm(prefix="status"),
        "status_posts": selectors.status_post_list(incident),
        "can_broadcast": incident.is_major and incident.state not in (Incident.State.CLOSED, Incident.State.CANCELED),
    }
    return render(request, "socialitsm/broadcast.html", context)


@require_POST
@agent_required
def incident_broadcast_create(request: HttpRequest, number: str) -> HttpResponse:
    incident = _major_get(number)
    form = BroadcastForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect(_page_url(incident))
    try:
        broadcast = broadcasts.broadcast_create(major=incident, actor=request.user, **form.cleaned_data)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(_page_url(incident))
    messages.info(request, "Draft saved. Check the preview, leave people out if needed, then confirm to send.")
    return redirect(_page_url(incident, f"broadcast-{broadcast.pk}"))


def _broadcast_get(number: str, broadcast_id: int) -> Broadcast:
    return get_object_or_404(
        Broadcast.objects.select_related("incident__service"), pk=broadcast_id, incident__number=number
    )


@require_POST
@agent_required
def incident_broadcast_edit(request: HttpRequest, number: str, broadcast_id: int) -> HttpResponse:
    broadcast = _broadcast_get(number, broadcast_id)
    form = BroadcastForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
    else:
        try:
            broadcasts.broadcast_update(broadcast=broadcast, actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Draft changed; the preview shows the new text.")
    return redirect(_page_url(broadcast.incident, f"broadcast-{broadcast.pk}"))


@require_POST
@agent_required
def incident_broadcast_confirm(request: HttpRequest, number: str, broadcast_id: int) -> HttpResponse:
    broadcast = _broadcast_get(number, broadcast_id)
    try:
        exclude = [int(value) for value in request.POST.getlist("exclude") if value.strip()]
    except ValueError:
        messages.error(request, "The people to leave out were not understood; nothing was sent.")
        return redirect(_page_url(broadcast.incident, f"broadcast-{broadcast.pk}"))
    was = broadcast.status
    try:
        confirmed = broadcasts.broadcast_confirm(broadcast=broadcast, actor=request.user, exclude=exclude)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        if was == Broadcast.Status.CONFIRMED:
            messages.info(request, "This broadcast was confirmed already; nothing was sent again.")
        else:
            messages.success(
                request,
                f"Broadcast confirmed: {confirmed.recipient_count} replies queued, paced per channel; "
                f"{confirmed.skipped_count} left out.",
            )
    return redirect(_page_url(broadcast.incident, f"broadcast-{broadcast.pk}"))


@require_POST
@agent_required
def incident_broadcast_discard(request: HttpRequest, number: str, broadcast_id: int) -> HttpResponse:
    broadcast = _broadcast_get(number, broadcast_id)
    try:
        broadcasts.broadcast_discard(broadcast=broadcast, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Draft discarded.")
    return redirect(_page_url(broadcast.incident))


@require_POST
@agent_required
def incident_status_post_create(request: HttpRequest, number: str) -> HttpResponse:
    incident = _major_get(number)
    form = StatusPostForm(request.POST, prefix="status")
    if not form.is_valid():
        _form_errors(request, form)
        return redirect(_page_url(incident, "status-posts"))
    try:
        broadcasts.status_post_publish(major=incident, actor=request.user, **form.cleaned_data)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Status post queued on {form.cleaned_data['channel'].name}.")
    return redirect(_page_url(incident, "status-posts"))
