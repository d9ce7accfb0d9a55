"""Cues for irony around a failure and for other companies' services, in four languages."""

from __future__ import annotations

import pytest

from socialitsm.classify.rules import scan


def cues(text: str, kind: str) -> list[str]:
    return [hit.cue for hit in scan(text.lower()) if hit.kind == kind]


@pytest.mark.parametrize(
    ("text", "cue"),
    [
        ("Great, the VPN is down again. Love it.", "great"),
        ("Oh wonderful, Outlook crashed for the third time today", "oh wonderful"),
        ("I just love it when the printer jams again five minutes before the board meeting", "love it when"),
        ("Thanks a lot IT, the wifi keeps dropping", "thanks a lot"),
        ("Génial, plus de réseau depuis ce matin", "génial"),
        ("J'adore quand la visio plante en pleine réunion client", "j'adore quand"),
        ("Na toll, der Drucker ist schon wieder kaputt", "na toll"),
        ("Ich liebe es, wenn das VPN mitten im Call abbricht und nicht funktioniert", "ich liebe es, wenn"),
        ("Perfecto, se ha caído el correo otra vez", "perfecto"),
        ("Me encanta cuando la VPN no funciona justo el lunes", "me encanta cuando"),
        ("Teams down again 🙄", "🙄"),
    ],
)
def test_praise_around_a_failure_is_sarcasm(text: str, cue: str) -> None:
    assert cue in cues(text, "sarcasm")


@pytest.mark.parametrize(
    "text",
    [
        "Great, the VPN works again, thanks!",
        "Thanks a lot IT, the printer is fixed",
        "Génial, merci pour la réparation du wifi",
        "Super, der Drucker geht wieder",
        "Perfecto, ya funciona el correo",
        "Great job on the new laptops 🙄",  # an eye-roll alone, with nothing failing
        "I love how fast the new Wi-Fi is",
    ],
)
def test_praise_without_a_failure_is_not_sarcasm(text: str) -> None:
    assert cues(text, "sarcasm") == []


def test_a_fix_that_broke_again_stays_sarcasm() -> None:
    assert cues("Great, fixed yesterday and broken again today", "sarcasm") == ["great"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Netflix is down again", ["netflix"]),
        ("AWS us-east-1 outage taking half the internet with it", ["aws", "us-east-1", "half the internet"]),
        ("La SNCF Connect plante encore, impossible de réserver", ["sncf connect"]),
        ("Meine Banking-App zeigt nur Fehler", ["meine banking-app"]),
        ("Se ha caído Bizum y no puedo pagar la cena", ["bizum"]),
    ],
)
def test_other_companies_services_are_cued(text: str, expected: list[str]) -> None:
    assert cues(text, "elsewhere") == expected


@pytest.mark.parametrize(
    "text", ["Outlook is down again", "the uberstunden tool", "Amazonian rainforest", "awsome job"]
)
def test_the_organisations_own_services_are_not_another_companys(text: str) -> None:
    assert cues(text, "elsewhere") == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("the VPN drops every five minutes", True),
        ("Teams calls keep dropping", True),
        ("my connection dropped out twice", True),
        ("prices dropped again", False),
        ("dropped the kids at school", False),
    ],
)
def test_a_dropping_connection_is_an_outage_cue(text, found):
    assert any(hit.kind == "outage" for hit in scan(text.lower())) is found
