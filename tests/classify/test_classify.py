"""Baseline complaint classifier: decisions, services, urgency and hostile input."""

from __future__ import annotations

import pytest

from socialitsm.classify import ServiceEntry, Verdict, verdict, verdict_many
from socialitsm.classify.text import split_hashtag

CATALOGUE = (
    ServiceEntry("vpn", ("VPN", "GlobalProtect", "AnyConnect", "remote access")),
    ServiceEntry("email", ("Email", "Outlook", "Exchange")),
    ServiceEntry("teams", ("Microsoft Teams", "Teams")),
    ServiceEntry("printer", ("Printer", "Drucker", "imprimante")),
    ServiceEntry("helpdesk", ("Helpdesk", "Service Desk", "IT support")),
    ServiceEntry("sharepoint", ("SharePoint", "SharePoint Online", "OneDrive")),
)

COMPLAINTS = [
    ("VPN down again, third time this week", None),
    ("VPN down again, third time this week", "en"),
    ("helpdesk :(", None),
    ("Outlook keeps crashing with 0x800CCC0E #fail", "en"),
    ("Le VPN ne marche plus depuis ce matin", "fr"),
    ("Le VPN ne marche plus depuis ce matin", None),
    ("Drucker geht schon wieder nicht", "de"),
    ("Drucker geht schon wieder nicht", None),
    ("El correo no funciona otra vez", "es"),
    ("everyone is locked out, nobody can log in", "en"),
    ("I love how the VPN is down again #not", "en"),
    ("Great, another Monday with no WiFi. Thanks for nothing @ITSupport", "en"),
    ("SharePoint returns HTTP 503 for the whole floor, deadline today!!!", "en"),
]

NOT_COMPLAINTS = [
    ("Shout out to the helpdesk, fixed my laptop in 5 minutes!", None),
    ("Anyone up for lunch?", None),
    ("", None),
    ("Works now, thanks!", "en"),
    ("Merci au support, tout fonctionne à nouveau", "fr"),
    ("Congrats to the team on the product launch 🎉", "en"),
    ("Sit down and relax, it's Friday", "en"),
]

SERVICES = [
    ("VPN down again, third time this week", "vpn"),
    ("GlobalProtect keeps disconnecting", "vpn"),
    ("Outlok keeps crashing", "email"),
    ("cant open my emial since yesterday", "email"),
    ("SharePoint   Online is slow", "sharepoint"),
    ("microsoft teams call dropped", "teams"),
    ("The SERVICE DESK never answers", "helpdesk"),
    ("#VPNdown", "vpn"),
    ("Drucker geht schon wieder nicht", "printer"),
    ("Outlook and the VPN are both down", "email"),
    ("my team is great", None),
    ("This is not exchangeable", None),
    ("Anyone up for lunch?", None),
]

HOSTILE = [
    "",
    "   \n\t ",
    "😡😡😡",
    "🎉",
    ("The quarterly report is attached. " * 320) + "VPN down",
    "VPN down " * 1200,
    "VPN не работает 😡 VPN 壊れた، لا يعمل",
    "<div><b>Outlook</b> &amp; <script>alert(1)</script> down</div><br/>",
    "<<<>>> &#0; &#xd800; &nosuchentity; <unclosed",
    "\ud800",
    "\udfff VPN \x00 down \ud800",
    "\x00",
    "a\x00b\x1b[31mred\x7f",
    "#",
    "@",
    "#" + "a" * 5000,
    "https://example.com/" + "x" * 3000,
]


@pytest.mark.parametrize(("text", "lang"), COMPLAINTS)
def test_clear_complaints_are_complaints(text: str, lang: str | None) -> None:
    result = verdict(text, lang, catalogue=CATALOGUE)

    assert result.is_complaint
    assert result.score >= 0.5
    assert result.urgency in (1, 2)
    assert result.reasons


@pytest.mark.parametrize(("text", "lang"), NOT_COMPLAINTS)
def test_praise_and_noise_are_not_complaints(text: str, lang: str | None) -> None:
    result = verdict(text, lang, catalogue=CATALOGUE)

    assert not result.is_complaint
    assert result.score < 0.5
    assert result.urgency == 3


@pytest.mark.parametrize(("text", "slug"), SERVICES)
def test_service_detection(text: str, slug: str | None) -> None:
    assert verdict(text, catalogue=CATALOGUE).service == slug


def test_service_detection_accepts_a_list_catalogue() -> None:
    assert verdict("Outlook is down", catalogue=list(CATALOGUE)).service == "email"


def test_no_catalogue_means_no_service() -> None:
    assert verdict("VPN down again").service is None


