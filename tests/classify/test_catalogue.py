"""Service names in four languages: accents, endings, German compounds and the catalogue's own providers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from socialitsm.classify import ServiceEntry, verdict
from socialitsm.classify.catalogue import Matcher, _key_pattern, fold
from socialitsm.classify.pipeline import prepare
from socialitsm.classify.reference import LANGUAGE_ALIASES, PRODUCT_ALIASES, REFERENCE_CATALOGUE

MATCHER = Matcher(REFERENCE_CATALOGUE)


def found(text: str, lang: str | None) -> str | None:
    match = MATCHER.find(text, text.lower(), lang)
    return match.slug if match else None


@pytest.mark.parametrize(
    ("text", "lang", "slug"),
    [
        ("Ma boîte mail refuse tout depuis ce matin", "fr", "email"),
        ("Plus aucun courriel ne part, la messagerie est figée", "fr", "email"),
        ("Le réseau sans fil du 2e étage coupe toutes les dix minutes", "fr", "wifi"),
        ("Les imprimantes du bâtiment B sont encore HS", "fr", "printer"),
        ("Impossible de changer mon mot de passe, le lien expire", "fr", "sso"),
        ("Mon ordinateur portable ne démarre plus après la mise à jour", "fr", "laptop"),
        ("Le support informatique ne rappelle jamais", "fr", "helpdesk"),
        ("Mein Postfach ist voll und ich kann nichts mehr senden", "de", "email"),
        ("Das WLAN im dritten Stock bricht ständig ab", "de", "wifi"),
        ("Kennwort abgelaufen und das Zurücksetzen geht nicht", "de", "sso"),
        ("Die Drucker im Erdgeschoss drucken nur leere Seiten", "de", "printer"),
        ("Der Service-Desk hat mein Ticket ohne Lösung geschlossen", "de", "helpdesk"),
        ("La bandeja de entrada no se actualiza desde ayer", "es", "email"),
        ("La red inalámbrica de la planta 3 no va", "es", "wifi"),
        ("Otra vez la impresora atascada", "es", "printer"),
        ("No me deja cambiar la contraseña", "es", "sso"),
        ("Los portátiles nuevos no arrancan", "es", "laptop"),
        ("La mesa de ayuda no contesta desde hace una semana", "es", "helpdesk"),
    ],
)
def test_french_german_and_spanish_posts_name_their_service(text: str, lang: str, slug: str) -> None:
    result = verdict(text, lang, catalogue=REFERENCE_CATALOGUE)

    assert result.service == slug
    assert result.service_confidence == 1.0


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("la CONTRASENA no funciona", "sso"),  # no accent, other case
        ("IMPRESORAS sin tóner", "printer"),
        ("die E-Mails kommen nicht an", "email"),
        ("mes identifiants sont refusés", "sso"),
        ("Passworts", "sso"),
        ("The page where I type my company password keeps rejecting it", "sso"),
    ],
)
def test_names_match_without_accents_or_case_and_with_endings(text: str, slug: str) -> None:
    assert found(text, None) == slug


def test_reasons_show_the_words_as_written() -> None:
    result = verdict("Las impresoras del almacén no imprimen", "es", catalogue=REFERENCE_CATALOGUE)

    assert "service printer: 'impresoras'" in result.reasons


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Schon wieder ein Druckerproblem im Lager", "printer"),
        ("Mein Firmenlaptop startet nicht mehr", "laptop"),
        ("Der Netzwerkdrucker im Flur ist offline", "printer"),  # the last part of a compound names it
        ("Die Passwortänderung klappt nicht", "sso"),
    ],
)
def test_german_compounds_name_their_service(text: str, slug: str) -> None:
    assert found(text, "de") == slug
    assert found(text, "de-AT") == slug


@pytest.mark.parametrize(
    "text",
    ["my fingerprint reader", "that's blackmail", "I printed the contract", "docker build failed", "a pcs fan"],
)
def test_english_words_that_hold_a_name_are_not_compounds(text: str) -> None:
    assert found(text, "en") is None
    assert found(text, None) is None


def test_compounds_are_only_read_in_german() -> None:
    assert found("Druckerproblem", "de") == "printer"
    assert found("Druckerproblem", "fr") is None


def test_an_exact_name_wins_over_a_compound_later_in_the_post() -> None:
    assert found("Outlook hängt, und dann noch das Druckerproblem", "de") == "email"


def test_fold_keeps_the_length() -> None:
    text = "contraseña réseau Störung façade ß"

    assert fold(text) == "contrasena reseau Storung facade ß"
    assert len(fold(text)) == len(text)


def test_every_default_service_has_names_in_french_german_and_spanish() -> None:
    assert set(LANGUAGE_ALIASES) == {entry.slug for entry in REFERENCE_CATALOGUE}
    assert all(len(names) >= 3 for names in LANGUAGE_ALIASES.values())


def test_a_provider_the_catalogue_lists_is_not_another_companys_service() -> None:
    plain = Matcher(REFERENCE_CATALOGUE)
    media = Matcher((*REFERENCE_CATALOGUE, ServiceEntry("streaming", ("YouTube channel", "YouTube"))))

    assert [hit.kind for hit in prepare("YouTube is down again", plain).hits if hit.kind == "elsewhere"] == [
        "elsewhere"
    ]
    assert [hit.kind for hit in prepare("YouTube is down again", media).hits if hit.kind == "elsewhere"] == []


def _one_regex(matcher: Matcher) -> re.Pattern[str]:
    """Every alias in one alternation, longest first, as the matcher searched before it tried at
    each word start only the aliases beginning with its letter."""
    keys = sorted(matcher._groups.items(), key=lambda item: int(item[0][1:]))
    body = "|".join(f"(?P<{group}>{_key_pattern(key)})" for group, key in keys)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


def _corpus_texts() -> list[str]:
    corpus = Path(__file__).resolve().parents[2] / "socialitsm" / "classify" / "data" / "corpus"
    return [json.loads(line)["text"] for path in sorted(corpus.glob("*.jsonl")) for line in path.open()]


@pytest.mark.parametrize(
    "catalogue",
    [
        REFERENCE_CATALOGUE,
        (
            ServiceEntry("vpn", ("VPN", "GlobalProtect", "vpn client")),
            ServiceEntry("mail", ("e-mail", "E-Mail-Postfach", "mail", "mails", "Outlook Web Access", "outlook")),
            ServiceEntry("odd", ("C++ builds", ".net runtime", "-dash", "[brackets]", "ünï", "2fa")),
        ),
    ],
)
def test_search_by_first_letter_finds_what_one_regex_of_every_alias_finds(catalogue):
    matcher = Matcher(catalogue)
    reference = _one_regex(matcher)
    names = [name for entry in catalogue for name in entry.names]
    texts = [*_corpus_texts(), *names]
    # Names run together, inside words, split by punctuation, and inflected.
    texts += [f"{a} {b}s, x{a} {b}-{a}en ({a}){b}" for a, b in zip(names, reversed(names), strict=True)]
    texts += ["", " ", "vpn", "xvpn vpnx vpn!", "outlook web accesses", "2fa2fa 2fa", "c++ builds+", ".net runtime."]
    for text in texts:
        folded = fold(text.lower())
        ours, theirs = matcher._search(folded), reference.search(folded)
        assert (ours and (ours.span(), ours.lastgroup)) == (theirs and (theirs.span(), theirs.lastgroup)), text


def test_the_migration_adds_the_product_names_the_reference_catalogue_knows() -> None:
    from importlib import import_module

    migration = import_module("socialitsm.migrations.0028_catalogue_products")
    assert {slug: tuple(names) for slug, names in migration.ALIASES.items()} == PRODUCT_ALIASES


@pytest.mark.parametrize(
    ("text", "lang", "service"),
    [
        ("Concur won't load my trip report, just a blank page", "en", "erp"),
        ("Duo push keeps timing out, can't get into anything", "en", "sso"),
        ("ServiceNow is down so we can't even log tickets", "en", "helpdesk"),
        ("FortiClient disconnects every ten minutes", "en", "vpn"),
        ("Intune wiped my work phone overnight", "en", "laptop"),
        ("Zscaler blocks half the sites I need", "en", "network"),
        ("DATEV hängt seit heute früh", "de", "erp"),
        ("Zimbra me déconnecte toutes les deux minutes", "fr", "email"),
        ("Navision no deja registrar albaranes", "es", "erp"),
    ],
)
def test_a_product_name_finds_its_service(text: str, lang: str, service: str) -> None:
    assert found(text, lang) == service


@pytest.mark.parametrize(
    "text",
    ["a box of donuts in the kitchen", "sage advice from my gran", "harvest festival this weekend"],
)
def test_plain_words_are_not_product_names(text: str) -> None:
    assert found(text, "en") is None
