"""Rate limits every process shares, and the client address they are kept per.

Counters are fixed windows in the cache named by SOCIALITSM_THROTTLE_CACHE: one key per scope,
subject and window, created with `add` and counted with `incr`, both atomic in Redis, so any number
of web processes count together. A local-memory cache there (the embedded default) counts per
process. When the cache cannot be reached the limits are not applied: an outage of the counters
must not refuse correctly signed posts or an agent's calls.

The client address is REMOTE_ADDR, unless that is one of SOCIALITSM_TRUSTED_PROXIES: then it is
the right-most X-Forwarded-For entry that is not a trusted proxy. Entries left of it are whatever
the client chose to send, so they are never read.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.exceptions import ImproperlyConfigured

from .conf import DEFAULTS, conf

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class Rate:
    count: int
    seconds: int


@functools.lru_cache(maxsize=64)
def parse_rate(rate: str) -> Rate:
    """DRF's notation: "<count>/<period>", the period second, minute, hour or day (or s, m, h, d)."""
    count, sep, period = str(rate).partition("/")
    try:
        number = int(count)
        seconds = PERIODS[period.strip()[:1].lower()]
    except (ValueError, KeyError):
        number, seconds = -1, 0
    if not sep or number < 1 or not seconds:
        raise ImproperlyConfigured(f"rate {rate!r} is not <count>/<second|minute|hour|day>, e.g. 600/minute")
    return Rate(number, seconds)


def rate_for(scope: str) -> Rate | None:
    """The rate of `scope` from SOCIALITSM_THROTTLE_RATES over the defaults; None turns it off."""
    rates = {**DEFAULTS["THROTTLE_RATES"], **conf.THROTTLE_RATES}
    if scope not in rates:
        raise ImproperlyConfigured(f"no rate for {scope!r} in SOCIALITSM_THROTTLE_RATES")
    value = rates[scope]
    return None if value in (None, "") else parse_rate(str(value))


def throttle_cache() -> BaseCache:
    return caches[conf.THROTTLE_CACHE]


def _key(scope: str, subject: str, window: int) -> str:
    # Hashed: a subject may be an IPv6 address or a header value, unfit for some cache keys.
    digest = hashlib.blake2b(subject.encode("utf-8", "surrogateescape"), digest_size=12).hexdigest()
    return f"socialitsm:rl:{scope}:{digest}:{window}"


def hit(scope: str, subject: str) -> int | None:
    """Count one request of `subject` against `scope`. None while it is within the rate, else
    the whole seconds until the window ends (for Retry-After)."""
    return _count(scope, subject, add=True)


def exceeded(scope: str, subject: str) -> int | None:
    """Like `hit`, without counting: whether `subject` already used up `scope` in this window."""
    return _count(scope, subject, add=False)


def _count(scope: str, subject: str, *, add: bool) -> int | None:
    rate = rate_for(scope)
    if rate is None:
        return None
    now = time.time()
    window = int(now // rate.seconds)
    key = _key(scope, subject, window)
    cache = throttle_cache()
    try:
        if add:
            cache.add(key, 0, timeout=rate.seconds + 1)
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, timeout=rate.seconds + 1)
                count = 1
            over = count > rate.count
        else:
            over = int(cache.get(key) or 0) >= rate.count
    except Exception:
        logger.warning("rate limit %s not applied: the throttle cache cannot be reached", scope, exc_info=True)
        return None
    if not over:
        return None
    return max(1, math.ceil((window + 1) * rate.seconds - now))


@functools.lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(proxy.strip(), strict=False) for proxy in proxies if proxy.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"SOCIALITSM_TRUSTED_PROXIES: {exc}") from None


def trusted_proxies() -> tuple[Network, ...]:
    proxies = conf.TRUSTED_PROXIES
    return _networks((proxies,) if isinstance(proxies, str) else tuple(proxies))


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_address(request: Any) -> str:
    """The address a request came from, for rate limits and login lockout (see the module doc).
    Takes a Django HttpRequest or a DRF Request."""
    meta = request.META
    remote = str(meta.get("REMOTE_ADDR") or "")
    proxies = trusted_proxies()
    address = _address(remote)
    if address is None or not proxies or not any(address in network for network in proxies):
        return remote
    for hop in reversed(str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",")):
        parsed = _address(hop)
        if parsed is None:
            # Not an address our proxies write: stop at the last hop they vouched for.
            break
        address = parsed
        if not any(parsed in network for network in proxies):
            break
    return str(address)
