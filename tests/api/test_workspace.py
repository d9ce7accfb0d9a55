"""The incident workspace in the API: internal notes, canned replies, the version check (ETag
and If-Match), the public-reply guard and the agent's signature."""

from __future__ import annotations

import pytest

from socialitsm.models import AgentProfile, Incident, IncidentEvent, IncidentNote, Post, Reply, ReplyTemplate

from ..factories import AuthorFactory, IncidentFactory, PostFactory, WatchRuleFactory

pytestmark = pytest.mark.django_db

INCIDENT = "/api/v1/incidents/INC0000801/"
NOTES = f"{INCIDENT}notes/"
REPLIES = f"{INCIDENT}replies/"
TEMPLATES = "/api/v1/reply-templates/"


@pytest.fixture
def incident() -> Incident:
    maria = AuthorFactory(handle="@maria", name="Maria")
    incident = IncidentFactory(number="INC0000801", author=maria, state=Incident.State.IN_PROGRESS)
    PostFactory(
        rule=WatchRuleFactory(), incident=incident, author=maria, triage_state=Post.Triage.INCIDENT, is_complaint=True
    )
    return incident


# -- notes -----------------------------------------------------------------------------------------


def test_agent_adds_and_lists_internal_notes(agent_api, agent, incident, fake_network):
    created = agent_api.post(NOTES, {"text": "  Caller is on the Berlin site.  "}, format="json")

    assert created.status_code == 201
    note = IncidentNote.objects.get()
    assert created.json() == {
        "id": note.pk,
        "author": {"id": agent.pk, "username": "agent.anna"},
        "text": "Caller is on the Berlin site.",
        "created_at": note.created_at.isoformat().replace("+00:00", "Z"),
    }
    listed = agent_api.get(NOTES)
    assert [n["text"] for n in listed.json()["results"]] == ["Caller is on the Berlin site."]
    event = IncidentEvent.objects.get(incident=incident, kind="note_added")
    assert (event.actor, event.message) == (agent, "Caller is on the Berlin site.")
    # Never sent to a network.
    assert fake_network.sent == []
    assert Reply.objects.count() == 0


@pytest.mark.parametrize("text", ["", "   ", "x" * 10_001])
def test_empty_or_too_long_note_is_refused(agent_api, incident, text):
    response = agent_api.post(NOTES, {"text": text}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"text"}
    assert IncidentNote.objects.count() == 0


def test_notes_need_the_agent_role(outsider_api, api, incident):
    assert outsider_api.get(NOTES).status_code == 403
    assert outsider_api.post(NOTES, {"text": "hi"}, format="json").status_code == 403
    assert api.get(NOTES).status_code == 401
    assert IncidentNote.objects.count() == 0


# -- canned replies --------------------------------------------------------------------------------


def test_lead_writes_templates_and_agents_read_them(lead_api, agent_api, lead):
    created = lead_api.post(
        TEMPLATES, {"name": "On it", "text": "Hi {name}, we are on {incident}. {signature}"}, format="json"
    )
    assert created.status_code == 201
    template = ReplyTemplate.objects.get()
    assert created.json()["name"] == "On it"
    assert template.created_by == lead

    assert [t["name"] for t in agent_api.get(TEMPLATES).json()["results"]] == ["On it"]
    changed = lead_api.patch(f"{TEMPLATES}{template.pk}/", {"text": "Hello {handle}"}, format="json")
    assert changed.status_code == 200
    template.refresh_from_db()
    assert (template.name, template.text) == ("On it", "Hello {handle}")
    assert lead_api.delete(f"{TEMPLATES}{template.pk}/").status_code == 204
    assert ReplyTemplate.objects.count() == 0


def test_agents_cannot_write_templates(agent_api):
    assert agent_api.post(TEMPLATES, {"name": "x", "text": "y"}, format="json").status_code == 403
    assert ReplyTemplate.objects.count() == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Hi {nmae}",
            "unknown variable {nmae}; the message may use {name}, {handle}, {service}, {incident}, {signature}",
        ),
        ("Hi {name.upper}", "unknown variable {name.upper}"),
        ("Hi {0}", "unknown variable {0}"),
        ("Hi {name", "stray brace"),
    ],
)
def test_unknown_template_variable_is_a_clear_error(lead_api, text, message):
    response = lead_api.post(TEMPLATES, {"name": "Broken", "text": text}, format="json")

    assert response.status_code == 400
    assert message in response.json()["text"][0]
    assert ReplyTemplate.objects.count() == 0


