"""What replies and status posts share on their way out: the claim that makes one worker the
sender of a queued message, and the beat's hand-over of those due to the workers. Both keep
status (QUEUED, SENDING, ...), attempts, claimed_at and retry_after."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import F, Q

from socialitsm.conf import conf
from socialitsm.models import Reply, StatusPost

Outbound = type[Reply] | type[StatusPost]


def send_claim(model: Outbound, pk: int, *, now: datetime) -> bool:
    """Claim the message `pk` for one attempt by a conditional update: it is queued and due, or
    its sender died mid-send (claimed longer than SEND_LEASE_SECONDS ago). False when another
    worker has it, or it is sent, failed or canceled."""
    status = model.Status
    due = Q(retry_after__isnull=True) | Q(retry_after__lte=now)
    claimable = Q(due, status=status.QUEUED) | Q(
        status=status.SENDING, claimed_at__lt=now - timedelta(seconds=conf.SEND_LEASE_SECONDS)
    )
    claimed = model.objects.filter(claimable, pk=pk).update(
        status=status.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    return bool(claimed)


def send_due_handover(model: Outbound, *, now: datetime, limit: int) -> list[int]:
    """The ids (at most `limit`, earliest first) of queued messages whose next attempt is due,
    stamped (`claimed_at`) so that while workers are busy the next ticks do not hand them over
    again; a message whose task is lost is handed over again once SEND_LEASE_SECONDS have passed."""
    queued = model.Status.QUEUED
    lease = now - timedelta(seconds=conf.SEND_LEASE_SECONDS)
    ids = list(
        model.objects.filter(status=queued, retry_after__lte=now)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=lease))
        .order_by("retry_after", "id")
        .values_list("id", flat=True)[:limit]
    )
    model.objects.filter(pk__in=ids, status=queued).update(claimed_at=now)
    return ids
