"""System checks of the app's settings (`manage.py check`; `--deploy` for production)."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from .conf import conf


@register(Tags.security, deploy=True)
def encryption_keys_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Credentials and webhook secrets are stored encrypted: production needs a usable key."""
    from .crypto import _fernet

    keys = tuple(conf.ENCRYPTION_KEYS or ())
    if not keys:
        return [
            Error(
                "SOCIALITSM_ENCRYPTION_KEYS is empty: channel credentials and webhook secrets cannot be stored.",
                hint="Set it to a Fernet key: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'",
                id="socialitsm.E001",
            )
        ]
    try:
        _fernet(keys)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint="Each key is 32 bytes in urlsafe base64.", id="socialitsm.E002")]
    return []


@register(Tags.compatibility)
def settings_namespace_check(app_configs: Any = None, **kwargs: Any) -> list[Warning | Error]:
    """settings.SOCIALITSM is a dict, and each of its names is a setting SocialITSM has."""
    from .conf import NAMESPACE, unknown_names

    try:
        unknown = unknown_names()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="socialitsm.E010")]
    return [
        Warning(
            f"settings.{NAMESPACE}[{name!r}] is not a SocialITSM setting and is ignored.",
            hint="See the settings listed in socialitsm/conf.py (DEFAULTS).",
            id="socialitsm.W010",
        )
        for name in unknown
    ]
