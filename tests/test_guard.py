"""The public-reply guard's finder: what looks private, and what does not."""

from __future__ import annotations

import pytest

from socialitsm.guard import private_data_find


def kinds(text: str, **options) -> list[tuple[str, str]]:
    return [(f.kind, f.text) for f in private_data_find(text, **options)]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("mail maria.k+vpn@example.co.uk now", [("email", "maria.k+vpn@example.co.uk")]),
        ("ring +49 30 901820 or +1 415-555-2671", [("phone", "+49 30 901820"), ("phone", "+1 415-555-2671")]),
        ("IBAN DE89 3704 0044 0532 0130 00 please", [("iban", "DE89 3704 0044 0532 0130 00")]),
        ("GB82WEST12345698765432", [("iban", "GB82WEST12345698765432")]),
        ("card 4111 1111 1111 1111 ok", [("card", "4111 1111 1111 1111")]),
        ("card 4111-1111-1111-1111", [("card", "4111-1111-1111-1111")]),
        ("account 0012345678", [("number", "0012345678")]),
        # A card-length number failing the Luhn check is still a long number.
        ("4111 1111 1111 1112", [("number", "4111 1111 1111 1112")]),
    ],
)
def test_private_data_is_found(text, found):
    assert kinds(text) == found


def test_national_phone_numbers_need_a_region():
    assert kinds("call (415) 555-2671") == []
    assert kinds("call (415) 555-2671", phone_region="US") == [("phone", "(415) 555-2671")]


@pytest.mark.parametrize(
    "text",
    [
        "We are on it: INC0001001, fix expected at 15:30 on 2026-12-07.",
        "Planned for 07.12.2026, see https://status.example.com/incidents/12345678",
        "Thanks @maria42, the VPN is back.",
        "Try version 10.4.2 of the client",
        "Order 1234567",
        "DE89 is not an IBAN",
    ],
)
def test_ordinary_replies_are_not_flagged(text):
    assert kinds(text) == []


def test_a_shorter_digit_run_setting_flags_more():
    assert kinds("Order 1234567", digit_run=7) == [("number", "1234567")]
