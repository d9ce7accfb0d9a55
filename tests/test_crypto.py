from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from socialitsm.models import Channel

from .factories import ChannelFactory

pytestmark = pytest.mark.django_db


def raw_credentials(channel: Channel) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM socialitsm_channel WHERE id = %s", [channel.pk])
        return cursor.fetchone()[0]


def test_credentials_are_encrypted_at_rest():
    channel = ChannelFactory(credentials={"token": "very-secret-token"})
    stored = raw_credentials(channel)
    assert "very-secret-token" not in stored
    assert stored.startswith("gAAAAA")
    assert Channel.objects.get(pk=channel.pk).credentials == {"token": "very-secret-token"}


def test_key_rotation_keeps_old_secrets_readable(settings):
    channel = ChannelFactory(credentials={"token": "t"})
    settings.SOCIALITSM_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.SOCIALITSM_ENCRYPTION_KEYS]
    assert Channel.objects.get(pk=channel.pk).credentials == {"token": "t"}


def test_wrong_key_fails_loudly(settings):
    channel = ChannelFactory(credentials={"token": "t"})
    settings.SOCIALITSM_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        Channel.objects.get(pk=channel.pk)


def test_missing_keys_fail_loudly(settings):
    settings.SOCIALITSM_ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured, match="SOCIALITSM_ENCRYPTION_KEYS is empty"):
        ChannelFactory(credentials={"token": "t"})
