"""The agents' web UI: queue, incident page, triage. Views parse, call one service, redirect."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.forms import Form
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from socialitsm import selectors
from socialitsm.conf import conf
from socialitsm.exceptions import ApplicationError, PrivateDataError
from socialitsm.models import Incident, ItsmLink, Network, Post, Reply, ReplyTemplate, SavedView, Service, SlaClock
from socialitsm.pagination import KeyedPaginator
from socialitsm.roles import is_agent, is_lead
from socialitsm.services.bulk import BulkResult, IncidentAction, PostAction, incidents_bulk_change, posts_bulk_triage
from socialitsm.services.incidents import incident_assign, incident_update
from socialitsm.services.itsm_sync import itsm_link_retry_for_agent
from socialitsm.services.major import incident_merge, incident_unmerge, major_open, major_unlink
from socialitsm.services.profiles import profile_of, signature_separator
from socialitsm.services.replies import reply_cancel, reply_options, reply_queue, reply_retry
from socialitsm.services.routing import post_label, post_promote, post_promote_proposal, post_routing_retry
from socialitsm.services.saved_views import saved_view_create, saved_view_delete

from . import charts
from .forms import (
    NEW_MAJOR,
    PRIORITY_CHOICES,
    TRIAGE_TABS,
    IncidentBulkForm,
    IncidentSelectionForm,
    IncidentUpdateForm,
    NoteForm,
    PostBulkForm,
    PromoteForm,
    QueueFilterForm,
    ReplyForm,
    SlaDrillForm,
    SlaReportForm,
    TriageFilterForm,
)

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


def lead_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Like agent_required, for the team lead's pages: logged in, else the login form; not a lead, 403."""

    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_lead(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return login_required(checked)


def _form_errors(request: HttpRequest, form: Form) -> None:
    for name, errors in form.errors.items():
        field = form.fields.get(name)
        label = (field.label or name.replace("_", " ").capitalize()) if field else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else str(error))


def _queue_incidents(request: HttpRequest, form: QueueFilterForm) -> tuple[QuerySet[Incident], selectors.IncidentQuery]:
    """The queue's incidents for the form's filters, ordered, and the query that narrowed them;
    the default view is the open one."""
    incidents = (
        Incident.objects.select_related("service", "assignment_group", "assignee", "author", "channel")
        .prefetch_related(*selectors.related_incidents("parent"))
        .defer(*selectors.CHANNEL_SECRETS)
    )
    query = selectors.IncidentQuery(view=selectors.QueueView.OPEN)
    order: list[Any] = ["priority", "opened_at", "pk"]
    if form.is_valid():
        wanted = form.cleaned_data
        view = wanted["view"] or selectors.QueueView.OPEN
        if wanted["sort"] == "breach" or (view == selectors.QueueView.BREACHING and not wanted["sort"]):
            order = selectors.breach_order()
        elif wanted["sort"] == "activity":
            order = ["-updated_at", "-pk"]
        query = selectors.IncidentQuery(
            view=view,
            search=wanted["q"],
            states=[wanted["state"]] if wanted["state"] else [],
            priorities=[wanted["priority"]] if wanted["priority"] is not None else [],
            service=wanted["service"],
            mine=wanted["mine"],
            unassigned=wanted["unassigned"],
        )
    incidents = selectors.incident_queue(incidents, query, user=request.user)
    return selectors.incidents_with_breach_due(incidents).order_by(*order), query


def _queue_filters(request: HttpRequest) -> dict[str, str]:
    """The queue's filters in the request, as a saved view keeps them."""
    return {key: request.GET[key] for key in QueueFilterForm.KEYS if request.GET.get(key)}


def _queue_context(request: HttpRequest) -> dict[str, Any]:
    stamp = selectors.queue_stamp()
    queue_counts = selectors.queue_counts(request.user)
    counts, view_counts = queue_counts.open, queue_counts.views
    form = QueueFilterForm(request.GET or None, counts=counts)
    incidents, query = _queue_incidents(request, form)
    paging = selectors.incident_queue_paging(query)
    # Counted from the incidents per state, read for the views already, when only states narrow it.
    count = selectors.incident_queue_count(query, state_counts=queue_counts.states)
    page = KeyedPaginator(incidents, PAGE_SIZE, count=count, **paging).get_page(request.GET.get("page"))
    filters = _queue_filters(request)
    live = {**filters, "since": str(stamp)}
    if page.number > 1:
        live["page"] = str(page.number)
    return {
        "form": form,
        "page": page,
        "counts": counts,
        "now": timezone.now(),
        "filters": filters,
        "filters_query": urlencode(filters),
        "live_query": urlencode(live),
        "poll_seconds": conf.QUEUE_POLL_SECONDS,
        "view": (form.cleaned_data.get("view") if form.is_valid() else "") or selectors.QueueView.OPEN,
        "views": [(value, label, view_counts[value]) for value, label in selectors.QueueView.choices],
    }


