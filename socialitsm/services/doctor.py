"""`manage.py socialitsm_doctor`: each check says what it looked at and, when wrong, what to fix."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from socialitsm import http
from socialitsm.broker import broker_ping
from socialitsm.conf import conf
from socialitsm.crypto import _fernet
from socialitsm.exceptions import ExternalError, PermanentError
from socialitsm.models import Channel, ItsmConnection

from .alerts import WORKER_HEARTBEAT, _expiry, heartbeat_age

# Where a network answers when its channel names no server of its own.
NETWORK_URLS = {
    "x": "https://api.x.com",
    "reddit": "https://oauth.reddit.com",
    "bluesky": "https://bsky.social",
}
# Networks that call us (or replay files): nothing to reach.
INBOUND_ONLY = {"webhook", "replay"}


@dataclass(frozen=True)
class Finding:
    what: str
    ok: bool
    detail: str


def doctor_run(*, offline: bool, debug: bool, secret_key: str) -> list[Finding]:
    findings = [*_settings(debug, secret_key), _keys()]
    keys_ok = findings[-1].ok
    if keys_ok:
        findings += list(_channels(offline))
        findings += list(_suites(offline))
    findings.append(_broker())
    findings.append(_heartbeat())
    return findings


def _settings(debug: bool, secret_key: str) -> Iterator[Finding]:
    weak = len(secret_key) < 50 or secret_key.startswith("django-insecure") or len(set(secret_key)) < 5
    yield Finding(
        "SECRET_KEY",
        not weak,
        "set, long and random" if not weak else "too short or a placeholder: set 50+ random characters",
    )
    yield Finding(
        "DEBUG", not debug, "off" if not debug else "on: never run production with DEBUG=true (it shows settings)"
    )
    if not conf.SITE_URL:
        yield Finding("SOCIALITSM_SITE_URL", False, "empty: set it so suites and chat messages link back here")


def _keys() -> Finding:
    try:
        _fernet(tuple(conf.ENCRYPTION_KEYS))
    except ImproperlyConfigured as exc:
        return Finding("SOCIALITSM_ENCRYPTION_KEYS", False, str(exc))
    return Finding("SOCIALITSM_ENCRYPTION_KEYS", True, f"{len(conf.ENCRYPTION_KEYS)} valid key(s)")


def _reachable(url: str) -> tuple[bool, str]:
    """Any HTTP answer below 500 means the host is there (401 without credentials is expected)."""
    try:
        http.request("GET", url, timeout=conf.READY_TIMEOUT)
    except PermanentError as exc:
        if exc.status is not None:
            return True, f"answers (HTTP {exc.status})"
        return False, exc.message
    except ExternalError as exc:
        return False, exc.message
    return True, "answers"


def _channels(offline: bool) -> Iterator[Finding]:
    now = timezone.now()
    for pk, slug in Channel.objects.filter(enabled=True).order_by("slug").values_list("pk", "slug"):
        what = f"channel {slug}"
        try:
            channel = Channel.objects.get(pk=pk)
        except ImproperlyConfigured:
            yield Finding(what, False, "credentials cannot be decrypted: add the key they were encrypted with")
            continue
        if channel.network not in INBOUND_ONLY and not channel.credentials:
            yield Finding(what, False, "no credentials: enter them in the admin or with socialitsm_channel")
            continue
        expires_at = _expiry(channel.credentials)
        if expires_at is not None and expires_at <= now + timedelta(days=conf.TOKEN_EXPIRY_WARN_DAYS):
            yield Finding(what, False, f"token expires {expires_at:%Y-%m-%d %H:%M} UTC: renew it")
        elif channel.health == Channel.Health.FAILING and channel.last_error_status == 401:
            yield Finding(what, False, "the network refused the credentials: enter new ones")
        else:
            yield Finding(what, True, "credentials readable")
        url = channel.base_url or NETWORK_URLS.get(channel.network, "")
        if not offline and url and channel.network not in INBOUND_ONLY:
            ok, detail = _reachable(url)
            yield Finding(f"{what} network", ok, detail if ok else f"{url} unreachable: {detail}")


def _suites(offline: bool) -> Iterator[Finding]:
    for pk, slug in ItsmConnection.objects.filter(enabled=True).order_by("slug").values_list("pk", "slug"):
        what = f"ITSM connection {slug}"
        try:
            connection = ItsmConnection.objects.get(pk=pk)
        except ImproperlyConfigured:
            yield Finding(what, False, "credentials cannot be decrypted: add the key they were encrypted with")
            continue
        if offline or connection.kind == ItsmConnection.Kind.FAKE:
            yield Finding(what, True, "credentials readable")
            continue
        ok, detail = _reachable(connection.base_url)
        yield Finding(what, ok, detail if ok else f"{connection.base_url} unreachable: {detail}")


def _broker() -> Finding:
    problem = broker_ping()
    return Finding("broker", not problem, "answers" if not problem else f"does not answer ({problem})")


def _heartbeat() -> Finding:
    age = heartbeat_age(WORKER_HEARTBEAT)
    if age is None:
        return Finding("worker", False, "no heartbeat yet: start the worker and beat (celery -A project worker -B)")
    if age.total_seconds() > conf.HEARTBEAT_STALE_SECONDS:
        return Finding("worker", False, f"last heartbeat {int(age.total_seconds())} s ago: is the worker or beat down?")
    return Finding("worker", True, f"heartbeat {int(age.total_seconds())} s ago")
