"""Bad input at the ingest door: what every connector may hand over, and what gets stored."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import time_machine
from django.db import connection

from socialitsm.conf import conf
from socialitsm.connectors import InboundAuthor, InboundPost
from socialitsm.connectors.bluesky import BlueskyConnector
from socialitsm.connectors.jsonpost import parse_post
from socialitsm.connectors.mastodon import MastodonConnector
from socialitsm.connectors.reddit import thing_to_inbound
from socialitsm.connectors.x import tweet_to_inbound
from socialitsm.models import Author, Channel, IngestRejection, Post, WatchRule
from socialitsm.services.ingest import posts_ingest

from ..factories import ChannelFactory, WatchRuleFactory, inbound
from ..fixtures import load_fixture

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
BAD = "\x00\x07\ud800"  # NUL, a control character and a lone surrogate
POISON_KEY = "\x00key\udfff"
DATE_KEYS = {"created_at", "createdAt", "indexedAt", "created_utc"}


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _poison(value: Any, key: str = "") -> Any:
    """`value` with NUL, a control character and a lone surrogate inside every string (dates
    excepted, which would make the parser drop the post) and a poisoned key in every object."""
    if isinstance(value, dict):
        poisoned = {k: _poison(v, k) for k, v in value.items()}
        poisoned[POISON_KEY] = BAD
        return poisoned
    if isinstance(value, list):
        return [_poison(v) for v in value]
    if isinstance(value, str) and key not in DATE_KEYS and value:
        return value[:1] + BAD + value[1:]
    return value


def _mastodon(channel: Channel) -> list[InboundPost]:
    status = _poison(load_fixture("mastodon", "status__public_hashtag"))
    post = MastodonConnector(channel).parse_status(status)
    assert post is not None
    return [post]


def _bluesky(channel: Channel) -> list[InboundPost]:
    views = _poison(load_fixture("bluesky", "search_posts__latest"))["posts"]
    posts = [BlueskyConnector(channel).parse_view(view) for view in views]
    assert None not in posts
    return [p for p in posts if p is not None]


def _x(channel: Channel) -> list[InboundPost]:
    page = _poison(load_fixture("x", "search_recent__keyword"))
    return [tweet_to_inbound(tweet, page["includes"]) for tweet in page["data"]]


def _reddit(channel: Channel) -> list[InboundPost]:
    listing = _poison(load_fixture("reddit", "search__post"))
    return [thing_to_inbound(child["kind"].replace(BAD, ""), child["data"]) for child in listing["data"]["children"]]


def _webhook(channel: Channel) -> list[InboundPost]:
    body = {
        "id": "abc-1",
        "text": "VPN down again",
        "created_at": "2026-11-26T08:15:00Z",
        "author": {"id": "u-17", "handle": "@maria", "name": "Maria"},
        "conversation_id": "c-5",
        "lang": "en",
    }
    return [parse_post(_poison(body))]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _unclean(text: str) -> bool:
    return any(c == "\x00" or c == "\x07" or "\ud800" <= c <= "\udfff" for c in text)


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [k for key, v in value.items() for k in (key, *_keys(v))]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


# The webhook's validation already cleans its fields; the networks' parsers hand them over as sent.
@pytest.mark.parametrize(
    ("network", "parse", "count", "parsed_dirty"),
    [
        ("mastodon", _mastodon, 1, True),
        ("bluesky", _bluesky, 2, True),
        ("x", _x, 1, True),
        ("reddit", _reddit, 1, True),
        ("webhook", _webhook, 1, False),
    ],
)
def test_nul_and_surrogates_in_every_field_of_every_connector_are_stored_clean(network, parse, count, parsed_dirty):
    rule = WatchRuleFactory(channel=ChannelFactory(network=network, base_url="https://social.example.com"))
    posts = parse(rule.channel)
    fields = [s for p in posts for s in (p.external_id, p.text, p.author.name, p.author.handle, *_strings(p.raw))]
    assert any(_unclean(s) for s in fields) == parsed_dirty

    result = posts_ingest(channel=rule.channel, posts=posts, rule=rule, cursor={"since": "n-2"}, process=False)

    assert (result.created, result.duplicates, result.rejected) == (count, 0, 0)
    assert Post.objects.count() == count
    assert IngestRejection.objects.count() == 0
    assert WatchRule.objects.get(pk=rule.pk).cursor == {"since": "n-2"}
    for post in Post.objects.select_related("author"):
        author = post.author
        stored = [
            post.external_id,
            post.text,
            post.url,
            post.in_reply_to,
            post.conversation_id,
            post.language,
            author.external_id,
            author.handle,
            author.name,
            author.profile_url,
            *_strings(post.raw),
        ]
        assert not [s for s in stored if _unclean(s)]
        assert post.text.strip()
        assert "key\ufffd" in _keys(post.raw), "the poisoned key is kept, cleaned"


def _name(length: int) -> InboundPost:
    return replace(inbound("p-bad"), author=InboundAuthor("u-bad", "@bad", "N" * length))


def _at(value: datetime) -> InboundPost:
    return inbound("p-bad", posted_at=value)


def _raw(raw: dict[str, Any]) -> InboundPost:
    return inbound("p-bad", raw=raw)


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


class _Opaque:
    def __str__(self) -> str:
        return "opaque\x00value"


PLUS_18 = timezone(timedelta(hours=18))
MINUS_12 = timezone(timedelta(hours=-12))

# (case, the bad post, the stored fields expected: field path -> value)
STORED = [
    ("display name of 300 characters is cut to 255", _name(300), {"author.name": "N" * 255}),
    ("display name of 255 characters is kept", _name(255), {"author.name": "N" * 255}),
    (
        "+18:00 offset is stored in UTC",
        _at(datetime(2026, 11, 26, 20, 0, tzinfo=PLUS_18)),
        {"posted_at": datetime(2026, 11, 26, 2, 0, tzinfo=UTC), "posted_at_reported": ""},
    ),
    (
        "-12:00 offset is stored in UTC",
        _at(datetime(2026, 11, 25, 20, 0, tzinfo=MINUS_12)),
        {"posted_at": datetime(2026, 11, 26, 8, 0, tzinfo=UTC), "posted_at_reported": ""},
    ),
    (
        "a post from 1950 is dated when it reached us",
        _at(datetime(1950, 1, 1, tzinfo=UTC)),
        {"posted_at": NOW, "posted_at_reported": "1950-01-01T00:00:00+00:00"},
    ),
    (
        "year 1 with a +18:00 offset is dated when it reached us",
        _at(datetime(1, 1, 1, 5, 0, tzinfo=PLUS_18)),
        {"posted_at": NOW, "posted_at_reported": "0001-01-01T05:00:00+18:00"},
    ),
    (
        "year 9999 is dated when it reached us",
        _at(datetime(9999, 12, 31, 23, 0, tzinfo=MINUS_12)),
        {"posted_at": NOW, "posted_at_reported": "9999-12-31T23:00:00-12:00"},
    ),
    (
        "two days ahead is dated when it reached us",
        _at(NOW + timedelta(days=2)),
        {"posted_at": NOW, "posted_at_reported": "2026-11-28T09:00:00+00:00"},
    ),
    (
        "23 hours ahead is clock skew and kept",
        _at(NOW + timedelta(hours=23)),
        {"posted_at": NOW + timedelta(hours=23), "posted_at_reported": ""},
    ),
    (
        "a naive time is dated when it reached us",
        _at(datetime(2026, 11, 26, 8, 0)),
        {"posted_at": NOW, "posted_at_reported": "2026-11-26 08:00:00"},
    ),
    ("lone surrogates become U+FFFD", inbound("p-bad", "VPN \ud83d down \udc00"), {"text": "VPN \ufffd down \ufffd"}),
    ("NUL in the text is dropped", inbound("p-bad", "VPN\x00 down"), {"text": "VPN down"}),
    (
        "huge text is cut to the limit",
        inbound("p-bad", "x" * (conf.MAX_POST_CHARS + 10)),
        {"text": "x" * conf.MAX_POST_CHARS},
    ),
    (
        "NUL in the raw payload's keys and values",
        _raw({"\x00k": {"n\x00": ["v\x00", "\ud800"]}}),
        {"raw": {"k": {"n": ["v", "\ufffd"]}}},
    ),
    ("NaN and infinity in the raw payload", _raw({"a": math.nan, "b": [math.inf]}), {"raw": {"a": None, "b": [None]}}),
    ("a payload nested too deep is dropped", _raw(_deep(5000)), {"raw": {}}),
    ("an object JSON cannot hold is kept as text", _raw({"at": _Opaque()}), {"raw": {"at": "opaquevalue"}}),
    ("a URL too long to store is dropped", inbound("p-bad", url="https://example.com/" + "a" * 1000), {"url": ""}),
    ("an in_reply_to too long to match is dropped", inbound("p-bad", in_reply_to="r" * 256), {"in_reply_to": ""}),
    ("a long language tag is cut", inbound("p-bad", language="en-US-x-private-tag"), {"language": "en-US-x-private-"}),
    (
        "control characters in a handle are dropped",
        replace(inbound("p-bad"), author=InboundAuthor("u-bad", "@b\x1bad\x00", " Bad ")),
        {"author.handle": "@bad", "author.name": "Bad"},
    ),
    ("NUL in the post id is dropped", inbound("p-\x00bad"), {"external_id": "p-bad"}),
]


def _stored(post: Post, path: str) -> Any:
    value: Any = post
    for part in path.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize(("case", "bad", "expected"), STORED, ids=[case for case, _, _ in STORED])
def test_bad_field_is_stored_clean_with_the_rest_of_the_batch(case, bad, expected):
    rule = WatchRuleFactory()

    result = posts_ingest(
        channel=rule.channel, posts=[bad, inbound("p-good")], rule=rule, cursor={"page": 2}, process=False
    )

    assert (result.received, result.created, result.duplicates, result.rejected) == (2, 2, 0, 0)
    assert len(result.pending_ids) == 2
    post = Post.objects.select_related("author").get(external_id="p-bad")
    assert {path: _stored(post, path) for path in expected} == expected
    assert Post.objects.filter(external_id="p-good").exists()
    assert WatchRule.objects.get(pk=rule.pk).cursor == {"page": 2}
    assert Channel.objects.get(pk=rule.channel.pk).health == Channel.Health.OK


# (case, the bad post, the error recorded)
REFUSED = [
    ("a post id of 300 characters", inbound("i" * 300), "the post id is 300 characters; at most 255 can be stored"),
    ("an empty post id", inbound("\x00"), "the post has no id"),
    (
        "an author id of 300 characters",
        replace(inbound("p-bad"), author=InboundAuthor("a" * 300)),
        "the author id is 300 characters; at most 255 can be stored",
    ),
]


@pytest.mark.parametrize(("case", "bad", "error"), REFUSED, ids=[case for case, _, _ in REFUSED])
def test_post_that_cannot_be_stored_is_set_aside_and_the_rest_goes_in(case, bad, error):
    rule = WatchRuleFactory()

    result = posts_ingest(
        channel=rule.channel, posts=[bad, inbound("p-good")], rule=rule, cursor={"page": 2}, process=False
    )

    assert (result.received, result.created, result.duplicates, result.rejected) == (2, 1, 0, 1)
    assert list(Post.objects.values_list("external_id", flat=True)) == ["p-good"]
    rejection = IngestRejection.objects.get()
    assert (rejection.channel_id, rejection.network, rejection.error) == (rule.channel.pk, "replay", error)
    assert rejection.external_id == bad.external_id.replace("\x00", "")[:255]
    assert rejection.payload["text"] == bad.text
    assert WatchRule.objects.get(pk=rule.pk).cursor == {"page": 2}
    channel = Channel.objects.get(pk=rule.channel.pk)
    assert channel.health == Channel.Health.DEGRADED
    assert channel.last_error == f"1 post(s) could not be stored and were set aside: {error}"


def test_post_the_database_refuses_is_set_aside_and_the_rest_of_the_batch_is_stored():
    rule = WatchRuleFactory()
    # A rule only the database knows: the door cannot foresee it, so the batch insert fails.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE socialitsm_post ADD CONSTRAINT test_refuse CHECK (text NOT LIKE '%%refuse me%%')")
    posts = [inbound("p-1"), inbound("p-2", "please refuse me"), inbound("p-3", author="u-3")]

    result = posts_ingest(channel=rule.channel, posts=posts, rule=rule, cursor={"page": 7}, process=False)

    assert (result.received, result.created, result.duplicates, result.rejected) == (3, 2, 0, 1)
    assert sorted(Post.objects.values_list("external_id", flat=True)) == ["p-1", "p-3"]
    assert sorted(Author.objects.values_list("external_id", flat=True)) == ["u-1", "u-3"]
    assert result.pending_ids == list(Post.objects.order_by("posted_at", "id").values_list("pk", flat=True))
    rejection = IngestRejection.objects.get()
    assert rejection.external_id == "p-2"
    assert rejection.error.startswith("IntegrityError: ")
    assert "test_refuse" in rejection.error
    assert WatchRule.objects.get(pk=rule.pk).cursor == {"page": 7}
    assert Channel.objects.get(pk=rule.channel.pk).health == Channel.Health.DEGRADED


def test_deletion_marker_with_a_nul_in_its_id_redacts_the_post():
    rule = WatchRuleFactory()
    posts_ingest(channel=rule.channel, posts=[inbound("p-1")], rule=rule, process=False)

    result = posts_ingest(
        channel=rule.channel, posts=[replace(inbound("p-\x001"), deleted=True)], rule=rule, process=False
    )

    assert (result.redacted, result.duplicates, result.rejected) == (1, 0, 0)
    assert Post.objects.get().deleted_at == NOW


SECRET_A, SECRET_B = "whsec-a-0123456789", "whsec-b-0123456789"


def _webhook_post(external_id: str, text: str, author: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"id": external_id, "text": text, "created_at": "2026-11-26T08:15:00Z", "author": author, **extra}


MARIA = {"id": "u-17", "handle": "@maria", "name": "Maria"}
MALLORY = {"id": "u-17", "handle": "@mallory", "name": "Mallory"}

# What channel B's caller sends, knowing channel A's ids (A holds post abc-1 by u-17 in an open
# incident, conversation c-5); what B's caller is answered.
CROSS_CHANNEL = [
    (
        "B reuses A's post id",
        _webhook_post("abc-1", "printer jammed, VPN down", {"id": "b-9"}),
        {"received": 1, "created": 1, "duplicates": 0},
    ),
    (
        "B renames A's author",
        _webhook_post("b-1", "nice weather today", MALLORY),
        {"received": 1, "created": 1, "duplicates": 0},
    ),
    (
        "B answers A's post to join its incident",
        _webhook_post("b-2", "VPN still down for me too", {"id": "b-9"}, in_reply_to="abc-1"),
        {"received": 1, "created": 1, "duplicates": 0},
    ),
    (
        "B posts as A's author in A's conversation",
        _webhook_post("b-3", "VPN still down", MALLORY, conversation_id="c-5"),
        {"received": 1, "created": 1, "duplicates": 0},
    ),
]


def _push(client: Any, slug: str, secret: str, payload: Any) -> Any:
    from socialitsm.connectors.webhook import SIGNATURE_HEADER, sign

    body = json.dumps(payload).encode()
    return client.post(
        f"/api/v1/ingest/{slug}/",
        data=body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: sign(secret, body)},
    )


@pytest.mark.parametrize(("case", "payload", "answer"), CROSS_CHANNEL, ids=[c for c, _, _ in CROSS_CHANNEL])
def test_one_webhook_channel_cannot_touch_another_channels_posts_authors_or_incidents(
    case, payload, answer, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    from socialitsm.models import Incident

    a = ChannelFactory(slug="hook-a", network="webhook", config={}, credentials={"secret": SECRET_A})
    b = ChannelFactory(slug="hook-b", network="webhook", config={}, credentials={"secret": SECRET_B})
    WatchRuleFactory(channel=a, query="")
    WatchRuleFactory(channel=b, query="")
    client = APIClient()
    with django_capture_on_commit_callbacks(execute=True):
        first = _push(
            client, "hook-a", SECRET_A, _webhook_post("abc-1", "VPN down again", MARIA, conversation_id="c-5")
        )
    assert first.status_code == 202
    a_post = Post.objects.select_related("author", "incident").get(channel=a)
    assert a_post.incident is not None
    a_before = Post.objects.filter(channel=a).values().get()

    with django_capture_on_commit_callbacks(execute=True):
        response = _push(client, "hook-b", SECRET_B, payload)

    assert response.status_code == 202
    assert response.json() == answer
    assert Post.objects.filter(channel=a).values().get() == a_before
    a_post.author.refresh_from_db()
    assert (a_post.author.handle, a_post.author.name) == ("@maria", "Maria")
    assert list(a_post.incident.posts.values_list("pk", flat=True)) == [a_post.pk]
    b_post = Post.objects.select_related("author").get(channel=b)
    assert (b_post.external_id, b_post.scope, b_post.author.scope) == (payload["id"], str(b.pk), str(b.pk))
    assert b_post.author_id != a_post.author_id
    assert b_post.incident_id != a_post.incident_id
    assert Incident.objects.filter(posts__channel=a).distinct().count() == 1


def test_a_webhook_channel_still_threads_its_own_posts(django_capture_on_commit_callbacks):
    from rest_framework.test import APIClient

    a = ChannelFactory(slug="hook-a", network="webhook", config={}, credentials={"secret": SECRET_A})
    ChannelFactory(slug="hook-b", network="webhook", config={}, credentials={"secret": SECRET_B})
    WatchRuleFactory(channel=a, query="")
    client = APIClient()
    with django_capture_on_commit_callbacks(execute=True):
        _push(client, "hook-a", SECRET_A, _webhook_post("abc-1", "VPN down again", MARIA))
        _push(client, "hook-a", SECRET_A, _webhook_post("abc-2", "still down", {"id": "u-2"}, in_reply_to="abc-1"))

    first, second = Post.objects.order_by("external_id")
    assert first.incident_id is not None
    assert second.incident_id == first.incident_id