@require_GET
@agent_required
def queue(request: HttpRequest) -> HttpResponse:
    context = _queue_context(request)
    counts = context["counts"]
    base = reverse("socialitsm:queue")
    saved = [
        {"view": view, "url": f"{base}?{urlencode(sorted(view.query.items()))}", "own": view.user_id == request.user.pk}
        for view in selectors.saved_view_list(request.user)
    ]
    return render(
        request,
        "socialitsm/queue.html",
        {
            **context,
            "saved_views": saved,
            "selection_form": IncidentSelectionForm(list_majors=bool(counts["majors"])),
            "bulk_form": IncidentBulkForm(),
            "is_lead": is_lead(request.user),
        },
    )


@require_GET
@agent_required
def queue_live(request: HttpRequest) -> HttpResponse:
    """The queue's rows again, for an open page's poll: 204 while nothing changed since the
    page's stamp (one indexed lookup), else the rows, counts and a poller with the new stamp."""
    since = request.GET.get("since", "")
    if since.isdigit() and int(since) == selectors.queue_stamp():
        return HttpResponse(status=204)
    return render(request, "socialitsm/_queue_live.html", _queue_context(request))


def _back_to_queue(request: HttpRequest) -> HttpResponse:
    """Back to the queue with the filters the form came from (only the queue's own keys)."""
    back = QueryDict(request.POST.get("back", ""))
    filters = {key: back[key] for key in QueueFilterForm.KEYS if back.get(key)}
    if back.get("page", "").isdigit():
        filters["page"] = back["page"]
    return redirect(f"{reverse('socialitsm:queue')}?{urlencode(filters)}" if filters else "socialitsm:queue")


def _bulk_messages(request: HttpRequest, result: BulkResult, noun: str) -> None:
    if result.done:
        done = len(result.done)
        messages.success(request, f"{done} {noun}{'s' if done != 1 else ''} changed.")
    for failed in result.failed:
        messages.error(request, f"{failed.ref}: {failed.error}")


@require_POST
@agent_required
def incidents_bulk_view(request: HttpRequest) -> HttpResponse:
    """One change for the selected incidents; each goes through the single-incident service and
    the page names those that were refused."""
    form = IncidentBulkForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return _back_to_queue(request)
    wanted = form.cleaned_data
    action = wanted["action"]
    value: Any = None
    try:
        selected = _selected(request)
        if action == IncidentAction.ASSIGN:
            value = request.user if wanted["assignee"] == IncidentBulkForm.ME else wanted["assignee"] or None
        elif action == IncidentAction.STATE:
            value = wanted["state"]
        elif action == IncidentAction.PRIORITY:
            value = wanted["priority"]
        elif action == IncidentAction.LINK:
            [value] = selectors.incidents_by_number([wanted["major"]], field="major")
        result = incidents_bulk_change(incidents=selected, actor=request.user, action=action, value=value)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return _back_to_queue(request)
    _bulk_messages(request, result, "incident")
    return _back_to_queue(request)


