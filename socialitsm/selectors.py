"""Shared read queries for the API, the admin and the web UI."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from .conf import conf
from .models import Channel


def channel_list() -> QuerySet[Channel]:
    """Channels with `recent_posts`: posts stored within the quiet window, for `Channel.is_quiet`."""
    since = timezone.now() - timedelta(hours=conf.QUIET_WINDOW_HOURS)
    return Channel.objects.annotate(recent_posts=Count("posts", filter=Q(posts__ingested_at__gte=since)))
