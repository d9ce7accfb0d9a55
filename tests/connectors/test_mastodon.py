"""Mastodon contract tests: documented payloads in, exact requests out, HTTP mocked at the transport."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import responses
import time_machine
from responses import matchers

from socialitsm.connectors import connector_for
from socialitsm.connectors.mastodon import MastodonConnector, status_length
from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Channel, Incident, Post, Reply, WatchRule
from socialitsm.services.channels import channel_verify
from socialitsm.services.ingest import channel_poll
from socialitsm.services.replies import replies_send_due, reply_options, reply_queue, reply_send

from ..factories import AuthorFactory, ChannelFactory, WatchRuleFactory, dead_worker_reply
from ..fixtures import load_fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public_dns")]

BASE = "https://mastodon.example"
TOKEN = "6fQ-user-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


fixture = partial(load_fixture, "mastodon")


@pytest.fixture(autouse=True)
def _on_the_fixtures_day():
    """The fixtures' posts are from 21 August 2026; a first poll keeps only the last day's posts."""
    with time_machine.travel(datetime(2026, 8, 21, 11, 50, tzinfo=UTC)):
        yield


@pytest.fixture
def channel() -> Channel:
    return ChannelFactory(
        name="Acme on Mastodon",
        slug="acme-mastodon",
        network="mastodon",
        base_url=BASE,
        handle="@acmesupport@mastodon.example",
        credentials={"access_token": TOKEN},
        config={"account_id": "110000000000000001", "acct": "acmesupport"},
    )


def _rule(channel: Channel, kind: str, query: str = "", **extra) -> WatchRule:
    return WatchRuleFactory(channel=channel, name=f"{kind} {query}".strip(), kind=kind, query=query, **extra)


def _tag_url(tag: str = "acmedown") -> str:
    return f"{BASE}/api/v1/timelines/tag/{tag}"


def _status_still_there(status_id: str = "113012345678901234") -> None:
    """What the connector asks before a public reply: does the status still exist?"""
    responses.get(f"{BASE}/api/v1/statuses/{status_id}", json=fixture("status__public_hashtag"))


def test_connector_is_registered(channel):
    assert isinstance(connector_for(channel), MastodonConnector)


@responses.activate
def test_verify_learns_the_account_post_length_and_streaming_host():
    channel = ChannelFactory.build(network="mastodon", base_url=BASE, credentials={"access_token": TOKEN}, config={})
    responses.get(
        f"{BASE}/api/v1/accounts/verify_credentials",
        json=fixture("account__verify_credentials"),
        match=[matchers.header_matcher(AUTH)],
    )
    responses.get(f"{BASE}/api/v2/instance", json=fixture("instance__v2"))
    assert channel_verify(channel=channel) == "@acmesupport@mastodon.example"
    assert channel.config == {
        "account_id": "110000000000000001",
        "acct": "acmesupport",
        "max_characters": 1000,
        "streaming_url": "wss://streaming.mastodon.example",
    }
    assert connector_for(channel).limits().max_reply_chars == 1000 - 32


@responses.activate
def test_verify_works_with_a_server_without_the_v2_instance_endpoint():
    channel = ChannelFactory.build(
        network="mastodon", base_url=BASE + "/", credentials={"access_token": TOKEN}, config={}
    )
    responses.get(f"{BASE}/api/v1/accounts/verify_credentials", json={"id": "7", "username": "alice", "acct": "alice"})
    responses.get(f"{BASE}/api/v2/instance", status=404, body="<html>Not found</html>")
    assert channel_verify(channel=channel) == "@alice@mastodon.example"
    assert channel.config == {"account_id": "7", "acct": "alice"}
    assert connector_for(channel).limits().max_reply_chars == 500 - 32


@responses.activate
def test_verify_with_a_revoked_token_says_so():
    channel = ChannelFactory.build(network="mastodon", base_url=BASE, credentials={"access_token": "old"}, config={})
    # Takahē's answer to a bad token: 400 with a plain-text body.
    responses.get(f"{BASE}/api/v1/accounts/verify_credentials", status=400, body="Invalid Bearer token")
    with pytest.raises(PermanentError) as caught:
        channel_verify(channel=channel)
    assert caught.value.message == "mastodon.example refused the access token (HTTP 400): Invalid Bearer token"


@responses.activate
def test_hashtag_poll_turns_statuses_into_posts(channel):
    rule = _rule(channel, "hashtag", "#AcmeDown")
    responses.get(
        _tag_url("AcmeDown"),
        json=[
            fixture("status__reply_with_content_warning"),
            fixture("status__boost"),
            fixture("status__public_hashtag"),
        ],
        headers={
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "298",
            "X-RateLimit-Reset": "2026-08-21T10:20:00.000000Z",
        },
        match=[matchers.query_param_matcher({"limit": "40"}), matchers.header_matcher(AUTH)],
    )
    assert channel_poll(channel=channel) == 2
    jane, bob = Post.objects.order_by("posted_at")
    assert (jane.external_id, jane.text, jane.url, jane.language, jane.is_direct, jane.in_reply_to) == (
        "113012345678901234",
        "AcmeMail has been down for an hour, can't log in #acmedown\n\nThird time this week!",
        "https://social.example/@jane/113012345678901234",
        "en",
        False,
        "",
    )
    assert (jane.author.external_id, jane.author.handle, jane.author.name, jane.author.profile_url) == (
        "109876543210987654",
        "@jane@social.example",
        "Jane Doe",
        "https://social.example/@jane",
    )
    assert jane.raw["tags"] == [{"name": "acmedown", "url": "https://mastodon.example/tags/acmedown"}]
    assert (bob.text, bob.url, bob.language, bob.in_reply_to, bob.author.handle) == (
        "CW: work rant\n\nBei mir auch, @jane!\nVPN & Mail tot #AcmeDown",
        "https://other.example/users/bob/statuses/113012346000000001",
        "de",
        "113012345678901234",
        "@bob@other.example",
    )
    assert {p.rule_id for p in (jane, bob)} == {rule.pk}
    rule.refresh_from_db()
    # Both within 10 minutes of the newest: the next poll starts again at the older one.
    assert rule.cursor == {"min_id": "113012345678901234"}
    channel.refresh_from_db()
    assert (channel.quota_remaining, channel.quota_limit, channel.requests_made) == (298, 300, 1)
    assert channel.quota_reset_at == datetime(2026, 8, 21, 10, 20, tzinfo=UTC)


@responses.activate
def test_after_downtime_the_poll_pages_forward_and_dedupes_the_overlap(channel):
    rule = _rule(channel, "hashtag", "acmedown", cursor={"min_id": "100"})
    old = fixture("status__public_hashtag")

    def status(n: int, minute: int) -> dict:
        return {**old, "id": str(1000 + n), "created_at": f"2026-08-21T11:{minute:02d}:00.000Z"}

    first_page = [status(n, n // 2) for n in range(40, 0, -1)]  # newest first, as Mastodon sends
    responses.get(_tag_url(), json=first_page, match=[matchers.query_param_matcher({"limit": "40", "min_id": "100"})])
    responses.get(
        _tag_url(),
        json=[status(41, 40), status(40, 20)],
        match=[matchers.query_param_matcher({"limit": "40", "min_id": "1040"})],
    )
    assert channel_poll(channel=channel) == 41
    rule.refresh_from_db()
    # Newest is 11:40; the newest status at least 10 minutes older is 1040 (11:20).
    assert rule.cursor == {"min_id": "1040"}
    responses.get(
        _tag_url(),
        json=[status(41, 40)],
        match=[matchers.query_param_matcher({"limit": "40", "min_id": "1040"})],
    )
    assert channel_poll(channel=channel) == 0
    assert Post.objects.count() == 41


@responses.activate
def test_mentions_and_direct_messages_go_to_their_own_rules(channel):
    mentions = _rule(channel, "mentions")
    direct = _rule(channel, "direct")
    notifications = [fixture("notification__mention_public"), fixture("notification__mention_direct")]
    responses.get(
        f"{BASE}/api/v1/notifications",
        json=notifications,
        match=[matchers.query_param_matcher({"types[]": "mention", "limit": "40"})],
    )
    assert channel_poll(channel=channel) == 2
    assert len(responses.calls) == 1  # both rules read the same notifications
    public = Post.objects.get(external_id="113012351000000002")
    dm = Post.objects.get(external_id="113012350000000001")
    assert (public.rule_id, public.is_direct, public.author.handle) == (mentions.pk, False, "@li@mastodon.example")
    assert (dm.rule_id, dm.is_direct, dm.text) == (
        direct.pk,
        True,
        "@acmesupport my mailbox is gone?? I cannot log in to AcmeMail since this morning",
    )
    mentions.refresh_from_db()
    direct.refresh_from_db()
    # Notification ids are local and in order: no rewind needed.
    assert mentions.cursor == direct.cursor == {"min_id": "34975870"}


@responses.activate
def test_search_skips_what_the_cursor_has_seen_and_sends_no_paging_parameters(channel):
    _rule(channel, "search", "acmemail down", cursor={"min_id": "113012345678900000"})
    responses.get(
        f"{BASE}/api/v2/search",
        json=fixture("search__statuses"),
        match=[
            matchers.query_param_matcher({"q": "acmemail down", "type": "statuses", "resolve": "false", "limit": "40"})
        ],
    )
    assert channel_poll(channel=channel) == 1
    assert list(Post.objects.values_list("external_id", flat=True)) == ["113012345678909999"]


def test_status_length_counts_links_and_remote_mentions_as_mastodon_does():
    text = "@jane@social.example see https://status.example.com/incidents/2026/08/21/acmemail-outage-details"
    assert status_length(text) == len("@jane see ") + 23


@responses.activate
def test_end_to_end_hashtag_post_opens_an_incident_and_the_public_reply_is_exact(
    channel, agent, django_capture_on_commit_callbacks
):
    _rule(channel, "hashtag", "acmedown")
    responses.get(_tag_url(), json=[fixture("status__public_hashtag")])
    with django_capture_on_commit_callbacks(execute=True):
        channel_poll(channel=channel)
    post = Post.objects.get()
    assert post.triage_state == Post.Triage.INCIDENT
    incident = post.incident
    _status_still_there()
    responses.post(
        f"{BASE}/api/v1/statuses",
        json=fixture("status__created_reply"),
        match=[
            matchers.json_params_matcher(
                {
                    "status": f"@jane@social.example Sorry about this. We are on it (ref {incident.number}).",
                    "visibility": "public",
                    "in_reply_to_id": "113012345678901234",
                }
            ),
            matchers.header_matcher({**AUTH, "Content-Type": "application/json"}),
        ],
    )
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_queue(
            incident=incident,
            post=post,
            text=f"Sorry about this. We are on it (ref {incident.number}).",
            visibility="public",
            agent=agent,
        )
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.SENT, "113012360000000002")
    sent = responses.calls[-1].request
    assert sent.headers["Idempotency-Key"] == str(reply.idempotency_key)


@responses.activate
def test_end_to_end_direct_message_answers_in_the_private_thread(channel, agent, django_capture_on_commit_callbacks):
    _rule(channel, "direct")
    responses.get(f"{BASE}/api/v1/notifications", json=[fixture("notification__mention_direct")])
    with django_capture_on_commit_callbacks(execute=True):
        channel_poll(channel=channel)
    post = Post.objects.get()
    assert post.is_direct and post.incident is not None
    responses.post(
        f"{BASE}/api/v1/statuses",
        json={**fixture("status__created_reply"), "visibility": "direct"},
        match=[
            matchers.json_params_matcher(
                {
                    "status": "@jane@social.example Could you send us your account email?",
                    "visibility": "direct",
                    "in_reply_to_id": "113012350000000001",
                }
            )
        ],
    )
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_queue(
            incident=post.incident,
            post=post,
            text="Could you send us your account email?",
            visibility="direct",
            agent=agent,
        )
    reply.refresh_from_db()
    assert reply.status == Reply.Status.SENT


@responses.activate
def test_a_public_post_answered_privately_starts_a_new_direct_thread(channel):
    post = _stored_post(channel)
    responses.post(
        f"{BASE}/api/v1/statuses",
        json={"id": "9"},
        match=[matchers.json_params_matcher({"status": "@jane@social.example Hi", "visibility": "direct"})],
    )
    assert connector_for(channel).reply(post, "Hi", "direct", idempotency_key="k") == "9"


@responses.activate
def test_end_to_end_a_followers_only_mention_is_answered_for_followers_only(
    channel, agent, django_capture_on_commit_callbacks
):
    _rule(channel, "mentions")
    responses.get(f"{BASE}/api/v1/notifications", json=[fixture("notification__mention_private_with_poll_and_media")])
    with django_capture_on_commit_callbacks(execute=True):
        channel_poll(channel=channel)
    post = Post.objects.get()
    assert (post.is_direct, post.raw["visibility"]) == (False, "private")
    assert post.details == [
        {
            "kind": "poll",
            "text": "Down for me too",
            "url": "",
        },
        {"kind": "poll", "text": "Works here", "url": ""},
        {
            "kind": "alt_text",
            "text": "Screenshot of the VPN portal: 502 Bad Gateway",
            "url": "https://files.mastodon.example/media_attachments/files/113/012/459/000/000/001/original/a1b2.png",
        },
        {
            "kind": "media",
            "text": "",
            "url": "https://files.mastodon.example/media_attachments/files/113/012/459/000/000/002/original/c3d4.png",
        },
    ]
    assert post.incident is not None
    options = reply_options(post)
    assert (options.public_refusal, options.direct_refusal) == ("", "")
    assert options.public_audience == (
        "Followers only: @omar@hachyderm.example and our account's followers see it. "
        "The post answered was for followers only, and a reply reaches no further."
    )
    assert options.direct_audience == "Direct message: only @omar@hachyderm.example sees it."

    _status_still_there("113012460000000001")
    responses.post(f"{BASE}/api/v1/statuses", json={**fixture("status__created_reply"), "visibility": "private"})
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_queue(
            incident=post.incident, post=post, text="We are looking into it.", visibility="public", agent=agent
        )
    reply.refresh_from_db()
    assert reply.status == Reply.Status.SENT
    assert json.loads(responses.calls[-1].request.body) == {
        "status": "@omar@hachyderm.example We are looking into it.",
        "visibility": "private",
        "in_reply_to_id": "113012460000000001",
    }


@pytest.mark.parametrize(
    ("configured", "original", "sent"),
    [
        ("public", "public", "public"),
        ("public", "unlisted", "unlisted"),
        ("public", "private", "private"),
        ("unlisted", "public", "unlisted"),
        ("unlisted", "unlisted", "unlisted"),
        ("unlisted", "private", "private"),
        ("public", "local", "private"),  # a fork's visibility we do not know: followers only
    ],
)
@responses.activate
def test_a_public_reply_never_reaches_further_than_the_post_it_answers(channel, configured, original, sent):
    post = _stored_post(channel, visibility=original)
    channel.config["reply_visibility"] = configured
    responses.post(f"{BASE}/api/v1/statuses", json={"id": "11"})
    assert connector_for(channel).reply(post, "On it", "public", idempotency_key="k") == "11"
    assert json.loads(responses.calls[0].request.body) == {
        "status": "@jane@social.example On it",
        "visibility": sent,
        "in_reply_to_id": "113012345678901234",
    }


@responses.activate
def test_a_direct_message_is_never_answered_in_public(channel, agent):
    post = _stored_post(channel, visibility="direct")
    connector = connector_for(channel)
    refusal = "This is a direct message on Mastodon: answer it with a direct message."
    assert connector.reply_refusal(post, "public") == refusal
    assert reply_options(post).public_refusal == refusal
    with pytest.raises(PermanentError, match="answer it with a direct message"):
        connector.reply(post, "On it", "public", idempotency_key="k")
    assert len(responses.calls) == 0
    responses.post(f"{BASE}/api/v1/statuses", json={"id": "12"})
    assert connector.reply(post, "On it", "direct", idempotency_key="k") == "12"
    assert json.loads(responses.calls[0].request.body)["visibility"] == "direct"


QUOTED = {
    "kind": "quote",
    "text": "VPN down for everyone at the Leeds office",
    "url": "https://other.example/@bob/113012400000000000",
}


@pytest.mark.parametrize(
    ("name", "details"),
    [
        ("status__quote_accepted", [QUOTED]),
        ("status__quote_legacy_fork", [QUOTED]),
        ("status__quote_pending", []),  # not approved by its author (yet): nothing to show
        ("status__public_hashtag", []),
    ],
)
@responses.activate
def test_a_quoted_status_becomes_a_detail_and_is_classified_with_the_text(
    channel, name, details, django_capture_on_commit_callbacks
):
    _rule(channel, "hashtag", "acmedown")
    responses.get(_tag_url(), json=[fixture(name)])
    with django_capture_on_commit_callbacks(execute=True):
        channel_poll(channel=channel)
    post = Post.objects.select_related("detected_service").get()
    assert post.details == details
    if name != "status__public_hashtag":
        assert post.text == "this, again #acmedown"
        assert (post.detected_service.slug if post.detected_service else None) == ("vpn" if details else None)


def _stored_post(channel: Channel, visibility: str = "public") -> Post:
    from ..factories import PostFactory

    author = AuthorFactory(network="mastodon", external_id="109876543210987654", handle="@jane@social.example")
    return PostFactory(
        rule=_rule(channel, "hashtag", "acmedown"),
        external_id="113012345678901234",
        author=author,
        raw={"id": "113012345678901234", "visibility": visibility},
        is_direct=visibility == "direct",
    )


@responses.activate
def test_a_reply_that_already_mentions_the_author_is_sent_as_written(channel):
    post = _stored_post(channel)
    channel.config["reply_visibility"] = "unlisted"
    responses.post(
        f"{BASE}/api/v1/statuses",
        json={"id": "10"},
        match=[
            matchers.json_params_matcher(
                {"status": "Hi @Jane@social.example!", "visibility": "unlisted", "in_reply_to_id": "113012345678901234"}
            )
        ],
    )
    assert connector_for(channel).reply(post, "Hi @Jane@social.example!", "public", idempotency_key="k") == "10"


def _poll_error(channel: Channel, **response: Any) -> Channel:
    rule = _rule(channel, "hashtag", "acmedown", cursor={"min_id": "5"})
    responses.get(_tag_url(), **response)
    assert channel_poll(channel=channel) == 0
    rule.refresh_from_db()
    assert rule.cursor == {"min_id": "5"}
    assert Post.objects.count() == 0
    channel.refresh_from_db()
    return channel


@pytest.mark.parametrize(
    ("response", "health", "error"),
    [
        (
            {"status": 401, "json": fixture("error__401")},
            "failing",
            "mastodon.example refused the access token (HTTP 401): The access token is invalid",
        ),
        (
            {"status": 403, "json": {"error": "This action is outside the authorized scopes"}},
            "failing",
            "mastodon.example does not allow this token to do that (HTTP 403): "
            "This action is outside the authorized scopes",
        ),
        (
            {"status": 404, "body": "<!DOCTYPE html><html><body>Not found</body></html>"},
            "failing",
            "mastodon.example has no such resource (HTTP 404)",
        ),
        (
            {"status": 503, "body": "upstream connect error"},
            "degraded",
            "mastodon.example is failing (HTTP 503): upstream connect error",
        ),
        (
            {"status": 200, "body": "<html>maintenance</html>", "content_type": "text/html"},
            "degraded",
            "Mastodon answered /api/v1/timelines/tag/acmedown with something that is not JSON: "
            "'<html>maintenance</html>'",
        ),
        (
            {"body": requests.ConnectTimeout("connect timed out")},
            "degraded",
            "timed out calling mastodon.example",
        ),
    ],
    ids=["401", "403", "404", "5xx", "malformed-json", "timeout"],
)
@responses.activate
def test_errors_leave_the_channel_consistent_and_say_what_happened(channel, response, health, error):
    channel = _poll_error(channel, **response)
    assert (channel.health, channel.last_error) == (health, error)
    assert channel.rate_limited_until is None


@responses.activate
def test_429_holds_the_next_poll_until_the_reset(channel):
    channel = _poll_error(
        channel,
        status=429,
        json=fixture("error__429"),
        headers={
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "2099-08-21T10:20:00.000000Z",
        },
    )
    reset = datetime(2099, 8, 21, 10, 20, tzinfo=UTC)
    assert (channel.health, channel.rate_limited_until, channel.next_poll_at) == ("degraded", reset, reset)
    assert (
        channel.last_error
        == "mastodon.example rate limit reached (HTTP 429): Too many requests; it resets at 10:20:00 UTC"
    )
    assert (channel.quota_remaining, channel.requests_made) == (0, 1)


@responses.activate
def test_a_used_up_allowance_stops_further_calls_until_the_reset(channel):
    _rule(channel, "hashtag", "acmedown")
    _rule(channel, "mentions")
    responses.get(
        _tag_url(),
        json=[fixture("status__public_hashtag")],
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2099-01-01T00:00:00.000000Z"},
    )
    assert channel_poll(channel=channel) == 1
    assert len(responses.calls) == 1  # the notifications were not asked for
    channel.refresh_from_db()
    assert channel.rate_limited_until == datetime(2099, 1, 1, tzinfo=UTC)


@responses.activate
def test_a_reply_refused_by_the_server_fails_with_its_words(channel, agent, django_capture_on_commit_callbacks):
    post = _stored_post(channel)
    incident = Incident.objects.create(short_description="AcmeMail down")
    Post.objects.filter(pk=post.pk).update(incident=incident)
    post.refresh_from_db()
    _status_still_there()
    responses.post(f"{BASE}/api/v1/statuses", status=422, json=fixture("error__422"))
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_queue(incident=incident, post=post, text="On it", visibility="public", agent=agent)
    reply.refresh_from_db()
    assert (reply.status, reply.error) == (
        Reply.Status.FAILED,
        "mastodon.example refused the request (HTTP 422): Validation failed: Text can't be blank",
    )


@responses.activate
def test_a_rate_limited_reply_is_retried_at_the_reset(channel):
    post = _stored_post(channel)
    incident = Incident.objects.create(short_description="AcmeMail down")
    reply = Reply.objects.create(incident=incident, post=post, channel=channel, visibility="public", text="On it")
    _status_still_there()
    responses.post(
        f"{BASE}/api/v1/statuses",
        status=429,
        json=fixture("error__429"),
        headers={"X-RateLimit-Reset": "2099-08-21T10:20:00.000000Z"},
    )
    with time_machine.travel(datetime(2099, 8, 21, 10, 5, tzinfo=UTC), tick=False):
        reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.retry_after) == (Reply.Status.QUEUED, datetime(2099, 8, 21, 10, 20, tzinfo=UTC))


@responses.activate
def test_a_reply_outlives_a_server_outage_and_is_posted_once(channel, agent, django_capture_on_commit_callbacks):
    post = _stored_post(channel)
    incident = Incident.objects.create(short_description="AcmeMail down")
    Post.objects.filter(pk=post.pk).update(incident=incident)
    post.refresh_from_db()
    _status_still_there()
    listings = _listings()
    statuses = f"{BASE}/api/v1/statuses"
    # Down for a minute and a half: refused connections, then a proxy's 502 and 503, then up.
    for outage in (requests.ConnectionError("Connection refused"), requests.ConnectionError("Connection refused")):
        responses.post(statuses, body=outage)
    responses.post(statuses, status=502, body="Bad Gateway")
    responses.post(statuses, status=503, body="Service Unavailable")
    responses.post(statuses, json=fixture("status__created_reply"))
    start = datetime(2026, 8, 21, 11, 50, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        with django_capture_on_commit_callbacks(execute=True):
            reply = reply_queue(incident=incident, post=post, text="On it", visibility="public", agent=agent)
        errors = []
        for _ in range(4):
            reply.refresh_from_db()
            assert (reply.status, reply.retry_until) == (Reply.Status.QUEUED, datetime(2026, 8, 22, 11, 50, tzinfo=UTC))
            errors.append(reply.error)
            clock.move_to(reply.retry_after)
            replies_send_due()
    reply.refresh_from_db()
    assert errors == [
        "cannot connect to mastodon.example: Connection refused",
        "cannot connect to mastodon.example: Connection refused",
        "mastodon.example is failing (HTTP 502): Bad Gateway",
        "mastodon.example is failing (HTTP 503): Service Unavailable",
    ]
    assert (reply.status, reply.attempts, reply.external_id) == (
        Reply.Status.SENT,
        5,
        fixture("status__created_reply")["id"],
    )
    # Waits of 30 s, 1, 2 and 4 min, each jittered into its upper half.
    assert timedelta(seconds=225) <= reply.sent_at - start <= timedelta(seconds=450)
    assert [call.request.method for call in responses.calls if call.request.url == statuses] == ["POST"] * 5
    # Each retry first looked for a copy an earlier attempt got onto the server.
    assert listings["context"].call_count == 4


@responses.activate
def test_our_own_statuses_on_the_hashtag_are_not_ingested(channel):
    _rule(channel, "hashtag", "acmedown")
    ours = {
        **fixture("status__public_hashtag"),
        "id": "2",
        "account": {"id": "110000000000000001", "acct": "acmesupport"},
    }
    responses.get(_tag_url(), json=[ours, fixture("status__public_hashtag")])
    assert channel_poll(channel=channel) == 1
    assert list(Post.objects.values_list("external_id", flat=True)) == ["113012345678901234"]


@responses.activate
def test_a_first_poll_does_not_reach_back_further_than_a_day(channel):
    rule = _rule(channel, "hashtag", "acmedown")
    old = {**fixture("status__public_hashtag"), "id": "100", "created_at": "2026-08-19T09:00:00.000Z"}
    responses.get(_tag_url(), json=[fixture("status__public_hashtag"), old])
    assert channel_poll(channel=channel) == 1
    assert list(Post.objects.values_list("external_id", flat=True)) == ["113012345678901234"]
    rule.refresh_from_db()
    # The next poll re-reads what is newer than the last status before the overlap window.
    assert rule.cursor == {"min_id": "100"}


@responses.activate
def test_a_burst_bigger_than_a_poll_moves_the_cursor_forward(channel, monkeypatch):
    monkeypatch.setattr("socialitsm.connectors.mastodon.MAX_PAGES", 2)
    rule = _rule(channel, "hashtag", "acmedown", cursor={"min_id": "100"})
    base = fixture("status__public_hashtag")

    def page(start: int) -> list[dict]:
        # 40 statuses within the same minute, newest first.
        return [
            {**base, "id": str(n), "created_at": "2026-08-21T11:49:00.000Z"} for n in range(start + 39, start - 1, -1)
        ]

    responses.get(_tag_url(), json=page(1000), match=[matchers.query_param_matcher({"limit": "40", "min_id": "100"})])
    responses.get(_tag_url(), json=page(1040), match=[matchers.query_param_matcher({"limit": "40", "min_id": "1039"})])
    assert channel_poll(channel=channel) == 80
    rule.refresh_from_db()
    assert rule.cursor == {"min_id": "1079"}


# --- deletions: is a stored status still there? ------------------------------------------------

TAKAHE_404 = "<!DOCTYPE html>\n<html><head><title>Not Found</title></head><body><h1>Not Found</h1></body></html>"


@responses.activate
def test_posts_gone_asks_for_each_status_and_takes_a_404_for_gone(channel):
    alive = responses.get(
        f"{BASE}/api/v1/statuses/113012345678901234",
        json=fixture("status__public_hashtag"),
        match=[matchers.header_matcher(AUTH)],
    )
    responses.get(f"{BASE}/api/v1/statuses/113012345678900001", status=404, json={"error": "Record not found"})
    # Takahē answers an unknown id with an HTML page.
    responses.get(f"{BASE}/api/v1/statuses/113012345678900002", status=404, body=TAKAHE_404, content_type="text/html")
    responses.get(f"{BASE}/api/v1/statuses/113012345678900003", status=410, json={"error": "Gone"})
    posts = [
        Post(external_id=i)
        for i in ("113012345678901234", "113012345678900001", "113012345678900002", "113012345678900003")
    ]
    connector = MastodonConnector(channel)
    assert connector.posts_gone(posts) == {
        "113012345678900001": "deleted",
        "113012345678900002": "deleted",
        "113012345678900003": "deleted",
    }
    assert alive.call_count == 1
    assert connector.quota.requests == 4


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"status": 503, "body": "upstream down"}, TransientError),
        ({"status": 502, "body": TAKAHE_404.replace("Not Found", "Bad Gateway")}, TransientError),
        ({"status": 429, "json": fixture("error__429")}, TransientError),
        ({"body": requests.ConnectionError("connection reset")}, TransientError),
        ({"body": requests.Timeout("read timed out")}, TransientError),
        ({"status": 401, "json": fixture("error__401")}, PermanentError),
        ({"status": 400, "body": "Invalid Bearer token"}, PermanentError),
    ],
)
@responses.activate
def test_a_failed_look_up_is_an_error_never_a_deletion(channel, answer, error):
    responses.get(f"{BASE}/api/v1/statuses/113012345678901234", **answer)
    with pytest.raises(error):
        MastodonConnector(channel).posts_gone([Post(external_id="113012345678901234")])


@responses.activate
def test_the_sweep_redacts_a_status_deleted_while_we_polled(channel):
    from socialitsm.services.deletions import channel_posts_recheck

    post = _stored_post(channel)
    Post.objects.filter(pk=post.pk).update(incident=Incident.objects.create(short_description=post.text))
    responses.get(f"{BASE}/api/v1/statuses/113012345678901234", status=404, body=TAKAHE_404)
    result = channel_posts_recheck(channel=channel)
    assert (result.checked, result.gone) == (1, 1)
    post.refresh_from_db()
    assert (post.text, post.gone_reason, post.incident.short_description) == (
        "[deleted by the author]",
        "deleted",
        "Post deleted by its author",
    )
    assert Channel.objects.get(pk=channel.pk).requests_made == 1


# --- a retry after the server took the reply ------------------------------------------------------

OURS = {"id": "110000000000000001", "username": "acmesupport", "acct": "acmesupport"}
JANE = {"id": "109876543210987654", "username": "jane", "acct": "jane@social.example"}
DM_POST = "113012350000000001"


def _copy(status_id: str, *, visibility: str, in_reply_to_id: str | None, at: str = "2026-08-21T11:41:02.000Z") -> dict:
    """Our status as the server lists it: the mention shows its local part only."""
    return {
        **fixture("status__created_reply"),
        "id": status_id,
        "created_at": at,
        "visibility": visibility,
        "in_reply_to_id": in_reply_to_id,
        "account": OURS,
        "mentions": [{**JANE, "url": "https://social.example/@jane"}],
        "content": '<p><span class="h-card"><a href="https://social.example/@jane" class="u-url mention">'
        "@<span>jane</span></a></span> Could you send us   your account email?<br>See "
        '<a href="https://status.acme.example/incidents/42"><span class="invisible">https://</span>'
        '<span class="ellipsis">status.acme.example/inc</span><span class="invisible">idents/42</span></a></p>',
    }


TEXT = "Could you send us your account email?\nSee https://status.acme.example/incidents/42"


def _dead_worker_reply(channel: Channel, *, direct_post: bool, visibility: str) -> Reply:
    """A reply whose first attempt reached the server at 11:41 and whose worker then died."""
    from ..factories import PostFactory

    author = AuthorFactory(network="mastodon", external_id=JANE["id"], handle="@jane@social.example")
    post = PostFactory(
        rule=_rule(channel, "direct" if direct_post else "hashtag", "" if direct_post else "acmedown"),
        external_id=DM_POST if direct_post else "113012345678901234",
        author=author,
        is_direct=direct_post,
        incident=Incident.objects.create(short_description="AcmeMail down"),
    )
    return dead_worker_reply(
        post,
        channel=channel,
        visibility=visibility,
        text=TEXT,
        claimed_at=datetime(2026, 8, 21, 11, 41, tzinfo=UTC),
    )


def _listings(*, context=(), own=(), conversations=(), home=(), parent="113012345678901234") -> dict[str, Any]:
    limit = [matchers.query_param_matcher({"limit": "40"})]
    return {
        "context": responses.get(
            f"{BASE}/api/v1/statuses/{parent}/context", json={"ancestors": [], "descendants": list(context)}
        ),
        "own": responses.get(f"{BASE}/api/v1/accounts/{OURS['id']}/statuses", json=list(own), match=limit),
        "conversations": responses.get(
            f"{BASE}/api/v1/conversations",
            json=[{"id": "7", "unread": False, "accounts": [JANE], "last_status": s} for s in conversations],
            match=limit,
        ),
        "home": responses.get(f"{BASE}/api/v1/timelines/home", json=list(home), match=limit),
    }


@pytest.mark.parametrize(
    ("direct_post", "visibility", "listed", "reads"),
    [
        # Real Mastodon and Takahē alike: the public reply is among the post's replies.
        (
            False,
            "public",
            {"context": [_copy("501", visibility="public", in_reply_to_id="113012345678901234")]},
            ["context"],
        ),
        # A busy thread: the copy is not in the context page but in our own statuses.
        (
            False,
            "public",
            {"own": [_copy("502", visibility="public", in_reply_to_id="113012345678901234")]},
            ["context", "own"],
        ),
        # Takahē: a DM in a DM thread is left out of our own statuses; the thread shows it.
        (True, "direct", {"context": [_copy("503", visibility="direct", in_reply_to_id=DM_POST)]}, ["context"]),
        # Real Mastodon: a DM starting a new thread is in the conversations list.
        (
            False,
            "direct",
            {"conversations": [_copy("504", visibility="direct", in_reply_to_id=None)]},
            ["own", "conversations"],
        ),
        # Takahē: no conversations, no DMs among our own statuses; our home timeline has it.
        (
            False,
            "direct",
            {"home": [_copy("505", visibility="direct", in_reply_to_id=None)]},
            ["own", "conversations", "home"],
        ),
    ],
    ids=["public-in-context", "public-in-own-statuses", "dm-thread-takahe", "new-dm-mastodon", "new-dm-takahe"],
)
@responses.activate
def test_a_retry_finds_the_reply_the_server_took_and_posts_nothing(channel, direct_post, visibility, listed, reads):
    reply = _dead_worker_reply(channel, direct_post=direct_post, visibility=visibility)
    mocks = _listings(parent=DM_POST if direct_post else "113012345678901234", **listed)
    create = responses.post(f"{BASE}/api/v1/statuses", json={"id": "dup"})
    reply_send(reply=reply)
    reply.refresh_from_db()
    found = next(iter(listed.values()))[0]["id"]
    assert (reply.status, reply.external_id, reply.attempts) == (Reply.Status.SENT, found, 2)
    assert create.call_count == 0
    assert [name for name, mock in mocks.items() if mock.call_count] == reads


@pytest.mark.parametrize(
    "copy",
    [
        _copy("601", visibility="direct", in_reply_to_id=None, at="2026-08-21T10:30:00.000Z"),  # before this reply
        {**_copy("602", visibility="direct", in_reply_to_id=None), "account": JANE},  # not ours
        {**_copy("603", visibility="direct", in_reply_to_id=None), "mentions": [{"id": "1", "acct": "bob"}]},
        _copy("604", visibility="public", in_reply_to_id=None),  # not a DM
        {**_copy("605", visibility="direct", in_reply_to_id=None), "content": "<p>@jane Fixed now.</p>"},
    ],
    ids=["too-old", "someone-else", "other-recipient", "other-kind", "other-text"],
)
@responses.activate
def test_a_retry_without_an_earlier_copy_posts_once(channel, copy):
    reply = _dead_worker_reply(channel, direct_post=False, visibility="direct")
    mocks = _listings(own=[copy], conversations=[copy], home=[copy])
    create = responses.post(
        f"{BASE}/api/v1/statuses",
        json={"id": "700"},
        match=[
            matchers.json_params_matcher({"status": f"@jane@social.example {TEXT}", "visibility": "direct"}),
            matchers.header_matcher({"Idempotency-Key": str(reply.idempotency_key)}),
        ],
    )
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.SENT, "700")
    assert create.call_count == 1
    assert [mock.call_count for mock in mocks.values()] == [0, 1, 1, 1]


@pytest.mark.parametrize(
    "failure",
    [{"status": 502, "body": "bad gateway"}, {"body": requests.ConnectionError("connection refused")}],
    ids=["5xx", "unreachable"],
)
@responses.activate
def test_a_look_up_that_fails_posts_nothing_and_retries_later(channel, failure):
    reply = _dead_worker_reply(channel, direct_post=True, visibility="direct")
    responses.get(f"{BASE}/api/v1/statuses/{DM_POST}/context", **failure)
    create = responses.post(f"{BASE}/api/v1/statuses", json={"id": "dup"})
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.QUEUED, "")
    assert reply.error.startswith(("mastodon.example is failing (HTTP 502)", "cannot connect to mastodon.example"))
    assert reply.retry_after is not None
    assert create.call_count == 0


@responses.activate
def test_a_server_without_conversations_is_looked_through_its_home_timeline(channel):
    reply = _dead_worker_reply(channel, direct_post=False, visibility="direct")
    responses.get(f"{BASE}/api/v1/accounts/{OURS['id']}/statuses", json=[])
    responses.get(f"{BASE}/api/v1/conversations", status=404, body="<html>Not found</html>")
    responses.get(f"{BASE}/api/v1/timelines/home", json=[_copy("505", visibility="direct", in_reply_to_id=None)])
    create = responses.post(f"{BASE}/api/v1/statuses", json={"id": "dup"})
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id, create.call_count) == (Reply.Status.SENT, "505", 0)


@responses.activate
def test_a_first_attempt_posts_without_reading_anything(channel):
    reply = _dead_worker_reply(channel, direct_post=False, visibility="public")
    Reply.objects.filter(pk=reply.pk).update(status=Reply.Status.QUEUED, attempts=0, claimed_at=None)
    _status_still_there()
    create = responses.post(f"{BASE}/api/v1/statuses", json={"id": "800"})
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.SENT, "800")
    # Only the post's own existence is asked before posting: none of our listings are read.
    assert [(call.request.method, urlsplit(call.request.url).path) for call in responses.calls] == [
        ("GET", "/api/v1/statuses/113012345678901234"),
        ("POST", "/api/v1/statuses"),
    ]
    assert create.call_count == 1


@responses.activate
def test_an_edited_status_met_again_by_a_poll_updates_the_stored_post(channel):
    rule = _rule(channel, "hashtag", "acmedown")
    responses.get(
        _tag_url(),
        json=[fixture("status__reply_with_content_warning"), fixture("status__public_hashtag")],
        match=[matchers.query_param_matcher({"limit": "40"})],
    )
    assert channel_poll(channel=channel) == 2
    assert WatchRule.objects.get(pk=rule.pk).cursor == {"min_id": "113012345678901234"}
    # The poll rewinds to the older status, so the newer one comes again, edited meanwhile.
    responses.get(
        _tag_url(),
        json=[fixture("status__edited")],
        match=[matchers.query_param_matcher({"limit": "40", "min_id": "113012345678901234"})],
    )
    assert channel_poll(channel=channel) == 0

    bob = Post.objects.get(external_id="113012346000000001")
    assert bob.text == "CW: work rant\n\nBei mir auch, @jane!\nVPN & Mail tot, jetzt auch der Kalender #AcmeDown"
    assert bob.edited_at == datetime(2026, 8, 21, 10, 34, 51, tzinfo=UTC)
    assert list(bob.revisions.values_list("text", "edited_at")) == [
        ("CW: work rant\n\nBei mir auch, @jane!\nVPN & Mail tot #AcmeDown", bob.edited_at)
    ]
    jane = Post.objects.get(external_id="113012345678901234")
    assert (jane.edited_at, jane.revisions.count()) == (None, 0)


@responses.activate
def test_status_post_is_a_public_status_with_the_idempotency_key(channel):
    created = responses.post(
        f"{BASE}/api/v1/statuses",
        json=fixture("status__created_status_post"),
        match=[
            matchers.json_params_matcher({"status": "We know AcmeMail is down; updates here.", "visibility": "public"}),
            matchers.header_matcher({**AUTH, "Idempotency-Key": "k-status-1"}),
        ],
    )
    connector = connector_for(channel)
    assert connector.status_refusal() == ""
    assert connector.post_status("We know AcmeMail is down; updates here.", idempotency_key="k-status-1") == (
        "113099000000000777",
        "https://mastodon.example/@acmesupport/113099000000000777",
    )
    assert created.call_count == 1


@responses.activate
def test_status_post_longer_than_the_server_allows_is_refused_unsent(channel):
    with pytest.raises(PermanentError, match="the status post is 501 characters; the server allows 500"):
        connector_for(channel).post_status("x" * 501, idempotency_key="k")
    assert len(responses.calls) == 0