@require_POST
@agent_required
def posts_bulk_view(request: HttpRequest) -> HttpResponse:
    """Label, promote or dismiss the posts ticked in triage, each through the triage services."""
    form = PostBulkForm(request.POST)
    state = request.POST.get("back_state", "")
    back = reverse("socialitsm:triage") + (f"?{urlencode({'state': state})}" if state else "")
    if not form.is_valid():
        _form_errors(request, form)
        return redirect(back)
    ids = [int(pk) for pk in request.POST.getlist("posts") if pk.isdigit() and len(pk) < 12]
    found = {post.pk: post for post in Post.objects.filter(pk__in=ids)}
    try:
        result = posts_bulk_triage(
            posts=[found[pk] for pk in dict.fromkeys(ids) if pk in found],
            actor=request.user,
            action=form.cleaned_data["action"],
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(back)
    _bulk_messages(request, result, "post")
    for done in result.done:
        if done.incident:
            messages.info(request, f"Post {done.ref} is in {done.incident}.")
    return redirect(back)


@require_POST
@agent_required
def saved_view_create_view(request: HttpRequest) -> HttpResponse:
    """Save the queue's current filters (the `back` query string) under a name."""
    back = QueryDict(request.POST.get("back", ""))
    try:
        view = saved_view_create(
            user=request.user,
            name=request.POST.get("name", ""),
            query={key: back[key] for key in QueueFilterForm.KEYS if back.get(key)},
            shared=request.POST.get("shared") == "on",
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return _back_to_queue(request)
    messages.success(request, f"View “{view.name}” saved.")
    return redirect(f"{reverse('socialitsm:queue')}?{urlencode(sorted(view.query.items()))}")


@require_POST
@agent_required
def saved_view_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    view = get_object_or_404(SavedView, pk=pk, user=request.user)
    saved_view_delete(view=view, user=request.user)
    messages.success(request, f"View “{view.name}” deleted.")
    return redirect("socialitsm:queue")


def _selected(request: HttpRequest) -> list[Incident]:
    """The incidents ticked in the queue; ApplicationError when none or unknown ones."""
    numbers = request.POST.getlist("incidents")
    if not numbers:
        raise ApplicationError("Select at least one incident.")
    return selectors.incidents_by_number(numbers)


@require_POST
@agent_required
def incidents_link_view(request: HttpRequest) -> HttpResponse:
    """Link the selected incidents to a new major incident (all or none), or to an open one
    (each on its own: those refused are named, the others linked)."""
    form = IncidentSelectionForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("socialitsm:queue")
    try:
        children = _selected(request)
        choice = form.cleaned_data["major"] or NEW_MAJOR
        if choice == NEW_MAJOR:
            major = major_open(
                incidents=children, actor=request.user, short_description=form.cleaned_data["short_description"]
            )
        else:
            [major] = selectors.incidents_by_number([choice], field="major")
            result = incidents_bulk_change(
                incidents=children, actor=request.user, action=IncidentAction.LINK, value=major
            )
            for failed in result.failed:
                messages.error(request, f"{failed.ref}: {failed.error}")
            if not result.done:
                return redirect("socialitsm:queue")
            children = [c for c in children if c.number in {done.ref for done in result.done}]
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("socialitsm:queue")
    messages.success(request, f"{len(children)} incident{'s' if len(children) != 1 else ''} linked to {major.number}.")
    return redirect("socialitsm:incident", number=major.number)


@require_POST
@agent_required
def incidents_merge_view(request: HttpRequest) -> HttpResponse:
    """Merge the selected incidents into the oldest of them."""
    form = IncidentSelectionForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("socialitsm:queue")
    try:
        selected = sorted(_selected(request), key=lambda i: (i.opened_at, i.pk))
        if len(selected) < 2:
            raise ApplicationError("Select two or more incidents to merge.")
        target, duplicates = selected[0], selected[1:]
        with transaction.atomic():
            for duplicate in duplicates:
                incident_merge(
                    duplicate=duplicate,
                    target=target,
                    actor=request.user,
                    other_author=form.cleaned_data["other_author"],
                )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("socialitsm:queue")
    numbers = ", ".join(d.number for d in duplicates)
    messages.success(request, f"{numbers} merged into {target.number}.")
    return redirect("socialitsm:incident", number=target.number)


@require_POST
@agent_required
def incident_unlink_view(request: HttpRequest, number: str) -> HttpResponse:
    incident = _incident_get(number)
    parent_number = incident.parent.number if incident.parent is not None else ""
    back = request.POST.get("back") == "major" and bool(parent_number)
    try:
        major_unlink(incident=incident, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{incident.number} is no longer part of {parent_number}.")
    return redirect("socialitsm:incident", number=parent_number if back else number)


@require_POST
@agent_required
def incident_unmerge_view(request: HttpRequest, number: str) -> HttpResponse:
    incident = _incident_get(number)
    try:
        incident_unmerge(duplicate=incident, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The merge of {incident.number} is undone.")
    return redirect("socialitsm:incident", number=number)


def _major_context(incident: Incident) -> dict[str, Any]:
    """What the page of a major incident adds: the affected posters and the spike's growth."""
    if not incident.is_major:
        return {}
    growth = selectors.major_spike_growth(incident)
    chart = None
    if growth.points:
        chart = charts.bar_chart(
            chart_id="spike-growth",
            title=f"Posts per {'minute' if growth.bucket_minutes == 1 else f'{growth.bucket_minutes} minutes'}",
            desc=f"{growth.total} posts since {growth.first_post_at:%Y-%m-%d %H:%M} UTC; "
            f"at most {growth.peak} in one bar.",
            categories=[f"{p.start:%H:%M}" for p in growth.points],
            series=[charts.Series("Posts", [p.posts for p in growth.points])],
        )
    return {"affected": list(selectors.major_affected_posters(incident)), "growth": growth, "growth_chart": chart}


def _incident_get(number: str) -> Incident:
    return get_object_or_404(selectors.incident_page(), number=number)


def _replies_context(incident: Incident) -> dict[str, Any]:
    replies = list(selectors.incident_replies(incident))
    pending = [r for r in replies if r.status in PENDING_REPLY]
    # A reply on its way is watched closely; one waiting out a backoff, or a broadcast's copy
    # waiting for its paced slot, only now and then.
    now = timezone.now()
    busy = any(not r.is_waiting and not (r.retry_after and r.retry_after > now) for r in pending)
    return {
        "incident": incident,
        "replies": replies,
        "polling": bool(pending),
        "poll_every": "2s" if busy else "15s",
    }


def _reply_targets(incident: Incident, posts: list[Post]) -> tuple[list[dict[str, Any]], Post | None]:
    # `posts` as selectors.incident_posts_shown gives them: each channel loaded once, with the
    # credentials that decide what a network lets us answer.
    targets = []
    for post in posts:
        options = reply_options(post)
        targets.append(
            {
                "post": post,
                "limit": options.limit,
                "unit": options.unit,
                "public_refusal": options.public_refusal,
                "direct_refusal": options.direct_refusal,
                "public_audience": options.public_audience,
                "direct_audience": options.direct_audience,
                "signature_separator": signature_separator(post.network),
            }
        )
    return targets, selectors.reply_default_post(incident, posts)


def _media_allowed(response: HttpResponse) -> HttpResponse:
    """The site's Content-Security-Policy (settings.CONTENT_SECURITY_POLICY, directive -> value)
    with images allowed from https sources: posts' images are shown from where the networks
    host them, https only (no mixed content), and never fetched by this server."""
    policy = dict(getattr(settings, "CONTENT_SECURITY_POLICY", {}) or {})
    if policy:
        sources = [s for s in str(policy.get("img-src", "'self'")).split() if s not in ("https:", "http:", "*")]
        policy["img-src"] = " ".join([*sources, "https:"])
        response.headers["Content-Security-Policy"] = "; ".join(f"{k} {v}".strip() for k, v in policy.items())
    return response


@require_GET
@agent_required
def incident_detail(request: HttpRequest, number: str) -> HttpResponse:
    from .workspace import poster_context, presence_context

    incident = _incident_get(number)
    show_all = request.GET.get("posts") == "all"
    posts, posts_hidden = selectors.incident_posts_shown(incident, latest=None if show_all else INCIDENT_PAGE_POSTS)
    history_all = request.GET.get("history") == "all"
    events, events_hidden = selectors.incident_events_shown(
        incident, latest=None if history_all else INCIDENT_PAGE_EVENTS
    )
    targets, default_post = _reply_targets(incident, posts)
    draft = request.session.pop(f"socialitsm:reply-draft:{incident.pk}", None) or {}
    chosen = next((t for t in targets if t["post"].pk == draft.get("post")), None) or next(
        (t for t in targets if t["post"] is default_post), None
    )
    # A direct message is answered directly, and so is a post the network would not let us
    # answer in public (X: the author neither mentioned nor quoted us).
    visibility = draft.get("visibility") or (
        Reply.Visibility.DIRECT
        if chosen and (chosen["post"].is_direct or (chosen["public_refusal"] and not chosen["direct_refusal"]))
        else Reply.Visibility.PUBLIC
    )
    context = {
        **_replies_context(incident),
        "posts": posts,
        "posts_hidden": posts_hidden,
        "update_form": IncidentUpdateForm(incident=incident),
        "reply_targets": targets,
        "reply_chosen": chosen,
        "reply_visibility": visibility,
        "reply_text": draft.get("text", ""),
        "reply_warning": draft.get("warning", ""),
        "reply_findings": draft.get("findings", []),
        "reply_templates": list(ReplyTemplate.objects.order_by("name", "pk").only("pk", "name")),
        "signature": profile_of(request.user).signature,
        "notes": list(selectors.incident_notes(incident)),
        "note_form": NoteForm(),
        **presence_context(incident, request.user),
        **poster_context(incident),
        "reply_allowed": incident.state not in (Incident.State.CLOSED, Incident.State.CANCELED),
        "visibilities": Reply.Visibility.choices,
        "events": events,
        "events_hidden": events_hidden,
        "posts_all": show_all,
        "clocks": _clocks_view(incident),
        "itsm_links": incident.itsm_links_listed,
        "merged_here": list(incident.merged.order_by("pk").only("pk", "number", "short_description")),
        **_major_context(incident),
    }
    return _media_allowed(render(request, "socialitsm/incident.html", context))


def _clocks_view(incident: Incident) -> list[dict[str, Any]]:
    """The incident's SLA clocks as the page shows them, live at this moment."""
    now = timezone.now()
    out = []
    for clock in incident.clocks_listed:
        label = clock.get_target_display()
        if clock.target == SlaClock.Target.NEXT_RESPONSE:
            label = f"{label} #{clock.cycle}"
        state = clock.state_at(now)
        out.append(
            {
                "target": clock.target,
                "label": label,
                "state": state,
                "state_label": SlaClock.State(state).label,
                "at_risk": clock.at_risk(now),
                "due_at": clock.due_at,
                "stopped_at": clock.stopped_at,
                "target_minutes": clock.target_minutes,
                "elapsed_seconds": int(clock.elapsed_at(now).total_seconds()),
                "paused_seconds": int(clock.paused_at(now).total_seconds()),
            }
        )
    return out


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
        incident_update(
            incident=incident,
            actor=request.user,
            version=form.cleaned_data["version"],
            seen=form.seen(),
            **changes,
        )
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
    warning, findings = "", []
    if form.is_valid():
        data = form.cleaned_data
        try:
            reply = reply_queue(
                incident=incident,
                post=data["post"],
                text=data["text"],
                visibility=data["visibility"],
                agent=request.user,
                sign=True,
                confirm_public=data["confirm_public"],
            )
        except PrivateDataError as exc:
            warning, findings = exc.message, [text for _, text in exc.findings]
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
        "warning": warning,
        "findings": findings,
    }
    return redirect("socialitsm:incident", number=number)


@require_POST
@agent_required
def incident_itsm_retry_view(request: HttpRequest, number: str, link_id: int) -> HttpResponse:
    link = get_object_or_404(ItsmLink.objects.select_related("connection"), pk=link_id, incident__number=number)
    try:
        itsm_link_retry_for_agent(link=link)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Sync with {link.connection.name} queued again.")
    return redirect("socialitsm:incident", number=number)


def _reply_command(
    request: HttpRequest, number: str, reply_id: int, command: Callable[..., Reply], done: str
) -> HttpResponse:
    reply = get_object_or_404(Reply.objects.select_related("incident"), pk=reply_id, incident__number=number)
    try:
        command(reply=reply, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{reply.get_visibility_display()} {done}.")
    return redirect(f"{reverse('socialitsm:incident', kwargs={'number': number})}#reply-{reply.pk}")


@require_POST
@agent_required
def incident_reply_retry_view(request: HttpRequest, number: str, reply_id: int) -> HttpResponse:
    return _reply_command(request, number, reply_id, reply_retry, "queued to be sent again now")


@require_POST
@agent_required
def incident_reply_cancel_view(request: HttpRequest, number: str, reply_id: int) -> HttpResponse:
    return _reply_command(request, number, reply_id, reply_cancel, "canceled; it will not be sent")


# An incident's page renders its first post and this many of the latest; the rest on request.
INCIDENT_PAGE_POSTS = 50
# The events of its history the incident page shows at first (and the first): one per linked post.
INCIDENT_PAGE_EVENTS = 50
# Posts waiting for triage are counted up to this many (a year of them takes longer to count than to show).
TRIAGE_COUNT_CAP = 10_000


@require_GET
@agent_required
def triage(request: HttpRequest) -> HttpResponse:
    form = TriageFilterForm(request.GET or None)
    posts = (
        selectors.post_list()
        .select_related("rule__default_service")
        .filter(form.posts_q())
        .order_by("-posted_at", "-id")
    )
    page = KeyedPaginator(posts, PAGE_SIZE, count_cap=TRIAGE_COUNT_CAP).get_page(request.GET.get("page"))
    for post in page.object_list:
        post.proposal = post_promote_proposal(post)
    chosen = form.chosen()
    tabs = [
        {
            "state": value,
            "label": label,
            "current": value == chosen,
            # Exact up to the cap, as the list's own count.
            "count": Post.objects.filter(TriageFilterForm({"state": value}).posts_q())
            .order_by()
            .values("pk")[: TRIAGE_COUNT_CAP + 1]
            .count(),
        }
        for value, label in TRIAGE_TABS
    ]
    return render(
        request,
        "socialitsm/triage.html",
        {
            "form": form,
            "page": page,
            "tabs": tabs,
            "back": request.get_full_path(),
            "services": Service.objects.filter(active=True).order_by("name"),
            "priorities": PRIORITY_CHOICES,
            "bulk_actions": PostAction.choices,
        },
    )


@require_POST
@agent_required
def post_promote_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Promote with the service and priority the agent confirmed (the proposal for any left out)."""
    post = get_object_or_404(Post, pk=pk)
    form = PromoteForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect(_triage_back(request))
    chosen: dict[str, Any] = {"priority": form.cleaned_data["priority"]}
    if "service" in request.POST:
        chosen["service"] = form.cleaned_data["service"]
    try:
        incident = post_promote(post=post, actor=request.user, **chosen)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(_triage_back(request))
    messages.success(request, f"Post promoted to {incident.number} (P{incident.priority}).")
    return redirect("socialitsm:incident", number=incident.number)


def _triage_back(request: HttpRequest) -> str:
    """The triage list as the agent left it (its tab and page), never another site."""
    back = request.POST.get("back", "")
    if back.startswith(reverse("socialitsm:triage")) and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return back
    return reverse("socialitsm:triage")


@require_POST
@agent_required
def post_route_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Route a post again after routing failed on it (parked with its error)."""
    post = get_object_or_404(Post, pk=pk)
    if post_routing_retry(post=post):
        messages.success(request, "Post handed to routing again.")
    else:
        messages.error(request, "This post is not waiting for a retry.")
    return redirect(f"{reverse('socialitsm:triage')}?state=parked")


def _sla_report(request: HttpRequest) -> tuple[SlaReportForm, dict[str, Any] | None]:
    """The form and, when it is valid, the report: the same selector and checks as the API."""
    form = SlaReportForm(request.GET)
    if not form.is_valid():
        return form, None
    scope = _sla_scope(form)
    if scope is None:
        return form, None
    return form, selectors.sla_report(scope=scope, now=timezone.now())


def _sla_scope(form: SlaReportForm) -> selectors.ReportFilter | None:
    """The report's scope from a valid form; None, with the error on the form, when refused."""
    data = form.cleaned_data
    try:
        return selectors.report_filter(
            start=data["start"],
            end=data["end"],
            group=data["group"],
            network=data["network"],
            calendar=data["calendar"],
            today=selectors.report_today(data["calendar"], timezone.now()),
        )
    except ApplicationError as exc:
        form.add_error({"from": "start", "to": "end", "group": "group"}.get(exc.field or ""), exc.message)
        return None


def _sla_charts(report: dict[str, Any]) -> dict[str, Any]:
    priorities = [f"P{p}" for p in Incident.Priority.values]
    by_target: dict[str, list[dict[str, Any]]] = {}
    for row in report["targets"]:
        by_target.setdefault(row["target"], []).append(row)
    outcome = {
        target: charts.bar_chart(
            chart_id=f"chart-{target}",
            title=f"{SlaClock.Target(target).label}: met and breached by priority",
            desc=", ".join(f"P{r['priority']} {r['met']} met, {r['breached']} breached" for r in rows),
            categories=priorities,
            series=[
                charts.Series("Met", [r["met"] for r in rows], "met"),
                charts.Series("Breached", [r["breached"] for r in rows], "breached"),
            ],
        )
        for target, rows in by_target.items()
    }
    days = sorted({row["date"] for row in report["sentiment"]})
    networks = sorted({row["network"] for row in report["sentiment"]})
    # A day with negative posts and no positive one has an infinite ratio: drawn at the top.
    ratio = {
        (row["date"], row["network"]): math.inf if row["only_negative"] else row["ratio"] for row in report["sentiment"]
    }
    sentiment = charts.line_chart(
        chart_id="chart-sentiment",
        title="Negative to positive posts per day",
        desc="; ".join(f"{d} {n}: {_ratio_text(ratio.get((d, n)))}" for d in days for n in networks if (d, n) in ratio),
        labels=days,
        series=[charts.Series(Network(n).label, [ratio.get((d, n)) for d in days]) for n in networks],
    )
    return {
        "outcome": outcome,
        "outcome_empty": {
            target: _outcome_explained(target, rows) for target, rows in by_target.items() if not _decided(rows)
        },
        "sentiment": sentiment if days else None,
    }


def _ratio_text(value: float | None) -> str:
    if value is None:
        return "no negative or positive posts"
    return "only negative" if math.isinf(value) else str(value)


def _decided(rows: list[dict[str, Any]]) -> bool:
    return any(r["met"] or r["breached"] or r["open"] or r["canceled"] for r in rows)


def _outcome_explained(target: str, rows: list[dict[str, Any]]) -> str:
    """Why a target's chart has nothing to show."""
    if not selectors.sla_target_in_use(target):
        return f"No SLA policy sets a {SlaClock.Target(target).label.lower()} target, so no clock of it runs."
    if target == SlaClock.Target.NEXT_RESPONSE:
        return (
            "No next-response clock started in this period: one starts when a poster writes again "
            "after an agent's public reply or direct message, and none did."
        )
    return f"No {SlaClock.Target(target).label.lower()} clock started in this period."


@require_GET
@lead_required
def sla_dashboard(request: HttpRequest) -> HttpResponse:
    form, report = _sla_report(request)
    context: dict[str, Any] = {
        "form": form,
        "report": report,
        "query": request.GET.urlencode(),
        "sla_defaults": selectors.sla_defaults_in_force(),
    }
    if report is not None:
        context["charts"] = _sla_charts(report)
        context["scope_query"] = _scope_query(form)
        context["breakdowns"] = [
            {"label": "service", "key": "service", "param": "service", "rows": report["by_service"]},
            {"label": "agent", "key": "agent", "param": "agent", "rows": report["by_agent"]},
        ]
        context["target_labels"] = dict(SlaClock.Target.choices)
        context["majors"] = report["major_incidents"]
    return render(request, "socialitsm/sla_dashboard.html", context, status=200 if report is not None else 400)


def _scope_query(form: SlaReportForm) -> str:
    """The report's scope as a query string, for the drill-down links."""
    data = form.cleaned_data
    return urlencode(
        {
            key: value
            for key, value in {
                "from": data["start"].isoformat() if data["start"] else "",
                "to": data["end"].isoformat() if data["end"] else "",
                "group": data["group"].pk if data["group"] else "",
                "network": data["network"],
                "calendar": data["calendar"].pk if data["calendar"] else "",
            }.items()
            if value
        }
    )


@require_GET
@lead_required
def sla_incidents(request: HttpRequest) -> HttpResponse:
    """The incidents behind one figure of the dashboard, for the same scope."""
    form = SlaReportForm(request.GET)
    drill_form = SlaDrillForm(request.GET)
    scope = _sla_scope(form) if form.is_valid() else None
    if scope is None or not drill_form.is_valid():
        errors = [str(e) for f in (form, drill_form) for errs in f.errors.values() for e in errs]
        return render(request, "socialitsm/sla_incidents.html", {"errors": errors}, status=400)
    drill = selectors.Drill(**drill_form.cleaned_data)
    now = timezone.now()
    incidents = selectors.sla_report_incidents(scope=scope, drill=drill, now=now)
    page = Paginator(incidents, PAGE_SIZE).get_page(request.GET.get("page"))
    clocks = selectors.sla_clocks_of(list(page.object_list), scope)
    rows = [{"incident": i, "clocks": clocks.get(i.pk, [])} for i in page.object_list]
    return render(
        request,
        "socialitsm/sla_incidents.html",
        {
            "page": page,
            "rows": rows,
            "scope": scope,
            "drill": drill,
            "described": _drill_described(drill, drill_form),
            "now": now,
            "back": f"{reverse('socialitsm:sla-dashboard')}?{_scope_query(form)}",
        },
    )


def _drill_described(drill: selectors.Drill, form: SlaDrillForm) -> str:
    parts = []
    if drill.flow:
        parts.append("opened in the period" if drill.flow == "in" else "resolved in the period")
    if drill.target:
        parts.append(f"{SlaClock.Target(drill.target).label.lower()} clock")
    if drill.outcome:
        parts.append(dict(form.fields["outcome"].choices)[drill.outcome].lower())  # type: ignore[attr-defined]
    if drill.priority is not None:
        parts.append(f"P{drill.priority}")
    for label, value in (("agent", drill.agent), ("group", drill.team), ("service", drill.service)):
        if value:
            parts.append(f"{label} {value}")
    return ", ".join(parts) or "all with a clock started in the period"


@require_GET
@lead_required
def sla_dashboard_csv(request: HttpRequest) -> HttpResponse:
    form, report = _sla_report(request)
    if report is None:
        return HttpResponse("; ".join(str(e) for errors in form.errors.values() for e in errors), status=400)
    period = report["period"]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="sla-{period["from"]}-{period["to"]}.csv"'
    writer = csv.writer(response)
    writer.writerow(["section", "key", "metric", "value"])
    writer.writerows(_csv_rows(report))
    return response


def _csv_rows(report: dict[str, Any]) -> list[list[Any]]:
    """The dashboard's tables, one figure a row; empty figures are empty cells. Cells that a
    spreadsheet would run as a formula are prefixed with a quote."""
    rows: list[list[Any]] = [["period", "", name, value or ""] for name, value in report["period"].items()]
    rows += [["incidents", "", name, value] for name, value in report["incidents"].items()]
    for row in report["targets"]:
        key = f"{row['target']} P{row['priority']}"
        rows += [["sla", key, metric, "" if row[metric] is None else row[metric]] for metric in SLA_METRICS]
    for section in ("first_response", "ingest_lag"):
        rows += [[section, "", name, "" if value is None else value] for name, value in report[section].items()]
    rows += [["breaches_by_agent", row["agent"], "breached", row["breached"]] for row in report["breaches_by_agent"]]
    rows += [["breaches_by_group", row["group"], "breached", row["breached"]] for row in report["breaches_by_group"]]
    for section, key in (("by_service", "service"), ("by_agent", "agent")):
        for row in report[section]:
            rows += [
                [section, row[key], m, "" if row[m] is None else row[m]]
                for m in ("incidents", "met", "breached", "met_percent", "median_first_response_minutes")
            ]
    rows += [["at_risk", f"{row['number']} {row['target']}", "due_at", row["due_at"]] for row in report["at_risk"]]
    for row in report["sentiment"]:
        key = f"{row['date']} {row['network']}"
        rows += [
            ["sentiment", key, m, "" if row[m] is None else row[m]]
            for m in ("negative", "positive", "ratio", "only_negative")
        ]
    for row in report["major_incidents"]:
        rows += [["major_incidents", row["number"], m, "" if row[m] is None else row[m]] for m in MAJOR_METRICS]
    return [[_csv_safe(cell) for cell in row] for row in rows]


SLA_METRICS = ("met", "breached", "open", "canceled", "met_percent")
MAJOR_METRICS = (
    "children",
    "minutes_to_major",
    "minutes_to_first_broadcast",
    "posters",
    "answered",
    "unanswered",
)


def _csv_safe(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


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
        dismissed = post.label == Post.Label.NOT_COMPLAINT and post.incident is None
        messages.success(
            request,
            f"Post labelled {post.get_label_display().lower()}; retraining learns from it."
            + (" It left the list: find it under Dismissed." if dismissed else ""),
        )
    if post.incident is not None:
        return redirect(f"{reverse('socialitsm:incident', kwargs={'number': post.incident.number})}#post-{post.pk}")
    return redirect(_triage_back(request))
