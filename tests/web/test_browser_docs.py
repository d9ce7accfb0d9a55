"""The API docs pages work in a browser under the site's Content-Security-Policy."""

from __future__ import annotations

import re

import pytest

from .test_browser import agent_user, log_in, page  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _watch(page) -> list[str]:  # noqa: F811
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def test_swagger_ui_renders_the_schema_without_policy_violations(page, agent_user):  # noqa: F811
    log_in(page)
    page.wait_for_url(re.compile(r"/$"))
    errors = _watch(page)

    page.goto("/api/docs/")

    page.locator(".opblock-summary-path", has_text="/api/v1/incidents/{number}/").first.wait_for()
    assert page.locator(".opblock").count() >= 40
    assert [e for e in errors if "Content Security Policy" in e or "Refused" in e] == []


def test_redoc_renders_the_schema_without_policy_violations(page, agent_user):  # noqa: F811
    log_in(page)
    page.wait_for_url(re.compile(r"/$"))
    errors = _watch(page)

    page.goto("/api/redoc/")

    page.locator("h2", has_text="Push posts to a webhook channel").first.wait_for()
    # Redoc's font stylesheet and "powered by" logo come from third-party hosts: refused by the
    # policy on purpose (no request leaves for them); nothing else is.
    refused = [e for e in errors if "Content Security Policy" in e or "Refused" in e]
    assert [e for e in refused if "fonts.googleapis.com" not in e and "cdn.redoc.ly" not in e] == []
