"""Channels: check a channel's credentials against its network, add channels from the shell, and
record on a channel what its calls used and how they failed (its health and quota)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from socialitsm import metrics
from socialitsm.connectors import Quota, config_parse, connector_for
from socialitsm.connectors.base import OWN_ACCOUNT_KEY
from socialitsm.db import rows_insert_new
from socialitsm.exceptions import ApplicationError, ExternalError, PermanentError, TransientError
from socialitsm.http import CREDENTIALS_FOR_NEW_HOST, same_host
from socialitsm.models import BilledResource, Channel, WatchRule

logger = logging.getLogger(__name__)


def credentials_host_check(*, stored_url: str, new_url: str | None, stored: bool, replaced: bool) -> None:
    """Stored credentials do not follow a base URL (of a channel or an ITSM connection) changed
    to another host: whoever may edit the URL could have them sent to a host of theirs. Unless
    new credentials come with the change, raises ApplicationError on the "credentials" field.
    `new_url` is None when the base URL is not being changed."""
    if stored and new_url is not None and not replaced and not same_host(stored_url, new_url):
        raise ApplicationError(CREDENTIALS_FOR_NEW_HOST, field="credentials")


def channel_verify(*, channel: Channel) -> str:
    """Check `channel`'s credentials against the network and fill in what the network told us:
    the account's handle, and in `config` its id (which ingest uses to skip our own posts).
    Does not save the channel; the caller does once the rest of its input is valid.

    Raises PermanentError (refused, unknown network) or TransientError (unreachable)."""
    try:
        connector = connector_for(channel)
    except (LookupError, ImportError) as exc:
        raise PermanentError(f"no connector for network {channel.network!r}") from exc
    try:
        handle = connector.verify()
    finally:
        if channel.pk:
            channel_quota_record(channel=channel, quota=connector.quota)
    if handle:
        channel.handle = handle
    return channel.handle


def channel_add(
    *,
    slug: str,
    name: str,
    network: str,
    base_url: str = "",
    handle: str = "",
    credentials: dict[str, Any],
    config: dict[str, Any] | None = None,
    listen_mode: str = Channel.ListenMode.POLL,
    rules: Sequence[tuple[str, str]] = (),
    verify: bool = True,
) -> Channel:
    """Create a channel with its watch rules ((kind, query) pairs), once the network accepted
    its credentials. Raises ValidationError for a field or config its connector cannot take,
    PermanentError/TransientError from the check; nothing is saved then."""
    channel = Channel(
        slug=slug,
        name=name,
        network=network,
        base_url=base_url,
        handle=handle,
        # EncryptedJSONField stores a dict; the stubs know it only as the TextField it extends.
        credentials=cast(Any, credentials),
        config=dict(config or {}),
        listen_mode=listen_mode,
    )
    channel.full_clean(exclude=["credentials"])
    try:
        config_parse(network, channel.config)
    except ValueError as exc:
        raise ValidationError({"config": [str(exc)]}) from exc
    if verify:
        channel_verify(channel=channel)
    with transaction.atomic():
        channel.save()
        WatchRule.objects.bulk_create(
            [
                WatchRule(channel=channel, name=(f"{kind}: {query}" if query else kind)[:100], kind=kind, query=query)
                for kind, query in rules
            ]
        )
    return channel


@dataclass
class ChannelCheck:
    handle: str
    account_id: str
    # Rule name -> posts the network returned for it now (only when searching was asked for).
    found: dict[str, int] = field(default_factory=dict)


def channel_test(*, channel: Channel, search: bool = False) -> ChannelCheck:
    """Check a stored channel against its network and keep what it learned (handle, account id).
    With `search`, also run each enabled rule's search once, without storing posts or moving
    cursors (on X that costs money). Errors are recorded on the channel, then raised."""
    try:
        channel_verify(channel=channel)
        Channel.objects.filter(pk=channel.pk).update(handle=channel.handle, config=channel.config)
        check = ChannelCheck(handle=channel.handle, account_id=str(channel.config.get(OWN_ACCOUNT_KEY, "")))
        if search:
            connector = connector_for(channel)
            try:
                for rule in channel.rules.filter(enabled=True):
                    posts, _cursor = connector.search(rule, rule.cursor)
                    check.found[rule.name] = len(posts)
            finally:
                channel_quota_record(channel=channel, quota=connector.quota)
    except ExternalError as exc:
        channel_error_record(channel=channel, error=exc)
        raise
    return check


def channel_quota_record(*, channel: Channel, quota: Quota) -> None:
    """Add what one connector call used to the channel's counters and keep the latest allowance.
    Resources billed once per UTC day (`quota.billed`) add their price only the first time this
    channel records them that day: the ledger's unique rows decide, so two workers, or a worker
    restarted, never count one twice."""
    if not quota.requests and quota.remaining is None and not quota.billed:
        return
    with transaction.atomic():
        cost = quota.cost + _first_billed_today(channel, quota.billed)
        changes: dict[str, Any] = {
            "requests_made": F("requests_made") + quota.requests,
            "cost_used": F("cost_used") + Decimal(str(round(cost, 4))),
        }
        if quota.remaining is not None:
            changes["quota_remaining"] = quota.remaining
        if quota.limit is not None:
            changes["quota_limit"] = quota.limit
        if quota.reset_at is not None:
            changes["quota_reset_at"] = quota.reset_at
        Channel.objects.filter(pk=channel.pk).update(**changes)


def _first_billed_today(channel: Channel, billed: dict[tuple[str, str, str], float]) -> float:
    """The price of the resources in `billed` that the channel had not been billed for on their
    day, now written to the ledger; the ledger's days before yesterday are pruned."""
    if not billed:
        return 0.0
    # In key order: two workers inserting overlapping sets in different orders could deadlock.
    rows = [
        BilledResource(channel_id=channel.pk, day=date.fromisoformat(day), item=item, resource_id=resource_id[:64])
        for day, item, resource_id in sorted(billed)
    ]
    written = rows_insert_new(BilledResource, rows, returning=("day", "item", "resource_id"))
    oldest = min(row.day for row in rows) - timedelta(days=1)
    BilledResource.objects.filter(channel_id=channel.pk, day__lt=oldest).delete()
    return sum(billed.get((day.isoformat(), item, resource_id), 0.0) for day, item, resource_id in written)


def channel_error_record(*, channel: Channel, error: ExternalError) -> None:
    """Show on the channel why its last call failed; a rate limit also holds its next poll."""
    logger.warning("call to channel %s failed: %s", channel.slug, error.message)
    now = timezone.now()
    transient = isinstance(error, TransientError)
    health = Channel.Health.DEGRADED if transient else Channel.Health.FAILING
    retry_at = error.retry_at if isinstance(error, TransientError) else None
    changes = {
        "last_polled_at": now,
        "last_error": error.message,
        "last_error_at": now,
        "health": health,
        "last_error_status": error.status,
    }
    if retry_at is not None and retry_at > now:
        changes.update(rate_limited_until=retry_at, next_poll_at=retry_at)
        metrics.rate_limit_wait(channel.network, (retry_at - now).total_seconds())
    Channel.objects.filter(pk=channel.pk).update(**changes)
