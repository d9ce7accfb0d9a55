"""The agents' web UI: queue, incident page, triage. Views parse, call one service, redirect."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from socialitsm.exceptions import ApplicationError
from socialitsm.models import Incident, Post, Reply
from socialitsm.roles import is_agent
from socialitsm.services.incidents import incident_assign, incident_update
from socialitsm.services.replies import reply_limit, reply_queue
from socialitsm.services.routing import post_label, post_promote

from .forms import IncidentUpdateForm, QueueFilterForm, ReplyForm, TriageFilterForm

PAGE_SIZE = 50
PENDING_REPLY = (Reply.Status.QUEUED, Reply.Status.SENDING)


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def agent_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_agent(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    logged_in = login_required(checked)

    @wraps(view)
    def wrapper(request: HtmxHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated and request.htmx:
            # A poll from a page whose session expired: send the whole page to the login form
            # instead of swapping the login form into the replies box.
            login = resolve_url(settings.LOGIN_URL)
            return HttpResponseClientRedirect(
                f"{login}?{urlencode({'next': request.htmx.current_url_abs_path or '/'})}"
            )
        return logged_in(request, *args, **kwargs)

    return wrapper


def _form_errors(request: HttpRequest, form: Form) -> None:
    for name, errors in form.errors.items():
        field = form.fields.get(name)
        label = (field.label or name.replace("_", " ").capitalize()) if field else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else str(error))


def _queue_counts(user) -> dict[str, Any]:
    open_incidents = Incident.objects.open().order_by()
    totals = open_incidents.aggregate(
        all=Count("pk"),
        mine=Count("pk", filter=Q(assignee=user)),
        unassigned=Count("pk", filter=Q(assignee__isnull=True)),
    )
    return {
        **totals,
        "service": dict(
            open_incidents.filter(service__isnull=False).values_list("service__slug").annotate(n=Count("pk"))
        ),
        "priority": dict(open_incidents.values_list("priority").annotate(n=Count("pk"))),
        "state": dict(open_incidents.values_list("state").annotate(n=Count("pk"))),
    }


@require_GET
@agent_required
def queue(request: HttpRequest) -> HttpResponse:
    counts = _queue_counts(request.user)
    form = QueueFilterForm(request.GET or None, counts=counts)
    incidents = Incident.objects.open().select_related("service", "assignment_group", "assignee")
    if form.is_valid():
        wanted = form.cleaned_data
        if wanted["mine"]:
            incidents = incidents.filter(assignee=request.user)
        if wanted["unassigned"]:
            incidents = incidents.filter(assignee__isnull=True)
        if wanted["service"]:
            incidents = incidents.filter(service__slug=wanted["service"])
        if wanted["priority"]:
            incidents = incidents.filter(priority=wanted["priority"])
        if wanted["state"]:
            incidents = incidents.filter(state=wanted["state"])
    page = Paginator(incidents.order_by("priority", "opened_at", "pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request, "socialitsm/queue.html", {"form": form, "page": page, "counts": counts, "now": timezone.now()}
    )


def _incident_get(number: str) -> Incident:
    return get_object_or_404(
        Incident.objects.select_related("service", "assignment_group", "assignee", "author", "channel"), number=number
    )


def _replies_context(incident: Incident) -> dict[str, Any]:
    replies = list(incident.replies.select_related("agent", "post__author").order_by("created_at", "id"))
    return {
        "incident": incident,
        "replies": replies,
        "polling": any(r.status in PENDING_REPLY for r in replies),
    }


def _reply_targets(incident: Incident, posts: list[Post]) -> tuple[list[dict[str, Any]], Post | None]:
    targets = [{"post": p, "limit": reply_limit(p)} for p in posts]
    by_author = [p for p in posts if p.author_id == incident.author_id]
    default = (by_author or posts)[-1] if posts else None
    return targets, default


@require_GET
@agent_required
def incident_detail(request: HttpRequest, number: str) -> HttpResponse:
    incident = _incident_get(number)
    posts = list(
        incident.posts.select_related("author", "channel", "detected_service", "labelled_by").order_by(
            "posted_at", "id"
        )
    )
    targets, default_post = _reply_targets(incident, posts)
    draft = request.session.pop(f"socialitsm:reply-draft:{incident.pk}", None) or {}
    chosen = next((t for t in targets if t["post"].pk == draft.get("post")), None) or next(
        (t for t in targets if t["post"] is default_post), None
    )
    visibility = draft.get("visibility") or (
        Reply.Visibility.DIRECT if chosen and chosen["post"].is_direct else Reply.Visibility.PUBLIC
    )
    context = {
        **_replies_context(incident),
        "posts": posts,
        "update_form": IncidentUpdateForm(incident=incident),
        "reply_targets": targets,
        "reply_chosen": chosen,
        "reply_visibility": visibility,
        "reply_text": draft.get("text", ""),
        "reply_allowed": incident.state not in (Incident.State.CLOSED, Incident.State.CANCELED),
        "visibilities": Reply.Visibility.choices,
        "events": incident.events.select_related("actor").order_by("created_at", "id"),
    }
    return render(request, "socialitsm/incident.html", context)


@require_GET
@agent_required
def incident_replies(request: HttpRequest, number: str) -> HttpResponse:
    incident = _incident_get(number)
    return render(request, "socialitsm/_replies.html", _replies_context(incident))


@require_POST
@agent_required
def incident_update_view(request: HttpRequest, number: str) -> HttpResponse:
    incident = _incident_get(number)
    form = IncidentUpdateForm(request.POST, incident=incident)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("socialitsm:incident", number=number)
    changes = form.changes()
    if not changes:
        messages.info(request, "Nothing changed.")
        return redirect("socialitsm:incident", number=number)
    try:
        incident_update(incident=incident, actor=request.user, **changes)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{incident.number} updated: {', '.join(changes).replace('_', ' ')}.")
    return redirect("socialitsm:incident", number=number)


@require_POST
@agent_required
def incident_assign_view(request: HttpRequest, number: str) -> HttpResponse:
    incident = _incident_get(number)
    try:
        incident_assign(incident=incident, actor=request.user, assignee=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{incident.number} is assigned to you.")
    return redirect("socialitsm:incident", number=number)


@require_POST
@agent_required
def incident_reply_view(request: HttpRequest, number: str) -> HttpResponse:
    incident = _incident_get(number)
    form = ReplyForm(request.POST, incident=incident)
    if form.is_valid():
        data = form.cleaned_data
        try:
            reply = reply_queue(
                incident=incident,
                post=data["post"],
                text=data["text"],
                visibility=data["visibility"],
                agent=request.user,
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{reply.get_visibility_display()} queued.")
            return redirect("socialitsm:incident", number=number)
    else:
        _form_errors(request, form)
    # Keep what the agent wrote so a refused reply can be fixed instead of retyped.
    request.session[f"socialitsm:reply-draft:{incident.pk}"] = {
        "post": form.cleaned_data["post"].pk if form.cleaned_data.get("post") else None,
        "visibility": form.cleaned_data.get("visibility", ""),
        "text": request.POST.get("text", "").replace("\r\n", "\n"),
    }
    return redirect("socialitsm:incident", number=number)


@require_GET
@agent_required
def triage(request: HttpRequest) -> HttpResponse:
    form = TriageFilterForm(request.GET or None)
    posts = (
        Post.objects.filter(triage_state__in=form.states())
        .select_related("author", "channel", "detected_service", "labelled_by")
        .order_by("-posted_at", "-id")
    )
    page = Paginator(posts, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "socialitsm/triage.html", {"form": form, "page": page})


@require_POST
@agent_required
def post_promote_view(request: HttpRequest, pk: int) -> HttpResponse:
    post = get_object_or_404(Post, pk=pk)
    try:
        incident = post_promote(post=post, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("socialitsm:triage")
    messages.success(request, f"Post promoted to {incident.number}.")
    return redirect("socialitsm:incident", number=incident.number)


@require_POST
@agent_required
def post_label_view(request: HttpRequest, pk: int) -> HttpResponse:
    """An agent's complaint / not-a-complaint label; back to where the post is shown."""
    post = get_object_or_404(Post.objects.select_related("incident"), pk=pk)
    try:
        post_label(post=post, label=request.POST.get("label", ""), actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Post labelled {post.get_label_display().lower()}; retraining learns from it.")
    if post.incident is not None:
        return redirect(f"{reverse('socialitsm:incident', kwargs={'number': post.incident.number})}#post-{post.pk}")
    return redirect("socialitsm:triage")
