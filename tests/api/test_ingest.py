from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client
from django.utils import timezone

from socialitsm.connectors.webhook import SIGNATURE_HEADER, sign
from socialitsm.models import Author, Incident, Post

from ..factories import ChannelFactory, WatchRuleFactory

SECRET = "whsec-example-0123456789"
URL = "/api/v1/ingest/status-hook/"
BAD_SIGNATURE = {"error": "invalid_signature", "detail": "The signature is not valid for this endpoint."}


def post_json(
    external_id: str = "abc-1", text: str = "VPN down again, third time this week", **extra: Any
) -> dict[str, Any]:
    return {
        "id": external_id,
        "text": text,
        "created_at": "2026-11-26T08:15:00Z",
        "author": {"id": "u-17", "handle": "@maria", "name": "Maria", "url": "https://example.com/@maria"},
        "url": f"https://example.com/@maria/{external_id}",
        "lang": "en",
        **extra,
    }


@pytest.fixture
def channel(db):
    channel = ChannelFactory(slug="status-hook", network="webhook", config={}, credentials={"secret": SECRET})
    WatchRuleFactory(channel=channel, name="Everything", query="")
    return channel


@pytest.fixture
def push(api, django_capture_on_commit_callbacks):
    def push(payload: Any, *, url: str = URL, secret: str | None = SECRET, raw: bytes | None = None):
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {SIGNATURE_HEADER: sign(secret, body)} if secret is not None else {}
        with django_capture_on_commit_callbacks(execute=True):
            return api.post(url, data=body, content_type="application/json", headers=headers)

    return push


def test_signed_post_is_stored_and_routed(push, channel):
    response = push(post_json())

    assert response.status_code == 202
    assert response.json() == {"received": 1, "created": 1, "duplicates": 0}
    post = Post.objects.select_related("author", "incident").get()
    assert (post.network, post.external_id, post.channel, post.rule, post.text, post.url, post.language) == (
        "webhook",
        "abc-1",
        channel,
        channel.rules.get(),
        "VPN down again, third time this week",
        "https://example.com/@maria/abc-1",
        "en",
    )
    assert post.posted_at == datetime(2026, 11, 26, 8, 15, tzinfo=UTC)
    assert (post.author.external_id, post.author.handle, post.author.name, post.author.profile_url) == (
        "u-17",
        "@maria",
        "Maria",
        "https://example.com/@maria",
    )
    assert (post.is_complaint, post.triage_state, post.detected_service.slug) == (True, "incident", "vpn")
    assert Incident.objects.get() == post.incident
    assert post.incident.service.slug == "vpn"


def test_channel_without_rule_still_ingests(push, channel):
    channel.rules.all().delete()

    response = push(post_json())

    assert response.status_code == 202
    assert Post.objects.get().rule is None


def test_disabled_rule_is_not_used(push, channel):
    channel.rules.update(enabled=False)
    enabled = WatchRuleFactory(channel=channel, name="Second")

    response = push(post_json())

    assert response.status_code == 202
    assert Post.objects.get().rule == enabled


def test_batch_is_stored(push, channel):
    response = push(
        {"posts": [post_json("b-1"), post_json("b-2", "printer jammed"), post_json("b-3", "thanks all, works now")]}
    )

    assert response.status_code == 202
    assert response.json() == {"received": 3, "created": 3, "duplicates": 0}
    assert sorted(Post.objects.values_list("external_id", flat=True)) == ["b-1", "b-2", "b-3"]
    assert Author.objects.count() == 1


def test_resent_posts_are_counted_as_duplicates_and_not_doubled(push, channel):
    thread = {"conversation_id": "c-1"}
    push({"posts": [post_json("d-1", **thread), post_json("d-2", "still no VPN", **thread)]})

    response = push(
        {
            "posts": [
                post_json("d-1", **thread),
                post_json("d-2", "still no VPN", **thread),
                post_json("d-3", "VPN?? hello??", **thread),
            ]
        }
    )

    assert response.status_code == 202
    assert response.json() == {"received": 3, "created": 1, "duplicates": 2}
    assert sorted(Post.objects.values_list("external_id", flat=True)) == ["d-1", "d-2", "d-3"]
    incident = Incident.objects.get()
    assert sorted(incident.posts.values_list("external_id", flat=True)) == ["d-1", "d-2", "d-3"]


def test_a_post_sent_again_with_a_later_edit_time_takes_the_new_text(push, channel, time_machine):
    time_machine.move_to(datetime(2026, 11, 26, 10, 0, tzinfo=UTC), tick=False)
    push(post_json())

    response = push(post_json(text="VPN down again, fourth time", edited_at="2026-11-26T09:20:00+01:00"))
    again = push(post_json(text="VPN down again, fourth time", edited_at="2026-11-26T08:20:00Z"))

    assert (response.status_code, again.status_code) == (202, 202)
    assert response.json() == {"received": 1, "created": 0, "duplicates": 0, "edited": 1}
    assert again.json() == {"received": 1, "created": 0, "duplicates": 1}
    post = Post.objects.get()
    assert (post.text, post.edited_at) == ("VPN down again, fourth time", datetime(2026, 11, 26, 8, 20, tzinfo=UTC))
    assert list(post.revisions.values_list("text", "recorded_at")) == [
        ("VPN down again, third time this week", datetime(2026, 11, 26, 10, 0, tzinfo=UTC))
    ]


