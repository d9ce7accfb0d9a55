"""Bad input at the API's doors: each case names the answer and what is stored afterwards.

Run on PostgreSQL, whose limits (UTC offsets under 16 hours, no NUL, jsonb without NaN) are the
ones that turned such input into 500s."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import time_machine
from django.db import connection
from rest_framework.test import APIClient

from socialitsm.connectors.webhook import SIGNATURE_HEADER, sign
from socialitsm.models import Author, Incident, IncidentEvent, Post, Reply, SlaPolicy

from ..factories import ChannelFactory, IncidentFactory, PostFactory, WatchRuleFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SECRET = "whsec-bad-input-0123456789"
URL = "/api/v1/ingest/status-hook/"
BAD_SIGNATURE = {"error": "invalid_signature", "detail": "The signature is not valid for this endpoint."}
INVALID = "Expected an ISO 8601 timestamp with a UTC offset, e.g. 2026-11-26T08:15:00Z."
NAIVE = "The timestamp has no UTC offset; add Z or +hh:mm."
OFFSET = "The UTC offset must be less than 16 hours."
EARLY = "The timestamp is before 2000-01-01."
FUTURE = "The timestamp is more than a day in the future."


class StartsWith(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.startswith(self)

    __hash__ = str.__hash__


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def post(external_id: str = "abc-1", **extra: Any) -> dict[str, Any]:
    return {
        "id": external_id,
        "text": "VPN down again, third time this week",
        "created_at": "2026-11-26T08:15:00Z",
        "author": {"id": "u-17", "handle": "@maria", "name": "Maria"},
        **extra,
    }


def dated(value: Any) -> dict[str, Any]:
    return post(created_at=value)


def raw_post(number: str) -> bytes:
    """One post whose `meta` field carries a bare JSON number as written."""
    return json.dumps(post()).encode()[:-1] + b', "meta": ' + number.encode() + b"}"


def invalid_post(field: str, message: str) -> dict[str, Any]:
    return {"error": "invalid_post", "fields": {field: [message]}}


def invalid_json(detail: str) -> dict[str, Any]:
    return {"error": "invalid_json", "detail": detail}


def at(*args: int, offset: timedelta = timedelta(0)) -> datetime:
    return datetime(*args, tzinfo=timezone(offset)).astimezone(UTC)


# id, body (a JSON-able payload or raw bytes), status, answer, stored [(external id, posted at)];
# optional: url, content_type, settings.
INGEST_CASES: list[tuple[Any, ...]] = [
    # Dates: parseable, offset PostgreSQL accepts, from 2000 to a day ahead.
    ("year-1-east-of-utc", dated("0001-01-01T00:30:00+01:00"), 400, invalid_post("created_at", EARLY), []),
    ("year-1-utc", dated("0001-01-01T00:00:00Z"), 400, invalid_post("created_at", EARLY), []),
    ("year-1999", dated("1999-12-31T23:59:59Z"), 400, invalid_post("created_at", EARLY), []),
    ("year-9999-west-of-utc", dated("9999-12-31T23:30:00-01:00"), 400, invalid_post("created_at", FUTURE), []),
    ("year-9999-utc", dated("9999-12-31T23:59:59Z"), 400, invalid_post("created_at", FUTURE), []),
    ("year-0", dated("0000-06-01T00:00:00Z"), 400, invalid_post("created_at", INVALID), []),
    ("year-10000", dated("10000-01-01T00:00:00Z"), 400, invalid_post("created_at", INVALID), []),
    ("two-days-ahead", dated("2026-12-03T12:00:01Z"), 400, invalid_post("created_at", FUTURE), []),
    ("offset-plus-16h", dated("2026-11-26T08:15:00+16:00"), 400, invalid_post("created_at", OFFSET), []),
    ("offset-minus-16h", dated("2026-11-26T08:15:00-16:00"), 400, invalid_post("created_at", OFFSET), []),
    ("offset-plus-23h59", dated("2026-11-26T08:15:00+23:59"), 400, invalid_post("created_at", OFFSET), []),
    ("offset-plus-99h", dated("2026-11-26T08:15:00+99:00"), 400, invalid_post("created_at", INVALID), []),
    ("no-offset", dated("2026-11-26T08:15:00"), 400, invalid_post("created_at", NAIVE), []),
    ("date-only", dated("2026-11-26"), 400, invalid_post("created_at", NAIVE), []),
    ("month-13", dated("2026-13-01T00:00:00Z"), 400, invalid_post("created_at", INVALID), []),
    ("february-30", dated("2026-02-30T00:00:00Z"), 400, invalid_post("created_at", INVALID), []),
    ("words", dated("yesterday"), 400, invalid_post("created_at", INVALID), []),
    ("trailing-nul", dated("2026-11-26T08:15:00Z\u0000"), 400, invalid_post("created_at", INVALID), []),
    ("epoch-number", dated(1764144900), 400, invalid_post("created_at", INVALID), []),
    ("null", dated(None), 400, invalid_post("created_at", "This field may not be null."), []),
    ("padded-past-64", dated("2026-11-26T08:15:00Z" + " " * 60), 400, invalid_post("created_at", INVALID), []),
    (
        "batch-names-the-post",
        {"posts": [post("b-0"), post("b-1"), post("b-2"), post("b-3", created_at="0001-01-01T00:30:00+01:00")]},
        400,
        invalid_post("posts[3].created_at", EARLY),
        [],
    ),
    (
        "offset-plus-15h59-accepted",
        dated("2026-11-26T08:15:00+15:59"),
        202,
        {"received": 1, "created": 1, "duplicates": 0},
        [("abc-1", at(2026, 11, 26, 8, 15, offset=timedelta(hours=15, minutes=59)))],
    ),
    (
        "offset-minus-15h59-accepted",
        dated("2026-11-26T08:15:00-15:59"),
        202,
        {"received": 1, "created": 1, "duplicates": 0},
        [("abc-1", at(2026, 11, 26, 8, 15, offset=-timedelta(hours=15, minutes=59)))],
    ),
    (
        "first-instant-of-2000-accepted",
        dated("2000-01-01T00:00:00Z"),
        202,
        {"received": 1, "created": 1, "duplicates": 0},
        [("abc-1", at(2000, 1, 1))],
    ),
    (
        "a-day-ahead-accepted",
        dated("2026-12-02T12:00:00Z"),
        202,
        {"received": 1, "created": 1, "duplicates": 0},
        [("abc-1", at(2026, 12, 2, 12))],
    ),
    # Odd JSON: non-finite numbers, integers past Python's limit, deep nesting.
    ("number-1e400", raw_post("1e400"), 400, invalid_json("The body is not JSON: the number 1e400 is too large"), []),
    (
        "number-minus-1e400",
        raw_post("-1e400"),
        400,
        invalid_json("The body is not JSON: the number -1e400 is too large"),
        [],
    ),
    ("nan", raw_post("NaN"), 400, invalid_json("The body is not JSON: NaN is not valid JSON"), []),
    ("infinity", raw_post("Infinity"), 400, invalid_json("The body is not JSON: Infinity is not valid JSON"), []),
    (
        "minus-infinity",
        raw_post("-Infinity"),
        400,
        invalid_json("The body is not JSON: -Infinity is not valid JSON"),
        [],
    ),
    (
        "integer-of-5000-digits",
        raw_post("9" * 5000),
        400,
        {"error": "invalid_json", "detail": StartsWith("The body is not JSON: Exceeds the limit")},
        [],
    ),
    ("nested-65", post(meta=nested(64)), 400, invalid_json("The body is not JSON: nested deeper than 64 levels"), []),
    ("nested-500", post(meta=nested(500)), 400, invalid_json("The body is not JSON: nested deeper than 64 levels"), []),
    ("nested-800", post(meta=nested(800)), 400, invalid_json("The body is not JSON: nested deeper than 64 levels"), []),
    (
        "nested-100000",
        b"[" * 100_000 + b"]" * 100_000,
        400,
        invalid_json("The body is not JSON: nested deeper than 64 levels"),
        [],
    ),
    (
        "nested-63-accepted",
        post(meta=nested(62)),
        202,
        {"received": 1, "created": 1, "duplicates": 0},
        [("abc-1", at(2026, 11, 26, 8, 15))],
    ),
    (
        "largest-finite-number-accepted",
        raw_post("1.7976931348623157e308"),
        202,
        {"received": 1, "created": 1, "duplicates": 0},
        [("abc-1", at(2026, 11, 26, 8, 15))],
    ),
    ("top-level-list", [post()], 400, invalid_post("non_field_errors", "Expected a JSON object."), []),
    ("top-level-string", "hello", 400, invalid_post("non_field_errors", "Expected a JSON object."), []),
    ("posts-not-a-list", {"posts": {"id": "x"}}, 400, invalid_post("posts", "Expected a non-empty list of posts."), []),
    ("posts-empty", {"posts": []}, 400, invalid_post("posts", "Expected a non-empty list of posts."), []),
    ("empty-body", b"", 400, invalid_json("The body is not JSON: Expecting value: line 1 column 1 (char 0)"), []),
    ("utf-16-body", json.dumps(post()).encode("utf-16"), 400, invalid_json("The body is not UTF-8."), []),
    (
        "byte-order-mark-accepted",
        b"\xef\xbb\xbf" + json.dumps(post()).encode(),
        202,
        {"received": 1, "created": 1, "duplicates": 0},
        [("abc-1", at(2026, 11, 26, 8, 15))],
    ),
    # Slugs and the trailing slash: an unknown endpoint is the documented 401, never a 404 page.
    ("unicode-slug", post(), 401, BAD_SIGNATURE, [], {"url": "/api/v1/ingest/caf%C3%A9/"}),
    ("emoji-slug-no-slash", post(), 401, BAD_SIGNATURE, [], {"url": "/api/v1/ingest/%F0%9F%98%A1"}),
    ("nul-in-slug", post(), 401, BAD_SIGNATURE, [], {"url": "/api/v1/ingest/status-hook%00/"}),
    ("lone-surrogate-escape-slug", post(), 401, BAD_SIGNATURE, [], {"url": "/api/v1/ingest/%ED%A0%80/"}),
    ("slug-of-300-characters", post(), 401, BAD_SIGNATURE, [], {"url": f"/api/v1/ingest/{'a' * 300}/"}),
    ("slug-with-space", post(), 401, BAD_SIGNATURE, [], {"url": "/api/v1/ingest/status%20hook/"}),
    (
        "no-trailing-slash-accepted",
        post(),
        202,
        {"received": 1, "created": 1, "duplicates": 0},
        [("abc-1", at(2026, 11, 26, 8, 15))],
        {"url": "/api/v1/ingest/status-hook"},
    ),
    # Content types and sizes.
    (
        "text-plain-accepted",
        post(),
        202,
        {"received": 1, "created": 1, "duplicates": 0},
        [("abc-1", at(2026, 11, 26, 8, 15))],
        {"content_type": "text/plain"},
    ),
    (
        "form-encoded",
        b"id=abc-1&text=VPN+down",
        400,
        invalid_json("The body is not JSON: Expecting value: line 1 column 1 (char 0)"),
        [],
        {"content_type": "application/x-www-form-urlencoded"},
    ),
    (
        "body-over-upload-limit",
        post(text="x" * 4096),
        413,
        {"error": "too_large", "detail": "The body is larger than this server accepts."},
        [],
        {"settings": {"DATA_UPLOAD_MAX_MEMORY_SIZE": 2048}},
    ),
    (
        "text-over-limit",
        post(text="x" * 101),
        400,
        invalid_post("text", "Text is 101 characters; the limit is 100."),
        [],
        {"settings": {"SOCIALITSM_MAX_POST_CHARS": 100}},
    ),
    (
        "batch-over-limit",
        {"posts": [post("b-1"), post("b-2"), post("b-3")]},
        400,
        invalid_post("posts", "3 posts; a batch holds at most 2."),
        [],
        {"settings": {"SOCIALITSM_MAX_BATCH": 2}},
    ),
    (
        "id-of-256-characters",
        post("x" * 256),
        400,
        invalid_post("id", "Ensure this field has no more than 255 characters."),
        [],
    ),
]


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def hook(db):
    channel = ChannelFactory(slug="status-hook", network="webhook", config={}, credentials={"secret": SECRET})
    WatchRuleFactory(channel=channel, name="Everything", query="")
    return channel


def _stored() -> list[tuple[str, datetime]]:
    return list(Post.objects.order_by("external_id").values_list("external_id", "posted_at"))


@pytest.mark.parametrize("case", [pytest.param(case, id=case[0]) for case in INGEST_CASES])
def test_ingest_bad_input(case, hook, frozen, settings, django_capture_on_commit_callbacks):
    _, body, status, answer, stored, *rest = case
    options = rest[0] if rest else {}
    for name, value in options.get("settings", {}).items():
        setattr(settings, name, value)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    with django_capture_on_commit_callbacks(execute=True):
        response = APIClient().post(
            options.get("url", URL),
            data=raw,
            content_type=options.get("content_type", "application/json"),
            headers={SIGNATURE_HEADER: sign(SECRET, raw)},
        )

    assert (response.status_code, response["Content-Type"]) == (status, "application/json")
    assert response.json() == answer
    assert _stored() == stored
    if not stored:
        assert (Author.objects.count(), Incident.objects.count()) == (0, 0)


def test_get_on_the_ingest_endpoint_is_405_json(hook):
    response = APIClient().get(URL)

    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "GET" not allowed.'}


# The incident list's datetime filters: a 400 naming the filter, never a query PostgreSQL refuses.
FILTER_CASES = [
    ("opened_before", "0001-01-01T00:30:00+01:00", 400, ["The timestamp is before 1970-01-01."]),
    ("opened_after", "1969-12-31T23:59:59Z", 400, ["The timestamp is before 1970-01-01."]),
    ("opened_after", "2026-11-26T08:15:00+16:00", 400, [OFFSET]),
    ("opened_before", "2026-11-26T08:15:00-16:00", 400, [OFFSET]),
    ("opened_before", "9999-12-31T23:59:59Z", 400, ["The timestamp is after 9999-12-30."]),
    ("opened_before", "9999-12-31T23:30:00-01:00", 400, ["The timestamp is after 9999-12-30."]),
    ("opened_before", "tomorrow", 400, [INVALID]),
    ("opened_after", "2026-02-30T00:00:00Z", 400, [INVALID]),
    ("opened_after", "2026-11-26T08:15:00\x00", 400, [INVALID]),
    ("opened_after", "2026-11-26T10:00:00+15:59", 200, ["INC0000002"]),
    ("opened_before", "2026-11-26T08:00:00", 200, ["INC0000001"]),
    ("opened_after", "2026-11-26", 200, ["INC0000002"]),
]


@pytest.mark.parametrize(("name", "value", "status", "answer"), FILTER_CASES)
def test_incident_datetime_filters(agent, name, value, status, answer):
    IncidentFactory(number="INC0000001", opened_at=datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    IncidentFactory(number="INC0000002", opened_at=datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    client = APIClient()
    client.force_authenticate(agent)

    response = client.get("/api/v1/incidents/", {name: value})

    assert response.status_code == status
    if status == 200:
        assert [row["number"] for row in response.json()["results"]] == answer
    else:
        assert response.json() == {name: answer}


# JSON bodies of the DRF endpoints: the same limits, a 400 invalid_json, nothing changed.
JSON_BODY_CASES = [
    ("nan", b'{"short_description": NaN}', "The body is not JSON: NaN is not valid JSON"),
    ("1e400", b'{"impact": 1e400}', "The body is not JSON: the number 1e400 is too large"),
    (
        "nested-500",
        json.dumps({"category": nested(500)}).encode(),
        "The body is not JSON: nested deeper than 64 levels",
    ),
    ("nested-100000", b"[" * 100_000 + b"]" * 100_000, "The body is not JSON: nested deeper than 64 levels"),
    ("truncated", b'{"impact": ', "The body is not JSON: Expecting value: line 1 column 12 (char 11)"),
    ("latin-1", b'{"category": "caf\xe9"}', "The body is not utf-8."),
]


@pytest.mark.parametrize(("body", "detail"), [pytest.param(b, d, id=i) for i, b, d in JSON_BODY_CASES])
def test_incident_patch_with_bad_json(agent, body, detail):
    incident = IncidentFactory(number="INC0000001", short_description="VPN down", impact=3)
    client = APIClient()
    client.force_authenticate(agent)

    response = client.patch(f"/api/v1/incidents/{incident.number}/", data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_json", "detail": detail}
    incident.refresh_from_db()
    assert (incident.short_description, incident.impact, incident.category) == ("VPN down", 3, "")
    assert IncidentEvent.objects.filter(incident=incident).count() == 0


def test_reply_with_nested_json_is_refused_and_not_queued(agent):
    incident = IncidentFactory(number="INC0000001", state=Incident.State.IN_PROGRESS)
    PostFactory(incident=incident)
    client = APIClient()
    client.force_authenticate(agent)
    body = json.dumps({"text": "On it", "visibility": "public", "extra": nested(100)}).encode()

    response = client.post(f"/api/v1/incidents/{incident.number}/replies/", data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_json", "detail": "The body is not JSON: nested deeper than 64 levels"}
    assert Reply.objects.count() == 0


def test_unsupported_content_type_is_415_json(agent):
    incident = IncidentFactory(number="INC0000001")
    client = APIClient()
    client.force_authenticate(agent)

    response = client.patch(f"/api/v1/incidents/{incident.number}/", data="impact=1", content_type="text/plain")

    assert response.status_code == 415
    assert response.json() == {"detail": 'Unsupported media type "text/plain" in request.'}
    assert Incident.objects.get().impact == 3


@pytest.mark.parametrize(
    ("query", "answer"),
    [
        ({"from": "0001-01-01"}, {"from": ["the date must be between 1970-01-01 and 9999-12-29"]}),
        ({"to": "9999-12-31"}, {"to": ["the date must be between 1970-01-01 and 9999-12-29"]}),
        ({"to": "10000-01-01"}, {"to": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."]}),
    ],
)
def test_sla_report_dates_out_of_range(lead, query, answer):
    client = APIClient()
    client.force_authenticate(lead)

    response = client.get("/api/v1/reports/sla/", query)

    assert response.status_code == 400
    assert response.json() == answer


def _store_posted_at(post: Post, value: str) -> None:
    # As rows were stored before dates were checked: PostgreSQL holds what Python cannot read.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE socialitsm_post SET posted_at = %s::timestamptz WHERE id = %s", [value, post.pk])


@pytest.mark.parametrize(
    ("stored", "read"),
    [
        ("0001-01-01T00:30:00+01:00", "0001-01-02T00:00:00Z"),
        ("4000-01-01T00:00:00 BC", "0001-01-02T00:00:00Z"),
        ("0001-01-01T05:00:00Z", "0001-01-02T00:00:00Z"),
        ("9999-12-31T23:30:00-01:00", "9999-12-30T00:00:00Z"),
        ("20000-01-01T00:00:00Z", "9999-12-30T00:00:00Z"),
    ],
)
def test_posts_stored_with_extreme_dates_are_listed_and_can_be_deleted(agent, stored, read):
    odd = PostFactory(external_id="odd")
    PostFactory(external_id="fine")
    _store_posted_at(odd, stored)
    client = APIClient()
    client.force_authenticate(agent)

    listed = client.get("/api/v1/posts/")
    one = client.get(f"/api/v1/posts/{odd.pk}/")

    assert listed.status_code == 200
    assert {row["external_id"]: row["posted_at"] for row in listed.json()["results"]} == {
        "odd": read,
        "fine": "2026-11-26T08:00:00Z",
    }
    assert one.json()["posted_at"] == read
    Post.objects.filter(pk=odd.pk).delete()
    assert list(Post.objects.values_list("external_id", flat=True)) == ["fine"]


ITSM_SECRET = "itsm-webhook-secret-0123"


@pytest.mark.parametrize(
    ("url", "body", "status", "answer"),
    [
        ("/api/v1/itsm/suite/webhook", b'{"id": "R-1"}', 404, "unknown_record"),
        ("/api/v1/itsm/caf%C3%A9/webhook/", b'{"id": "R-1"}', 401, "invalid_signature"),
        ("/api/v1/itsm/suite%00/webhook/", b'{"id": "R-1"}', 401, "invalid_signature"),
        ("/api/v1/itsm/suite/webhook/", b'{"id": 1e400}', 400, "invalid_json"),
        ("/api/v1/itsm/suite/webhook/", json.dumps({"id": nested(100)}).encode(), 400, "invalid_json"),
    ],
    ids=["no-trailing-slash", "unicode-slug", "nul-in-slug", "number-1e400", "nested-100"],
)
def test_itsm_webhook_bad_input(url, body, status, answer):
    from socialitsm.itsm.base import SIGNATURE_HEADER as ITSM_HEADER
    from socialitsm.itsm.base import sign as itsm_sign
    from socialitsm.models import ItsmConnection, ItsmLink

    ItsmConnection.objects.create(
        name="Suite",
        slug="suite",
        kind="fake",
        base_url="https://suite.example.com",
        credentials={"webhook_secret": ITSM_SECRET},
    )

    response = APIClient().post(
        url, data=body, content_type="application/json", headers={ITSM_HEADER: itsm_sign(ITSM_SECRET, body)}
    )

    assert (response.status_code, response["Content-Type"]) == (status, "application/json")
    assert response.json()["error"] == answer
    assert ItsmLink.objects.count() == 0


BIG = 10**30


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "answer"),
    [
        (
            "patch",
            "/api/v1/incidents/INC0000001/",
            {"assignee": BIG},
            400,
            {"assignee": [f'Invalid pk "{BIG}" - object does not exist.']},
        ),
        (
            "post",
            "/api/v1/incidents/INC0000001/replies/",
            {"text": "On it", "visibility": "public", "post": BIG},
            400,
            {"post": [f'Invalid pk "{BIG}" - object does not exist.']},
        ),
        (
            "post",
            "/api/v1/sla/policies/",
            {"name": "Huge", "priority": 1, "first_response_minutes": BIG, "resolution_minutes": 5},
            400,
            {"first_response_minutes": ["Ensure this value is less than or equal to 2147483647."]},
        ),
        ("get", f"/api/v1/posts/{BIG}/", None, 404, {"detail": "No Post matches the given query."}),
        ("get", f"/api/v1/incidents/?page={BIG}", None, 404, {"detail": "Invalid page."}),
    ],
    ids=["assignee", "reply-post", "sla-minutes", "post-pk", "page"],
)
def test_integers_past_the_database_range(lead, method, url, body, status, answer):
    incident = IncidentFactory(number="INC0000001", state=Incident.State.IN_PROGRESS)
    PostFactory(incident=incident)
    client = APIClient()
    client.force_authenticate(lead)

    response = getattr(client, method)(
        url, data=json.dumps(body) if body is not None else None, content_type="application/json"
    )

    assert response.status_code == status
    assert response.json() == answer
    incident.refresh_from_db()
    assert incident.assignee_id is None
    assert (Reply.objects.count(), IncidentEvent.objects.filter(incident=incident).count()) == (0, 0)
    assert not SlaPolicy.objects.filter(name="Huge").exists()
