"""The one outbound HTTP helper: timeouts, SSRF guard, and status codes mapped to our errors."""

from __future__ import annotations

import ipaddress
import socket
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.utils import timezone

from .conf import conf
from .exceptions import PermanentError, TransientError

_session = requests.Session()


def check_url(url: str) -> None:
    """Refuse URLs that could reach internal services (SSRF) unless private URLs are allowed.

    Raises PermanentError naming the problem."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentError(f"refusing URL {url!r}: only absolute http(s) URLs are allowed")
    if conf.ALLOW_PRIVATE_URLS:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror as exc:
        raise TransientError(f"cannot resolve {parts.hostname}: {exc}") from exc
    for info in infos:
        if not _public(ipaddress.ip_address(info[4][0])):
            raise PermanentError(f"refusing URL {url!r}: {parts.hostname} resolves to a non-public address")


# IPv6 prefixes that carry an IPv4 address in their last 32 bits: NAT64 and IPv4-compatible.
_EMBEDS_IPV4 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::/96"))


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global and unicast, and so is any IPv4 address inside an IPv6 one (a NAT64 or 6to4
    gateway would carry 64:ff9b::7f00:1 or 2002:7f00:1:: to 127.0.0.1)."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and any(address in network for network in _EMBEDS_IPV4):
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None and not _public(inner):
            return False
    return True


CREDENTIALS_FOR_NEW_HOST = "the base URL now points to another host: enter the credentials for it again"


def same_host(first: str, second: str) -> bool:
    """Whether two URLs reach the same host and port. Stored credentials may follow a changed
    URL only there: elsewhere, whoever may edit the URL could have them sent to a host of theirs."""

    def host(url: str) -> tuple[str, int | None]:
        parts = urlsplit(url)
        try:
            port = parts.port or {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(parts.scheme)
        except ValueError:
            port = None
        return (parts.hostname or "").rstrip("."), port

    return host(first) == host(second)


def header_int(response: requests.Response, name: str) -> int | None:
    """A whole-number header (rate-limit counters), or None when it is missing or not a number."""
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


def retry_at_from(response: requests.Response) -> datetime | None:
    """When the remote asked us to come back, from Retry-After (seconds or HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return timezone.now() + timedelta(seconds=int(value.strip()))
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def raise_for_response(response: requests.Response) -> None:
    """Raise the error for a status >= 400, carrying the response (see ExternalError)."""
    status = response.status_code
    if status < 400:
        return
    detail = response.text[:300].strip()
    message = f"HTTP {status} from {urlsplit(response.url).netloc}: {detail}" if detail else f"HTTP {status}"
    if status == 429 or status >= 500:
        raise TransientError(message, status=status, retry_at=retry_at_from(response), response=response)
    if status in (401, 403):
        raise PermanentError(f"authentication refused ({message})", status=status, response=response)
    raise PermanentError(message, status=status, response=response)


def request(method: str, url: str, *, timeout: float | None = None, **kwargs: Any) -> requests.Response:
    """Send one request and return the response for status < 400.

    Raises TransientError for timeouts, connection failures, 429 and 5xx (with `retry_at` from
    Retry-After where given), PermanentError for other 4xx, refused URLs and bad credentials."""
    check_url(url)
    try:
        response = _session.request(method, url, timeout=timeout or conf.HTTP_TIMEOUT, allow_redirects=False, **kwargs)
    except requests.Timeout as exc:
        raise TransientError(f"timed out calling {urlsplit(url).netloc}") from exc
    except requests.ConnectionError as exc:
        raise TransientError(f"cannot connect to {urlsplit(url).netloc}: {exc}") from exc
    except (requests.exceptions.InvalidHeader, UnicodeEncodeError):
        # requests quotes the offending header value, which is mostly a credential (a token pasted
        # with its line break): name the problem, never the value, and drop the original exception.
        raise PermanentError(
            f"bad request to {urlsplit(url).netloc}: a header value (usually a token or password from the "
            "credentials) has a line break, leading spaces or characters HTTP headers cannot carry"
        ) from None
    except requests.RequestException as exc:
        raise PermanentError(f"bad request to {urlsplit(url).netloc}: {exc}") from exc
    raise_for_response(response)
    return response