@pytest.mark.parametrize(
    ("text", "urgency"),
    [
        ("everyone is locked out, nobody can log in", 1),
        ("Payroll portal throws an error, need it asap", 1),
        ("VPN down again, third time this week", 1),
        ("helpdesk :(", 2),
        ("Outlook keeps crashing with 0x800CCC0E #fail", 2),
        ("Anyone up for lunch?", 3),
        ("Shout out to the helpdesk, thanks for the quick fix!", 3),
    ],
)
def test_urgency(text: str, urgency: int) -> None:
    assert verdict(text, catalogue=CATALOGUE).urgency == urgency


def test_reasons_name_the_features_that_fired() -> None:
    result = verdict("VPN down again, third time this week", catalogue=CATALOGUE)

    assert "outage word 'down'" in result.reasons
    assert "repeat 'again'" in result.reasons
    assert "service vpn: 'VPN'" in result.reasons


def test_typo_is_reported_in_reasons() -> None:
    result = verdict("Outlok keeps crashing", catalogue=CATALOGUE)

    assert "service email: 'Outlok' (typo of 'Outlook')" in result.reasons


def test_sarcasm_turns_positive_words_into_a_complaint() -> None:
    sarcastic = verdict("Thanks for nothing, IT", "en")
    grateful = verdict("Thanks, IT", "en")

    assert sarcastic.is_complaint
    assert not grateful.is_complaint
    assert any(reason.startswith("sarcasm") for reason in sarcastic.reasons)


def test_threshold_decides_is_complaint() -> None:
    text = "Anyone up for lunch?"

    assert verdict(text, threshold=0.0).is_complaint
    assert not verdict(text, threshold=1.01).is_complaint


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_returns_a_sane_verdict(text: str) -> None:
    result = verdict(text, "en", catalogue=CATALOGUE)

    assert isinstance(result, Verdict)
    assert 0.0 <= result.score <= 1.0
    assert -1.0 <= result.sentiment <= 1.0
    assert result.is_complaint == (result.score >= 0.5)
    assert result.urgency in (1, 2, 3)
    assert result.reasons
    assert all(isinstance(reason, str) for reason in result.reasons)
    assert all(reason.encode("utf-8") for reason in result.reasons)


def test_verdict_many_matches_verdict() -> None:
    pairs = [*COMPLAINTS, *NOT_COMPLAINTS, *((text, "en") for text in HOSTILE)]

    many = verdict_many(iter(pairs), catalogue=CATALOGUE, threshold=0.4)

    assert many == [verdict(t, lang, catalogue=CATALOGUE, threshold=0.4) for t, lang in pairs]


def test_verdict_many_of_nothing() -> None:
    assert verdict_many([]) == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("VPNdown", "vpn down"),
        ("VpnDown", "vpn down"),
        ("vpndown", "vpn down"),
        ("ITsucks", "it sucks"),
        ("MSTeams", "ms teams"),
        ("epicfail", "epic fail"),
        ("not", "not"),
        ("lockdown", "lockdown"),
    ],
)
def test_split_hashtag(body: str, words: str) -> None:
    assert split_hashtag(body) == words


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("@ITSupport mail is completely DEAD, Outlook gives HTTP 500", "email"),
        ("still down. @ITSupport any ETA?", None),
        ("@Helpdesk_Team the #VPN is down", "vpn"),
    ],
)
def test_mentions_name_accounts_not_services(text: str, slug: str | None) -> None:
    assert verdict(text, catalogue=CATALOGUE).service == slug


def test_a_post_addressed_to_us_is_about_a_service_we_run_but_must_still_complain():
    elsewhere = "my flight got cancelled again, worst airline ever"
    heard = verdict(elsewhere, "en")
    sent = verdict(elsewhere, "en", addressed=True)
    assert heard.encoder and sent.encoder
    assert heard.complaint_factor == sent.complaint_factor
    assert heard.relevance_factor is not None and heard.relevance_factor < 0.5
    assert not heard.is_complaint
    assert sent.relevance_factor is not None and sent.relevance_factor >= 0.9
    assert sent.is_complaint and sent.score > heard.score
    assert "addressed to our account (a mention or a direct message)" in sent.reasons
    assert not any("addressed to our account" in reason for reason in heard.reasons)
    # Being addressed to us says what a post is about, not that it complains.
    question = verdict("@ITHelp what are your opening hours?", "en", addressed=True)
    assert not question.is_complaint


def test_addressed_flags_go_with_their_posts_across_batches():
    texts = [("my flight got cancelled again, worst airline ever", "en")] * 600
    flags = [i % 2 == 1 for i in range(600)]
    verdicts = verdict_many(texts, addressed=flags)
    assert [v.is_complaint for v in verdicts] == flags
    with pytest.raises(ValueError, match="one flag per post"):
        verdict_many(texts[:3], addressed=[True])
