"""Agents' own settings: the signature public replies carry, and the time zone times are shown in."""

from __future__ import annotations

import zoneinfo
from functools import cache

from socialitsm.conf import conf
from socialitsm.exceptions import ApplicationError
from socialitsm.models import AgentProfile

SIGNATURE_MAX_CHARS = 32


@cache
def time_zones() -> tuple[str, ...]:
    """The IANA zones this system knows, sorted."""
    return tuple(sorted(zoneinfo.available_timezones()))


def time_zone_valid(name: str) -> bool:
    return name in time_zones()


def profile_of(user) -> AgentProfile:
    """The user's profile; an unsaved empty one when they have none yet (nothing is written)."""
    profile = AgentProfile.objects.filter(user_id=user.pk).first()
    return profile or AgentProfile(user_id=user.pk)


def profile_update(*, user, signature: str | None = None, time_zone: str | None = None) -> AgentProfile:
    """Set the signature and/or the time zone ("" clears either).

    Raises ApplicationError for a signature that is too long or holds a line break, and for a
    time zone that is not an IANA name."""
    changes: dict[str, str] = {}
    if signature is not None:
        signature = signature.strip()
        if len(signature) > SIGNATURE_MAX_CHARS:
            raise ApplicationError(f"at most {SIGNATURE_MAX_CHARS} characters", field="signature")
        if any(ch in signature for ch in "\r\n"):
            raise ApplicationError("one line, e.g. ^AB", field="signature")
        changes["signature"] = signature
    if time_zone is not None:
        time_zone = time_zone.strip()
        if time_zone and not time_zone_valid(time_zone):
            raise ApplicationError(
                f"unknown time zone {time_zone!r}; an IANA name, e.g. Europe/Berlin", field="time_zone"
            )
        changes["time_zone"] = time_zone
    profile, _ = AgentProfile.objects.update_or_create(user_id=user.pk, defaults=changes)
    return profile


def time_zone_default(*, user, time_zone: str) -> bool:
    """Take the browser's zone as the user's when they have not chosen one; True when it was set.
    An unknown zone is ignored."""
    if not time_zone_valid(time_zone):
        return False
    profile, created = AgentProfile.objects.get_or_create(user_id=user.pk, defaults={"time_zone": time_zone})
    if created:
        return True
    return bool(AgentProfile.objects.filter(pk=profile.pk, time_zone="").update(time_zone=time_zone))


def signature_append(text: str, *, signature: str, network: str) -> str:
    """`text` signed in the network's style (SOCIALITSM_SIGNATURE_SEPARATOR); unchanged when there
    is no signature or the text already ends with it (a canned reply with {signature})."""
    text = text.rstrip()
    if not signature or text.endswith(signature):
        return text
    return f"{text}{signature_separator(network)}{signature}"


def signature_separator(network: str) -> str:
    """What goes between a public reply and the signature on `network`."""
    separators = conf.SIGNATURE_SEPARATOR
    return str(separators.get(network, separators.get("default", "\n")))
