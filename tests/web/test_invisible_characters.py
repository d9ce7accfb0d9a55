"""Bidi controls and zero-width characters in untrusted text are neutralised where it is shown:
an override shows as [U+202E] instead of reversing what follows, hidden characters inside a
name are dropped, and joiners that build emoji or Persian words are kept."""

from __future__ import annotations

import pytest

from socialitsm.models import Incident, Post, Reply
from socialitsm.templatetags.socialitsm_web import visible

from ..factories import AuthorFactory, IncidentFactory, PostFactory, ReplyFactory

pytestmark = pytest.mark.django_db

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
FIRE_HEART = "\u2764\ufe0f\u200d\U0001f525"
PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("invoice\u202egnp.exe", "invoice[U+202E]gnp.exe"),
        ("\u202bembedded\u202c", "[U+202B]embedded[U+202C]"),
        (
            "\u2066isolate\u2069 \u2067rtl\u2069 \u2068first\u2069",
            "[U+2066]isolate[U+2069] [U+2067]rtl[U+2069] [U+2068]first[U+2069]",
        ),
        ("\u202aleft\u202d", "[U+202A]left[U+202D]"),
        ("ad\u200bmin", "admin"),
        ("ad\u200dmin", "admin"),
        ("ad\u200cmin", "admin"),
        ("p\u2060aypal", "paypal"),
        ("\ufeffhello", "hello"),
        ("\u200fabc\u200e\u061c", "abc"),
        ("\u0430\u200d\u0431", "\u0430\u0431"),
        (FAMILY, FAMILY),
        (FIRE_HEART, FIRE_HEART),
        (PERSIAN, PERSIAN),
        ("\u200d\U0001f525", "\U0001f525"),
        ("plain text", "plain text"),
        (None, ""),
    ],
)
def test_visible(text, shown):
    assert visible(text) == shown


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


@pytest.fixture
def spoofed(agent) -> Incident:
    author = AuthorFactory(name="Mar\u200bia \u202eadmin", handle="@it\u200bsupport")
    incident = IncidentFactory(
        number="INC0000777", short_description="VPN \u202edown\u202c", state=Incident.State.IN_PROGRESS, author=author
    )
    post = PostFactory(
        incident=incident,
        author=author,
        text=f"VPN down \u202egnp.exe {FAMILY}\nline two\u2066",
        triage_state=Post.Triage.INCIDENT,
    )
    ReplyFactory(
        incident=incident, post=post, agent=agent, text="Looking\u200b into it \u202e", status=Reply.Status.SENT
    )
    PostFactory(author=author, text="printer \u202ejammed", triage_state=Post.Triage.IGNORED, is_complaint=False)
    return incident


def test_incident_page_neutralises_invisible_characters(agent_client, spoofed):
    html = agent_client.get("/incidents/INC0000777/").content.decode()

    assert "VPN [U+202E]down[U+202C]</h1>" in html
    assert f"VPN down [U+202E]gnp.exe {FAMILY}<br>line two[U+2066]</div>" in html
    assert "<strong>Maria [U+202E]admin</strong>" in html
    assert '<span class="handle">@itsupport</span>' in html
    assert "Looking into it [U+202E]</div>" in html
    assert not {"\u202e", "\u202c", "\u2066", "\u200b"} & set(html)


def test_queue_and_triage_neutralise_invisible_characters(agent_client, spoofed):
    queue = agent_client.get("/").content.decode()
    triage = agent_client.get("/posts/?state=all").content.decode()

    assert "VPN [U+202E]down[U+202C]" in queue
    assert "printer [U+202E]jammed" in triage
    assert not {"\u202e", "\u200b"} & (set(queue) | set(triage))
