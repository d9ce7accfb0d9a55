"""SocialITSM as an app inside another project: settings from one SOCIALITSM dict, every route
under the prefix the host chooses, the API's policies independent of the host's REST_FRAMEWORK,
and Celery's schedule from one helper."""

from __future__ import annotations

import json
import re
from importlib import import_module

import pytest
from django.core.checks import Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse

from project.celery import app
from socialitsm.celery import beat_schedule, task_routes
from socialitsm.checks import settings_namespace_check
from socialitsm.conf import DEFAULTS, conf
from socialitsm.models import Incident
from socialitsm.signing import SIGNATURE_HEADER, sign

from .factories import ChannelFactory, IncidentFactory, WatchRuleFactory

PREFIX = "/itsm/social/"
SECRET = "whsec-prefix-0123456789"
LINK = re.compile(r'(?:href|action|src|hx-get|hx-post)="([^"]*)"')


def test_namespace_wins_over_the_flat_setting_and_the_default(settings):
    settings.SOCIALITSM = {"SITE_URL": "https://from-the-dict.example"}
    settings.SOCIALITSM_SITE_URL = "https://flat.example"
    assert conf.SITE_URL == "https://from-the-dict.example"

    settings.SOCIALITSM = {"NUMBER_PREFIX": "SOC"}
    assert conf.SITE_URL == "https://flat.example"
    assert conf.NUMBER_PREFIX == "SOC"

    del settings.SOCIALITSM_SITE_URL
    assert DEFAULTS["SITE_URL"] == conf.SITE_URL
    # A value the dict sets to something falsy is still the dict's.
    settings.SOCIALITSM = {"SPIKE_DETECTION": False}
    assert conf.SPIKE_DETECTION is False


def test_without_the_namespace_the_flat_settings_apply(settings):
    if hasattr(settings, "SOCIALITSM"):
        del settings.SOCIALITSM
    settings.SOCIALITSM_NUMBER_PREFIX = "OLD"
    assert conf.NUMBER_PREFIX == "OLD"
    with pytest.raises(AttributeError):
        conf.NO_SUCH_SETTING  # noqa: B018


def test_namespace_that_is_not_a_dict_is_refused(settings):
    settings.SOCIALITSM = ["SITE_URL"]
    with pytest.raises(ImproperlyConfigured, match="must be a dict"):
        conf.SITE_URL  # noqa: B018
    assert [(type(m), m.id) for m in settings_namespace_check()] == [(Error, "socialitsm.E010")]


def test_unknown_names_in_the_namespace_are_warned_about(settings):
    settings.SOCIALITSM = {"SITE_URL": "https://x.example", "SITE_ULR": "typo", "ENCRYPTION_KEY": []}
    messages = settings_namespace_check()
    assert [(type(m), m.id) for m in messages] == [(Warning, "socialitsm.W010")] * 2
    assert "'ENCRYPTION_KEY'" in messages[0].msg and "'SITE_ULR'" in messages[1].msg
    settings.SOCIALITSM = {"SITE_URL": "https://x.example"}
    assert settings_namespace_check() == []


@pytest.fixture
def hook(db):
    channel = ChannelFactory(slug="prefixed-hook", network="webhook", config={}, credentials={"secret": SECRET})
    WatchRuleFactory(channel=channel, name="Everything", query="")
    return channel


