"""The agents' web UI: queue, incident page, triage. Views parse, call one service, redirect."""

from __future__ import annotations

import csv
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
from django.db.models import Count, Q
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from socialitsm import selectors
from socialitsm.exceptions import ApplicationError, PrivateDataError
from socialitsm.models import Incident, ItsmLink, Network, Post, Reply, ReplyTemplate, SlaClock
from socialitsm.roles import is_agent, is_lead
from socialitsm.services.incidents import incident_assign, incident_update
from socialitsm.services.itsm_sync import itsm_link_retry_for_agent
from socialitsm.services.major import incident_merge, incident_unmerge, major_link, major_open, major_unlink
from socialitsm.services.profiles import profile_of, signature_separator
from socialitsm.services.replies import reply_cancel, reply_options, reply_queue, reply_retry
from socialitsm.services.routing import post_label, post_promote, post_routing_retry

from . import charts
from .forms import (
    NEW_MAJOR,
    IncidentSelectionForm,
    IncidentUpdateForm,
    NoteForm,
    QueueFilterForm,
    ReplyForm,
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


def _queue_counts(user) -> dict[str, Any]:
    open_incidents = Incident.objects.open().order_by()
    totals = open_incidents.aggregate(
        all=Count("pk"),
        mine=Count("pk", filter=Q(assignee=user)),
        unassigned=Count("pk", filter=Q(assignee__isnull=True)),
        majors=Count("pk", filter=Q(is_major=True)),
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
    incidents = Incident.objects.select_related("service", "assignment_group", "assignee", "parent")
    query = selectors.IncidentQuery(open=True)
    order: list[Any] = ["priority", "opened_at", "pk"]
    if form.is_valid():
        wanted = form.cleaned_data
        if wanted["sort"] == "breach":
            order = selectors.breach_order()
        query = selectors.IncidentQuery(
            open=True,
            states=[wanted["state"]] if wanted["state"] else [],
            priorities=[wanted["priority"]] if wanted["priority"] is not None else [],
            service=wanted["service"],
            mine=wanted["mine"],
            unassigned=wanted["unassigned"],
        )
    incidents = selectors.incident_queue(incidents, query, user=request.user)
    ordered = selectors.incidents_with_breach_due(incidents).order_by(*order)
    page = Paginator(ordered, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "socialitsm/queue.html",
        {
            "form": form,
            "page": page,
            "counts": counts,
            "now": timezone.now(),
            "selection_form": IncidentSelectionForm(list_majors=bool(counts["majors"])),
            "is_lead": is_lead(request.user),
        },
    )


def _selected(request: HttpRequest) -> list[Incident]:
    """The incidents ticked in the queue; ApplicationError when none or unknown ones."""
    numbers = request.POST.getlist("incidents")
    if not numbers:
        raise ApplicationError("Select at least one incident.")
    return selectors.incidents_by_number(numbers)


@require_POST
@agent_required
def incidents_link_view(request: HttpRequest) -> HttpResponse:
    """Link the selected incidents to a new major incident or to an open one."""
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
            major_link(major=major, incidents=children, actor=request.user)
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
    posts = list(selectors.incident_posts(incident))
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
        "events": selectors.incident_events(incident),
        "clocks": _clocks_view(incident),
        "itsm_links": selectors.itsm_link_list().filter(incident=incident),
        "merged_here": list(incident.merged.order_by("pk").only("pk", "number", "short_description")),
        **_major_context(incident),
    }
    return _media_allowed(render(request, "socialitsm/incident.html", context))


def _clocks_view(incident: Incident) -> list[dict[str, Any]]:
    """The incident's SLA clocks as the page shows them, live at this moment."""
    now = timezone.now()
    out = []
    for clock in incident.sla_clocks.select_related("policy__calendar").order_by("target", "cycle"):
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


@require_GET
@agent_required
def triage(request: HttpRequest) -> HttpResponse:
    form = TriageFilterForm(request.GET or None)
    posts = selectors.post_list().filter(form.posts_q()).order_by("-posted_at", "-id")
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
    data = form.cleaned_data
    now = timezone.now()
    try:
        scope = selectors.report_filter(
            start=data["start"], end=data["end"], group=data["group"], network=data["network"], today=now.date()
        )
    except ApplicationError as exc:
        form.add_error({"from": "start", "to": "end"}.get(exc.field or ""), exc.message)
        return form, None
    return form, selectors.sla_report(scope=scope, now=now)


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
    ratio = {(row["date"], row["network"]): row["ratio"] for row in report["sentiment"]}
    sentiment = charts.line_chart(
        chart_id="chart-sentiment",
        title="Negative to positive posts per day",
        desc="; ".join(f"{d} {n}: {ratio.get((d, n))}" for d in days for n in networks),
        labels=days,
        series=[charts.Series(Network(n).label, [ratio.get((d, n)) for d in days]) for n in networks],
    )
    return {"outcome": outcome, "sentiment": sentiment if days else None}


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
        context["target_labels"] = dict(SlaClock.Target.choices)
        context["majors"] = report["major_incidents"]
    return render(request, "socialitsm/sla_dashboard.html", context, status=200 if report is not None else 400)


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
    rows += [["at_risk", f"{row['number']} {row['target']}", "due_at", row["due_at"]] for row in report["at_risk"]]
    for row in report["sentiment"]:
        key = f"{row['date']} {row['network']}"
        rows += [["sentiment", key, m, "" if row[m] is None else row[m]] for m in ("negative", "positive", "ratio")]
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
        messages.success(request, f"Post labelled {post.get_label_display().lower()}; retraining learns from it.")
    if post.incident is not None:
        return redirect(f"{reverse('socialitsm:incident', kwargs={'number': post.incident.number})}#post-{post.pk}")
    return redirect("socialitsm:triage")
