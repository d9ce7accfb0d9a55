from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_healthz_answers_without_login_and_without_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert client.get("/").status_code == 301


@pytest.mark.django_db
def test_healthz_is_read_only(client):
    assert client.post("/healthz").status_code == 405