@pytest.mark.urls("tests.urls_prefixed")
def test_everything_mounts_under_the_hosts_prefix(hook, agent, django_capture_on_commit_callbacks):
    ingest = reverse("socialitsm-api:ingest", kwargs={"slug": hook.slug})
    assert ingest == f"{PREFIX}api/v1/ingest/prefixed-hook/"
    assert reverse("socialitsm:queue") == PREFIX
    assert reverse("socialitsm-api:incident-list") == f"{PREFIX}api/v1/incidents/"
    assert reverse("socialitsm-api:itsm-webhook", kwargs={"slug": "suite"}) == f"{PREFIX}api/v1/itsm/suite/webhook/"

    body = json.dumps(
        {
            "id": "prefix-1",
            "text": "VPN down again, third time this week, nobody can log in",
            "created_at": "2026-11-26T08:15:00Z",
            "author": {"id": "u-1", "handle": "@maria", "name": "Maria"},
            "lang": "en",
        }
    ).encode()
    with django_capture_on_commit_callbacks(execute=True):
        answer = Client().post(
            ingest, data=body, content_type="application/json", headers={SIGNATURE_HEADER: sign(SECRET, body)}
        )
    assert answer.status_code == 202
    incident = Incident.objects.get()

    anonymous = Client().get(PREFIX)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/staff/login/")

    client = Client()
    client.force_login(agent)
    queue = client.get(PREFIX)
    assert queue.status_code == 200
    links = set(LINK.findall(queue.content.decode()))
    assert f"{PREFIX}incidents/{incident.number}/" in links
    own = {link for link in links if link.startswith("/") and not link.startswith(("/static/", "/staff/"))}
    assert own and all(link.startswith(PREFIX) for link in own), sorted(links)
    # The demo project's API docs and admin are not in this URLconf: their links are left out.
    assert "/staff/logout/" in links and "API docs" not in queue.content.decode()

    page = client.get(f"{PREFIX}incidents/{incident.number}/")
    assert page.status_code == 200
    page_links = {link for link in LINK.findall(page.content.decode()) if link.startswith("/")}
    assert all(link.startswith((PREFIX, "/static/", "/staff/")) for link in page_links), sorted(page_links)

    listed = client.get(f"{PREFIX}api/v1/incidents/")
    assert listed.status_code == 200
    (row,) = listed.json()["results"]
    assert row["url"] == f"http://testserver{PREFIX}incidents/{incident.number}/"
    assert row["links"]["self"] == f"http://testserver{PREFIX}api/v1/incidents/{incident.number}/"


def test_api_keeps_its_policies_whatever_the_hosts_rest_framework_defaults(settings, agent, hook):
    # A host's URLconf is imported under the host's own settings; import ours before changing
    # them, or the demo project's docs views would be built on DRF's stock schema class.
    import_module(settings.ROOT_URLCONF)
    # DRF's own defaults: anyone may call, no pagination, the stock exception handler.
    settings.REST_FRAMEWORK = {}
    anonymous = Client().get("/api/v1/incidents/")
    assert anonymous.status_code == 401
    assert anonymous.json() == {"detail": "Authentication credentials were not provided."}
    assert Client().get("/api/v1/").status_code == 401

    client = Client()
    client.force_login(agent)
    listed = client.get("/api/v1/incidents/")
    assert listed.status_code == 200 and set(listed.json()) == {"count", "next", "previous", "results"}
    incident = IncidentFactory()
    refused = client.post(f"/api/v1/incidents/{incident.number}/assign/", data="{", content_type="application/json")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_json"


def test_one_beat_schedule_for_the_project_and_for_hosts(settings):
    app.loader.import_default_modules()
    schedule = beat_schedule()
    assert {entry["task"] for entry in schedule.values()} <= set(app.tasks)
    assert set(settings.CELERY_BEAT_SCHEDULE) == set(schedule)
    assert set(task_routes()) <= set(app.tasks)
    assert task_routes() == settings.CELERY_TASK_ROUTES
    with pytest.raises(ValueError, match="at least 1 second"):
        beat_schedule(sla_seconds=0)


def test_host_overrides_the_base_template(settings, tmp_path, agent):
    (tmp_path / "socialitsm").mkdir()
    (tmp_path / "socialitsm" / "base.html").write_text(
        "<html><body><nav>Host intranet</nav>{% block content %}{% endblock %}</body></html>"
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    client = Client()
    client.force_login(agent)
    page = client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<nav>Host intranet</nav>" in html
    assert 'class="topbar"' not in html
    # The page's own content renders inside the host's layout.
    assert "<h1>Open incidents</h1>" in html