@pytest.mark.parametrize("edited_at", ["2026-11-26T08:20:00", "yesterday", 1795681503])
def test_an_edit_time_without_offset_or_unreadable_is_refused(push, channel, edited_at):
    response = push(post_json(edited_at=edited_at))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_post"
    assert list(response.json()["fields"]) == ["edited_at"]
    assert Post.objects.count() == 0


def test_resending_one_post_changes_nothing(push, channel):
    push(post_json())
    stored = Post.objects.values().get()

    response = push(post_json(text="edited text"))

    assert response.status_code == 202
    assert response.json() == {"received": 1, "created": 0, "duplicates": 1}
    assert Post.objects.values().get() == stored
    assert Incident.objects.count() == 1


@pytest.mark.parametrize(
    ("url", "secret", "expected"),
    [
        (URL, None, {"error": "invalid_signature", "detail": "The X-SocialITSM-Signature header is missing."}),
        (URL, "not-the-secret", BAD_SIGNATURE),
        ("/api/v1/ingest/no-such-hook/", SECRET, BAD_SIGNATURE),
        ("/api/v1/ingest/desk-fake/", SECRET, BAD_SIGNATURE),
        ("/api/v1/ingest/no-secret/", "", BAD_SIGNATURE),
    ],
    ids=["unsigned", "wrong-signature", "unknown-slug", "not-a-webhook-channel", "channel-without-secret"],
)
def test_unauthenticated_push_is_refused(push, channel, url, secret, expected):
    ChannelFactory(slug="desk-fake", credentials={"secret": SECRET})
    ChannelFactory(slug="no-secret", network="webhook", config={}, credentials={})

    response = push(post_json(), url=url, secret=secret)

    assert response.status_code == 401
    assert response.json() == expected
    assert response.headers["WWW-Authenticate"] == 'X-SocialITSM-Signature realm="ingest"'
    assert Post.objects.count() == 0


def test_push_to_a_disabled_channel_is_refused(push, channel):
    channel.enabled = False
    channel.save()

    response = push(post_json())

    assert response.status_code == 401
    assert response.json() == BAD_SIGNATURE
    assert Post.objects.count() == 0


def test_push_needs_no_csrf_token(channel, django_capture_on_commit_callbacks):
    body = json.dumps(post_json()).encode()
    client = Client(enforce_csrf_checks=True)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            URL, data=body, content_type="application/json", headers={SIGNATURE_HEADER: sign(SECRET, body)}
        )

    assert response.status_code == 202
    assert Post.objects.count() == 1


def test_signature_with_non_ascii_characters_is_refused(api, channel):
    # HTTP headers arrive as latin-1: a signature with such characters is wrong, not a crash.
    body = json.dumps(post_json()).encode()

    response = api.post(URL, data=body, content_type="application/json", headers={SIGNATURE_HEADER: "sha256=\xe9t\xe9"})

    assert response.status_code == 401
    assert response.json() == BAD_SIGNATURE
    assert Post.objects.count() == 0


def test_signature_of_another_body_is_refused(api, channel):
    body = json.dumps(post_json()).encode()

    response = api.post(
        URL, data=body, content_type="application/json", headers={SIGNATURE_HEADER: sign(SECRET, body + b" ")}
    )

    assert response.status_code == 401
    assert Post.objects.count() == 0


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"id": ', "The body is not JSON: Expecting value: line 1 column 8 (char 7)"),
        (b"", "The body is not JSON: Expecting value: line 1 column 1 (char 0)"),
        (b'{"id": "x", "score": NaN}', "The body is not JSON: NaN is not valid JSON"),
        (b'{"text": "caf\xe9"}', "The body is not UTF-8."),
    ],
    ids=["truncated", "empty", "nan", "latin-1"],
)
def test_malformed_json_is_refused(push, channel, raw, detail):
    response = push(None, raw=raw)

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_json", "detail": detail}
    assert Post.objects.count() == 0


def test_deeply_nested_json_is_refused(push, channel):
    response = push(None, raw=b"[" * 100_000 + b"]" * 100_000)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
    assert Post.objects.count() == 0


def test_missing_author_id_is_named(push, channel):
    payload = post_json()
    del payload["author"]["id"]

    response = push(payload)

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_post", "fields": {"author.id": ["This field is required."]}}
    assert Post.objects.count() == 0


def test_one_bad_post_rejects_the_whole_batch(push, channel):
    response = push({"posts": [post_json("b-1"), post_json("b-2", created_at="2026-11-26T08:15:00"), post_json("b-3")]})

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_post",
        "fields": {"posts[1].created_at": ["The timestamp has no UTC offset; add Z or +hh:mm."]},
    }
    assert Post.objects.count() == 0
    assert Author.objects.count() == 0


