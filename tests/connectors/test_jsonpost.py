from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from socialitsm.connectors.jsonpost import PostFormatError, parse_payload

pytestmark = pytest.mark.django_db


def post(**overrides) -> dict:
    data = {
        "id": "p-1",
        "text": "VPN down again",
        "created_at": "2026-11-26T08:15:00Z",
        "author": {"id": "u-1", "handle": "@maria", "name": "Maria"},
    }
    data.update(overrides)
    return data


def test_minimal_post_parses():
    [parsed] = parse_payload(post())
    assert (parsed.external_id, parsed.text, parsed.author.handle) == ("p-1", "VPN down again", "@maria")
    assert parsed.posted_at == datetime(2026, 11, 26, 8, 15, tzinfo=UTC)
    assert (parsed.is_direct, parsed.language, parsed.url) == (False, "", "")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"id": ""}, "id"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 40_001}, "text"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"created_at": "2026-11-26T08:15:00"}, "created_at"),
        ({"created_at": 1764144900}, "created_at"),
        ({"author": {"handle": "@x"}}, "author.id"),
        ({"author": "maria"}, "author.non_field_errors"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"direct": "perhaps"}, "direct"),
    ],
)
def test_bad_field_is_named(overrides, field):
    with pytest.raises(PostFormatError) as info:
        parse_payload(post(**overrides))
    assert list(info.value.errors) == [field]


def test_far_future_timestamp_is_refused_but_skew_is_kept():
    skewed = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert parse_payload(post(created_at=skewed))[0].posted_at.isoformat() == skewed
    with pytest.raises(PostFormatError) as info:
        parse_payload(post(created_at=(datetime.now(UTC) + timedelta(days=2)).isoformat()))
    assert list(info.value.errors) == ["created_at"]


def test_batch_errors_name_the_item():
    with pytest.raises(PostFormatError) as info:
        parse_payload({"posts": [post(), post(id="p-2", created_at="nope"), post(id="p-3", author={})]})
    assert sorted(info.value.errors) == ["posts[1].created_at", "posts[2].author.id"]


@pytest.mark.parametrize("payload", [{"posts": []}, {"posts": "x"}, [], "text", None])
def test_payload_shape_is_checked(payload):
    with pytest.raises(PostFormatError):
        parse_payload(payload)


def test_batch_size_is_limited(settings):
    settings.SOCIALITSM_MAX_BATCH = 2
    with pytest.raises(PostFormatError, match="at most 2"):
        parse_payload({"posts": [post(id=str(n)) for n in range(3)]})


def test_odd_unicode_is_cleaned_not_refused():
    [parsed] = parse_payload(post(text="VPN\x00 down \ud800 again \u202eevil 🙄", author={"id": "u\x00-1"}))
    assert parsed.text == "VPN down \ufffd again \u202eevil 🙄"
    assert parsed.author.external_id == "u-1"
    assert parsed.raw["text"] == "VPN down \ufffd again \u202eevil 🙄"
