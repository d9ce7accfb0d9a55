"""Run inside the host project (its own virtualenv, `python smoke.py`): a signed webhook post
becomes an incident an agent sees in the queue page and the API. Prints what it observed as one
JSON object on a line starting with SMOKE; tests/package/test_wheel.py asserts on it."""

from __future__ import annotations

import json
import os
import re

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hostsite.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.contrib.staticfiles import finders  # noqa: E402
from django.core.checks import run_checks  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402
from hostsite.celery import app  # noqa: E402

import socialitsm  # noqa: E402
from socialitsm.models import Incident  # noqa: E402
from socialitsm.roles import AGENT_GROUP, LEAD_GROUP  # noqa: E402
from socialitsm.signing import SIGNATURE_HEADER, sign  # noqa: E402

SECRET = "whsec-host-smoke-0123456789"
PASSWORD = "a-long-host-password-0123"
LINK = re.compile(r'(?:href|action|src|hx-get|hx-post)="(/[^"]*)"')

out: dict[str, object] = {"version": socialitsm.__version__, "module": socialitsm.__file__}
out["checks"] = sorted(message.id or "" for message in run_checks())

os.environ["SOCIALITSM_CREDENTIAL_SECRET"] = SECRET
call_command(
    "socialitsm_channel", "add", "desk-hook", "--network", "webhook", "--credential", "secret", "--rule", "mentions="
)

Member = get_user_model()
agent = Member.objects.create_user("agent@example.com", PASSWORD)
agent.groups.add(Group.objects.get(name=AGENT_GROUP))
lead = Member.objects.create_user("lead@example.com", PASSWORD, first_name="Lea", last_name="Lead")
lead.groups.add(Group.objects.get(name=LEAD_GROUP))

body = json.dumps(
    {
        "id": "host-smoke-1",
        "text": "@ITSupport the VPN keeps dropping every few minutes, can't work",
        "created_at": "2026-12-07T08:15:00Z",
        "author": {"id": "u-host", "handle": "@host_user", "name": "Host User"},
        "lang": "en",
    }
).encode()
ingest = reverse("socialitsm-api:ingest", kwargs={"slug": "desk-hook"})
out["ingest_url"] = ingest
unsigned = Client().post(ingest, data=body, content_type="application/json")
out["unsigned_status"] = unsigned.status_code
signed = Client().post(
    ingest, data=body, content_type="application/json", headers={SIGNATURE_HEADER: sign(SECRET, body)}
)
out["ingest_status"] = signed.status_code
out["ingest_answer"] = signed.json()
out["incidents"] = list(Incident.objects.values_list("number", flat=True))
number = out["incidents"][0] if out["incidents"] else "INC-none"

incidents_api = reverse("socialitsm-api:incident-list")
out["anonymous_api_status"] = Client().get(incidents_api).status_code
out["anonymous_queue_status"] = Client().get(reverse("socialitsm:queue")).status_code

agent_client = Client()
out["agent_login"] = agent_client.login(username="agent@example.com", password=PASSWORD)
queue = agent_client.get(reverse("socialitsm:queue"))
html = queue.content.decode()
out["queue_url"] = reverse("socialitsm:queue")
out["queue_status"] = queue.status_code
out["queue_shows_incident"] = number in html
out["queue_links"] = sorted(set(LINK.findall(html)))
page = agent_client.get(reverse("socialitsm:incident", kwargs={"number": number}))
out["incident_page_status"] = page.status_code
out["incident_page_offers_agent"] = "agent@example.com" in page.content.decode()

listed = agent_client.get(incidents_api)
out["api_status"] = listed.status_code
results = listed.json().get("results", []) if listed.status_code == 200 else []
out["api_numbers"] = [row["number"] for row in results]
out["api_incident_url"] = results[0]["url"] if results else None
assigned = agent_client.post(
    reverse("socialitsm-api:incident-assign", kwargs={"number": number}),
    data={"assignee": agent.pk},
    content_type="application/json",
)
out["assign_status"] = assigned.status_code
out["assignee"] = assigned.json().get("assignee") if assigned.status_code == 200 else None

lead_client = Client()
lead_client.force_login(lead)
out["sla_report_status"] = lead_client.get(reverse("socialitsm-api:report-sla")).status_code
out["sla_dashboard_status"] = lead_client.get(reverse("socialitsm:sla-dashboard")).status_code
out["agent_sla_report_status"] = agent_client.get(reverse("socialitsm-api:report-sla")).status_code

out["static_found"] = bool(finders.find("socialitsm/app.css"))
app.loader.import_default_modules()
out["tasks"] = sorted(name for name in app.tasks if name.startswith("socialitsm."))
out["beat"] = sorted(entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values())

print("SMOKE " + json.dumps(out))