def test_template_names_are_unique_whatever_the_case(lead_api):
    assert lead_api.post(TEMPLATES, {"name": "On it", "text": "a"}, format="json").status_code == 201
    response = lead_api.post(TEMPLATES, {"name": "ON IT", "text": "b"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"name": ["there is already a template named 'ON IT'"]}


# -- version check ---------------------------------------------------------------------------------


def test_get_gives_the_version_as_etag_and_patch_with_it_moves_it_on(agent_api, incident):
    etag = agent_api.get(INCIDENT)["ETag"]
    assert etag == '"1"'

    response = agent_api.patch(INCIDENT, {"impact": 1}, format="json", HTTP_IF_MATCH=etag)

    assert response.status_code == 200
    assert response["ETag"] == '"2"'
    assert response.json()["version"] == 2
    incident.refresh_from_db()
    assert (incident.impact, incident.version) == (1, 2)


def test_patch_against_an_old_version_is_412_with_the_current_values(agent_api, lead, incident):
    from socialitsm.services.incidents import incident_update

    etag = agent_api.get(INCIDENT)["ETag"]
    incident_update(incident=incident, actor=lead, state=Incident.State.ON_HOLD)

    response = agent_api.patch(INCIDENT, {"state": "resolved"}, format="json", HTTP_IF_MATCH=etag)

    assert response.status_code == 412
    assert response["ETag"] == '"2"'
    assert (response.json()["state"], response.json()["version"]) == ("on_hold", 2)
    incident.refresh_from_db()
    assert (incident.state, incident.version) == ("on_hold", 2)
    assert IncidentEvent.objects.filter(incident=incident, kind="changed", field="state").count() == 1


@pytest.mark.parametrize("header", [None, "*"])
def test_patch_without_if_match_is_still_allowed(agent_api, lead, incident, header):
    from socialitsm.services.incidents import incident_update

    incident_update(incident=incident, actor=lead, urgency=1)
    extra = {"HTTP_IF_MATCH": header} if header else {}

    response = agent_api.patch(INCIDENT, {"impact": 1}, format="json", **extra)

    assert response.status_code == 200
    assert response.json()["version"] == 3


def test_if_match_that_is_no_version_is_400(agent_api, incident):
    response = agent_api.patch(INCIDENT, {"impact": 1}, format="json", HTTP_IF_MATCH='"abc"')

    assert response.status_code == 400
    assert "If-Match" in response.json()
    incident.refresh_from_db()
    assert (incident.impact, incident.version) == (3, 1)


# -- public-reply guard and signature --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Mail me at maria.k@example.com please", "email"),
        ("Call us on +49 30 901820", "phone"),
        ("Your refund goes to DE89 3704 0044 0532 0130 00", "iban"),
        ("Card 4111 1111 1111 1111 is blocked", "card"),
        ("Your customer number is 20481234", "number"),
    ],
)
def test_public_reply_with_private_data_is_refused_unless_confirmed(
    agent_api, incident, fake_network, django_capture_on_commit_callbacks, text, kind
):
    refused = agent_api.post(REPLIES, {"text": text, "visibility": "public"}, format="json")

    assert refused.status_code == 400
    body = refused.json()
    assert body["error"] == "private_data"
    assert [f["kind"] for f in body["findings"]] == [kind]
    assert "direct message" in body["detail"]
    assert Reply.objects.count() == 0

    with django_capture_on_commit_callbacks(execute=True):
        confirmed = agent_api.post(
            REPLIES, {"text": text, "visibility": "public", "confirm_public": True}, format="json"
        )
    assert confirmed.status_code == 201
    assert [m["text"] for m in fake_network.sent] == [text]


def test_direct_message_may_carry_private_data(agent_api, incident):
    response = agent_api.post(REPLIES, {"text": "Mail maria.k@example.com", "visibility": "direct"}, format="json")

    assert response.status_code == 201


def test_public_reply_carries_the_signature_and_a_direct_message_does_not(agent_api, agent, incident):
    AgentProfile.objects.create(user=agent, signature="^AA")

    public = agent_api.post(REPLIES, {"text": "We are on it.", "visibility": "public"}, format="json")
    direct = agent_api.post(REPLIES, {"text": "Which office?", "visibility": "direct"}, format="json")

    assert (public.json()["text"], direct.json()["text"]) == ("We are on it.\n^AA", "Which office?")


def test_signature_counts_against_the_networks_limit(agent_api, agent, incident, fake_network):
    AgentProfile.objects.create(user=agent, signature="^AA")
    fake_network.max_reply_chars = 20

    fits = agent_api.post(REPLIES, {"text": "x" * 16, "visibility": "public"}, format="json")
    too_long = agent_api.post(REPLIES, {"text": "x" * 17, "visibility": "public"}, format="json")

    assert fits.status_code == 201
    assert fits.json()["text"] == "x" * 16 + "\n^AA"
    assert too_long.status_code == 400
    assert too_long.json() == {"text": ["the reply is 21 characters; Replay allows 20"]}
