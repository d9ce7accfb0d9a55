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


@pytest.mark.django_db
def test_readyz_checks_database_and_broker(client):
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "database": "ok", "broker": "ok"})


@pytest.mark.django_db
def test_readyz_unavailable_when_the_broker_is_down(client, monkeypatch):
    monkeypatch.setattr("project.health.broker_ping", lambda: "ConnectionError: refused by redis.internal:6379")
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (
        503,
        {"status": "unavailable", "database": "ok", "broker": "unavailable"},
    )
    assert b"redis.internal" not in response.content