def test_text_over_the_limit_is_refused(push, channel, settings):
    settings.SOCIALITSM_MAX_POST_CHARS = 100

    response = push(post_json(text="x" * 101))

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_post",
        "fields": {"text": ["Text is 101 characters; the limit is 100."]},
    }
    assert Post.objects.count() == 0


def test_future_timestamp_is_refused(push, channel):
    future = (timezone.now() + timedelta(days=2)).isoformat()

    response = push(post_json(created_at=future))

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_post",
        "fields": {"created_at": ["The timestamp is more than a day in the future."]},
    }
    assert Post.objects.count() == 0


def test_body_over_the_upload_limit_is_refused(push, channel, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048

    response = push(post_json(text="x" * 4096))

    assert response.status_code == 413
    assert response.json() == {"error": "too_large", "detail": "The body is larger than this server accepts."}
    assert Post.objects.count() == 0


def test_odd_unicode_is_accepted_and_stored_clean(push, channel):
    text = "VPN\u0000 down \ud800 again \u202eesrever\u202c \U0001f621 " + "é" * 20_000
    body = json.dumps(post_json(text=text)).encode()
    assert b"\\ud800" in body and b"\\u0000" in body

    response = push(None, raw=body)

    assert response.status_code == 202
    assert response.json() == {"received": 1, "created": 1, "duplicates": 0}
    post = Post.objects.get()
    assert post.text == "VPN down \ufffd again \u202eesrever\u202c \U0001f621 " + "é" * 20_000
    assert post.raw["text"] == post.text


def test_ingest_is_throttled_per_channel(push, channel, settings, time_machine):
    # The limit counts in fixed one-minute windows: the clock stands still so that the three calls
    # cannot fall on both sides of a minute's turn on a slow machine.
    time_machine.move_to(datetime(2026, 11, 27, 10, 0, 20, tzinfo=UTC), tick=False)
    settings.SOCIALITSM_THROTTLE_RATES = {"ingest": "2/minute"}
    other = ChannelFactory(slug="other-hook", network="webhook", config={}, credentials={"secret": SECRET})
    WatchRuleFactory(channel=other, name="Everything", query="")
    caches["throttle"].clear()

    statuses = [push(post_json(f"t-{n}")).status_code for n in range(3)]
    elsewhere = push(post_json("o-1"), url="/api/v1/ingest/other-hook/").status_code

    caches["throttle"].clear()
    assert statuses == [202, 202, 429]
    assert elsewhere == 202
    assert Post.objects.count() == 3


def test_broker_down_still_accepts_and_keeps_posts_pending(push, channel, monkeypatch):
    from kombu.exceptions import OperationalError

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("socialitsm.tasks.posts_process_task.delay", broker_down)
    monkeypatch.setattr("socialitsm.tasks.posts_drain_task.delay", broker_down)
    response = push(post_json())
    assert response.status_code == 202
    assert Post.objects.get().triage_state == Post.Triage.PENDING
    assert Incident.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_identical_batches_sent_at_once_store_and_count_each_post_once(monkeypatch):
    import threading

    from django.db import connections
    from rest_framework.test import APIClient

    channel = ChannelFactory(slug="status-hook", network="webhook", config={}, credentials={"secret": SECRET})
    enqueued: list[int] = []
    monkeypatch.setattr("socialitsm.services.ingest.posts_enqueue_processing", enqueued.extend)
    body = json.dumps({"posts": [post_json(f"same-{n:02d}") for n in range(20)]}).encode()
    barrier = threading.Barrier(8)
    answers: list[dict[str, int]] = []
    errors: list[Exception] = []

    def send() -> None:
        try:
            barrier.wait()
            response = APIClient().post(
                URL, data=body, content_type="application/json", headers={SIGNATURE_HEADER: sign(SECRET, body)}
            )
            assert response.status_code == 202, response.content
            answers.append(response.json())
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(answers) == 8
    assert sum(a["created"] for a in answers) == 20
    assert sum(a["duplicates"] for a in answers) == 140
    assert all(a["received"] == a["created"] + a["duplicates"] == 20 for a in answers)
    assert Post.objects.filter(channel=channel).count() == 20
    # Each stored post is handed to routing once, by the request that stored it.
    assert sorted(enqueued) == sorted(Post.objects.values_list("pk", flat=True))


@pytest.mark.postgres
def test_post_the_database_refuses_is_answered_as_rejected(push, channel):
    from django.db import connection

    from socialitsm.models import IngestRejection

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE socialitsm_post ADD CONSTRAINT test_refuse CHECK (text NOT LIKE '%%refuse me%%')")

    response = push({"posts": [post_json("r-1"), post_json("r-2", "VPN down, refuse me")]})

    assert response.status_code == 202
    assert response.json() == {"received": 2, "created": 1, "duplicates": 0, "rejected": 1}
    assert list(Post.objects.values_list("external_id", flat=True)) == ["r-1"]
    assert list(IngestRejection.objects.values_list("channel", "external_id")) == [(channel.pk, "r-2")]
