"""Operations pages: the Prometheus endpoint, the channels' listening health for leads and
admins, and the chat webhooks (Slack, Teams) leads configure for their groups."""

from __future__ import annotations

from typing import cast

from django import forms
from django.contrib import messages
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from socialitsm import metrics, selectors
from socialitsm.models import ChannelAlert, ChatWebhook
from socialitsm.ratelimit import client_address
from socialitsm.services.chat import chat_groups_for, chat_webhook_create

from .views import lead_required


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition, for a scraper bearing SOCIALITSM_METRICS_TOKEN or calling from an
    address in SOCIALITSM_METRICS_ALLOW; to anyone else the page does not exist."""
    if not metrics.metrics_allowed(
        authorization=request.headers.get("Authorization", ""), address=client_address(request)
    ):
        raise Http404
    body, content_type = metrics.metrics_render()
    return HttpResponse(body, content_type=content_type)


@require_GET
@lead_required
def channel_health(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    recent = ChannelAlert.objects.order_by("-raised_at")
    channels = selectors.channel_list().prefetch_related(Prefetch("alerts", queryset=recent)).order_by("name")
    rows = []
    for channel in channels:
        alerts = list(channel.alerts.all())
        age = (now - channel.last_event_at).total_seconds() if channel.last_event_at else None
        rows.append(
            {
                "channel": channel,
                "active": [a for a in alerts if a.active],
                "cleared": [a for a in alerts if not a.active][:3],
                "last_post_minutes": None if age is None else int(age // 60),
            }
        )
    return render(request, "socialitsm/channel_health.html", {"rows": rows})


class ChatWebhookForm(forms.Form):
    group = forms.ModelChoiceField(queryset=Group.objects.none())
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=ChatWebhook.Kind.choices, label="Platform")
    url = forms.URLField(max_length=1000, label="Incoming webhook URL", assume_scheme="https")
    events = forms.MultipleChoiceField(choices=ChatWebhook.Event.choices, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, groups: list[Group], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        group_field = cast(forms.ModelChoiceField, self.fields["group"])
        group_field.queryset = Group.objects.filter(pk__in=[g.pk for g in groups]).order_by("name")


@require_http_methods(["GET", "POST"])
@lead_required
def chat_webhooks(request: HttpRequest) -> HttpResponse:
    groups = chat_groups_for(request.user)
    form = ChatWebhookForm(request.POST or None, groups=groups)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            chat_webhook_create(
                group=data["group"],
                name=data["name"],
                kind=data["kind"],
                url=data["url"],
                events=data["events"],
                actor=request.user,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Chat webhook “{data['name']}” added.")
            return redirect("socialitsm:chat-webhooks")
    webhooks = ChatWebhook.objects.filter(group__in=groups).select_related("group")
    status = 400 if form.errors else 200
    return render(request, "socialitsm/chat_webhooks.html", {"form": form, "webhooks": webhooks}, status=status)


@require_POST
@lead_required
def chat_webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    webhook = get_object_or_404(ChatWebhook, pk=pk, group__in=chat_groups_for(request.user))
    webhook.delete()
    messages.success(request, f"Chat webhook “{webhook.name}” removed.")
    return redirect("socialitsm:chat-webhooks")
