"""Encryption at rest for credentials and secrets (Fernet, keys from the environment)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from .conf import conf


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "SOCIALITSM_ENCRYPTION_KEYS is empty: set it to one or more Fernet keys "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
        )
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(f"SOCIALITSM_ENCRYPTION_KEYS holds an invalid key: {exc}") from exc


def encrypt(plaintext: str) -> str:
    return _fernet(tuple(conf.ENCRYPTION_KEYS)).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(tuple(conf.ENCRYPTION_KEYS)).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured("stored secret cannot be decrypted with SOCIALITSM_ENCRYPTION_KEYS") from exc


class EncryptedJSONField(models.TextField):
    """A dict stored as a Fernet token; never readable in the database or a dump."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> dict | None:
        if value is None or value == "":
            return {}
        return json.loads(decrypt(value))

    def to_python(self, value: Any) -> dict:
        if isinstance(value, dict):
            return value
        if not value:
            return {}
        return json.loads(decrypt(value))

    def get_prep_value(self, value: Any) -> str:
        return encrypt(json.dumps(value or {}, sort_keys=True))

    def value_to_string(self, obj: Any) -> str:
        # Dumps (dumpdata, fixtures) carry the ciphertext, not the secret.
        return self.get_prep_value(self.value_from_object(obj))
