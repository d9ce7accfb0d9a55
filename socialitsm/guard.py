"""The public-reply guard: finds what should not be posted where everyone can read it (e-mail
addresses, phone numbers, IBANs, card numbers, long account-like digit runs). Pure functions."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, luhn

EMAIL = "email"
PHONE = "phone"
IBAN = "iban"
CARD = "card"
NUMBER = "number"

LABELS = {
    EMAIL: "an e-mail address",
    PHONE: "a phone number",
    IBAN: "a bank account number (IBAN)",
    CARD: "a payment card number",
    NUMBER: "a long number (account, customer or card number?)",
}

_EMAIL_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# Two capital letters, two check digits, then 11 to 30 capitals or digits, in groups of up to four.
_IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{1,4}){3,8}\b")
_IBAN_GROUP_RE = re.compile(r"[ ]?[A-Z0-9]{1,4}")
# Digits with single spaces, dots or dashes between them: "4111 1111 1111 1111", "030-1234567".
_DIGITS_RE = re.compile(r"(?<![\w])\d(?:[ .-]?\d)+(?![\w])")
# Links are public addresses: the ids in their paths are not the poster's numbers.
_URL_RE = re.compile(r"https?://\S+", re.IGNORECASE)
# Dates are numbers people may read in public: 2026-12-07, 07.12.2026, 12/07/2026.
_DATE_RE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[.-]\d{1,2}[.-]\d{4}")


@dataclass(frozen=True)
class Finding:
    kind: str
    text: str

    @property
    def label(self) -> str:
        return LABELS[self.kind]


def private_data_find(text: str, *, phone_region: str = "", digit_run: int = 8) -> list[Finding]:
    """What in `text` looks private, in order of appearance, each span reported once under the
    most specific kind: IBAN, e-mail, card (digits that pass the Luhn check, 13-19 of them),
    phone number (international, or national in `phone_region`), then any run of at least
    `digit_run` digits that is not a date. Numbers inside links are left alone."""
    found: list[tuple[int, Finding]] = []
    # Links first: their spans are taken, so nothing inside them is reported.
    taken: list[tuple[int, int]] = [m.span() for m in _URL_RE.finditer(text)]

    def add(start: int, end: int, kind: str) -> None:
        if any(start < t_end and end > t_start for t_start, t_end in taken):
            return
        taken.append((start, end))
        found.append((start, Finding(kind, text[start:end])))

    for match in _IBAN_RE.finditer(text):
        # The greedy match may run into what follows; the longest valid prefix of groups is the IBAN.
        ends = [match.start() + 4 + g.end() for g in _IBAN_GROUP_RE.finditer(match.group()[4:])]
        end = next((e for e in reversed(ends) if iban.is_valid(text[match.start() : e])), None)
        if end is not None:
            add(match.start(), end, IBAN)
    for match in _EMAIL_RE.finditer(text):
        add(match.start(), match.end(), EMAIL)
    for match in _DIGITS_RE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn.is_valid(digits):
            add(match.start(), match.end(), CARD)
    for number in phonenumbers.PhoneNumberMatcher(text, phone_region.upper() or None):
        add(number.start, number.end, PHONE)
    for match in _DIGITS_RE.finditer(text):
        if len(re.sub(r"\D", "", match.group())) >= digit_run and not _DATE_RE.fullmatch(match.group()):
            add(match.start(), match.end(), NUMBER)
    return [finding for _, finding in sorted(found, key=lambda item: item[0])]
