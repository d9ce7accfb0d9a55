"""A person's notifications: the list, marking them read, and what they want to be told about."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from socialitsm import selectors
from socialitsm.models import Notification, NotificationKind
from socialitsm.services.notifications import (
    notification_choices,
    notification_choices_set,
    notifications_mark_read,
)

from .views import PAGE_SIZE, agent_required


@require_GET
@agent_required
def notification_list(request: HttpRequest) -> HttpResponse:
    unread_only = request.GET.get("show") == "unread"
    notifications = selectors.notification_list(user=request.user)
    if unread_only:
        notifications = notifications.filter(read_at__isnull=True)
    page = Paginator(notifications, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "socialitsm/notifications.html",
        {"page": page, "unread_only": unread_only, "unread": selectors.notification_unread_count(request.user)},
    )


@require_POST
@agent_required
def notification_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one read and go to what it is about."""
    notification = get_object_or_404(Notification.objects.select_related("incident"), pk=pk, user=request.user)
    notifications_mark_read(user=request.user, ids=[notification.pk])
    if notification.incident is not None:
        return redirect("socialitsm:incident", number=notification.incident.number)
    return redirect("socialitsm:notifications")


@require_POST
@agent_required
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    notification = get_object_or_404(Notification, pk=pk, user=request.user)
    notifications_mark_read(user=request.user, ids=[notification.pk])
    return redirect("socialitsm:notifications")


@require_POST
@agent_required
def notification_read_all(request: HttpRequest) -> HttpResponse:
    count = notifications_mark_read(user=request.user)
    messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked read.")
    return redirect("socialitsm:notifications")


@require_http_methods(["GET", "POST"])
@agent_required
def notification_preferences(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        notification_choices_set(
            user=request.user,
            choices={
                kind: (f"{kind}-in_app" in request.POST, f"{kind}-email" in request.POST)
                for kind in NotificationKind.values
            },
        )
        messages.success(request, "Your notification choices are saved.")
        return redirect("socialitsm:notification-preferences")
    return render(
        request,
        "socialitsm/notification_preferences.html",
        {"choices": notification_choices(request.user), "has_email": bool(getattr(request.user, "email", ""))},
    )
