"""X connector contract tests: documented v2 payloads in, exact requests out (HTTP mocked at the
transport with `responses`)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import time_machine

from socialitsm.connectors.base import DetailKind, PostDetail
from socialitsm.connectors.x import XConnector, oauth1_header, weighted_length
from socialitsm.connectors.x.parse import edit_original, tweet_to_inbound
from socialitsm.exceptions import ApplicationError, PermanentError, TransientError
from socialitsm.models import BilledResource, Channel, Incident, Post, Reply, WatchRule
from socialitsm.services.ingest import channel_poll
from socialitsm.services.replies import reply_queue, reply_send

from ..factories import ChannelFactory, WatchRuleFactory, dead_worker_reply
from ..fixtures import load_fixture

pytestmark = pytest.mark.django_db

API = "https://api.x.com"
SEARCH = f"{API}/2/tweets/search/recent"
OUR_ID = "1100000000000000002"
JANE_ID = "1500000000000000001"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
RESET = 1795686000  # 2026-11-26T09:40:00Z
LIMIT_HEADERS = {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "449", "x-rate-limit-reset": str(RESET)}
CREDENTIALS = {
    "bearer_token": "AAAA-app-bearer",
    "consumer_key": "ck-123",
    "consumer_secret": "cs-456",
    "access_token": "1100000000000000002-at",
    "access_token_secret": "ats-789",
}


fixture = partial(load_fixture, "x")


@pytest.fixture(autouse=True)
def _frozen_clock(public_dns):
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def channel():
    return ChannelFactory(
        network="x",
        handle="@AcmeSupport",
        config={"account_id": OUR_ID},
        credentials=dict(CREDENTIALS),
    )


@pytest.fixture
def rule(channel):
    return WatchRuleFactory(channel=channel, kind=WatchRule.Kind.SEARCH, query="VPN")


def query_of(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def poll(channel, django_capture_on_commit_callbacks) -> int:
    with django_capture_on_commit_callbacks(execute=True):
        return channel_poll(channel=Channel.objects.get(pk=channel.pk))


# --- twitter-text v3 ----------------------------------------------------------------------------

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("This is a test.", 15),
        ("Test https://test.com test https://test.com test.com test", 86),
        ("https://www.twitter.com/aloha " * 10, 240),
        ("randomurlrandomurlrandomurlrandomurlrandomurlrandomurlrandomurls.com", 68),  # 64-char label: no URL
        ("t.co", 23),
        ("foo.co.jp", 23),
        ("example.de", 10),  # country TLD after one label, no path: not linked
        ("see example.de/status.", 4 + 23 + 1),
        (FAMILY * 140, 280),
        ("Unicode 9.0 emoji: \U0001f920; \U0001f483; \U0001f483\U0001f3fe", 29),
        (
            "Unicode 10.0 emoji: \U0001f92a; \U0001f9d5; \U0001f9d5\U0001f3fe; \U0001f3f4"
            + "\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
            34,
        ),
        ("A\u0301B", 2),  # NFC first: one character
        ("故人西辞黄鹤楼\uff0c烟花三月下扬州\u3002" * 10, 320),
        ("1\ufe0f\u20e3 \u00a9 \u00a9\ufe0f", 2 + 1 + 1 + 1 + 2),
        ("\u2018quotes\u2019 \u2014 dash", 15),
    ],
)
def test_weighted_length_follows_twitter_text_v3(text, expected):
    assert weighted_length(text) == expected


def test_reply_length_and_limits_speak_weighted_characters(channel):
    connector = XConnector(channel)
    assert connector.reply_length("日本語 https://example.com/a/very/long/path/that/x/shortens") == 6 + 1 + 23
    limits = connector.limits()
    assert (limits.max_reply_chars, limits.unit) == (280, "weighted characters")


def test_oauth1_signature_matches_the_documented_example():
    credentials = {
        "consumer_key": "xvz1evFS4wEEPTGEFPHBog",
        "consumer_secret": "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
        "access_token": "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
        "access_token_secret": "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
    }
    header = oauth1_header(
        "POST",
        "https://api.twitter.com/1.1/statuses/update.json",
        {"include_entities": "true", "status": "Hello Ladies + Gentlemen, a signed OAuth request!"},
        credentials,
        nonce="kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
        timestamp=1318622958,
    )
    assert 'oauth_signature="hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D"' in header
    assert header.startswith('OAuth oauth_consumer_key="xvz1evFS4wEEPTGEFPHBog", oauth_nonce=')


# --- listen -> Post -> Incident -> reply --------------------------------------------------------


@responses.activate
def test_mention_becomes_incident_and_public_reply_is_sent(channel, rule, agent, django_capture_on_commit_callbacks):
    responses.get(SEARCH, json=fixture("search_recent__mention"), headers=LIMIT_HEADERS)

    assert poll(channel, django_capture_on_commit_callbacks) == 1

    search = responses.calls[0]
    assert search.request.headers["Authorization"] == "Bearer AAAA-app-bearer"
    assert query_of(search) == {
        "query": "VPN -is:retweet -from:AcmeSupport",
        "max_results": "100",
        "tweet.fields": (
            "attachments,author_id,conversation_id,created_at,edit_controls,edit_history_tweet_ids,entities,"
            "in_reply_to_user_id,lang,note_tweet,referenced_tweets"
        ),
        "expansions": (
            "author_id,referenced_tweets.id,referenced_tweets.id.author_id,attachments.poll_ids,attachments.media_keys"
        ),
        "user.fields": "username,name",
        "media.fields": "alt_text,preview_image_url,type,url",
        "poll.fields": "options",
    }
    post = Post.objects.select_related("author", "incident").get()
    assert post.external_id == "2125864646345653272"
    assert (
        post.text
        == "@AcmeSupport VPN down again since 8am & nobody answers the helpdesk https://status.example.com/vpn"
    )
    assert (post.author.external_id, post.author.handle, post.author.name) == (JANE_ID, "@janedoe", "Jane Doe")
    assert post.url == "https://x.com/janedoe/status/2125864646345653272"
    assert (post.language, post.conversation_id, post.is_direct) == ("en", "2125864646345653272", False)
    assert post.posted_at == datetime(2026, 11, 26, 8, 10, 3, tzinfo=UTC)
    assert post.incident is not None and post.incident.service.slug == "vpn"
    assert WatchRule.objects.get(pk=rule.pk).cursor == {"since_id": "2125864646345653272"}
    stored = Channel.objects.get(pk=channel.pk)
    assert (stored.requests_made, stored.quota_remaining, stored.quota_limit) == (1, 449, 450)
    assert stored.quota_reset_at == datetime(2026, 11, 26, 9, 40, tzinfo=UTC)
    assert stored.cost_used == Decimal("0.0150")  # one post read + one user read
    assert stored.health == Channel.Health.OK

    # Before a public reply: is the post still there?
    responses.get(f"{API}/2/tweets", json=fixture("tweets_lookup__found"), headers=LIMIT_HEADERS)
    responses.post(f"{API}/2/tweets", json=fixture("tweets_create__reply"), status=201, headers=LIMIT_HEADERS)
    text = "Sorry about this, Jane. We're investigating the VPN outage (ref INC0001001)."
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_queue(incident=post.incident, post=post, text=text, visibility="public", agent=agent)
    assert query_of(responses.calls[1]) == {"ids": "2125864646345653272"}
    sent = responses.calls[2].request
    assert json.loads(sent.body) == {"text": text, "reply": {"in_reply_to_tweet_id": "2125864646345653272"}}
    assert sent.headers["Authorization"].startswith('OAuth oauth_consumer_key="ck-123", oauth_nonce="')
    assert 'oauth_token="1100000000000000002-at"' in sent.headers["Authorization"]
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.SENT, "2125870422000000001")
    # The look-up read the post again the same UTC day (no charge); the summoned reply costs 0.010.
    stored = Channel.objects.get(pk=channel.pk)
    assert (stored.requests_made, stored.cost_used) == (3, Decimal("0.0250"))


@responses.activate
def test_quote_of_our_post_allows_a_public_reply(channel, rule):
    responses.get(SEARCH, json=fixture("search_recent__quote"), headers=LIMIT_HEADERS)
    posts, _ = XConnector(channel).search(rule, {})
    post = Post(channel=channel, text=posts[0].text, raw=posts[0].raw, is_direct=False)
    assert posts[0].text == (
        "Third VPN outage this week, remote access is unusable https://x.com/AcmeSupport/status/2125860858889141272"
    )
    assert XConnector(channel).reply_refusal(post, "public") == ""


@responses.activate
def test_nul_in_a_post_and_its_poster_does_not_stop_the_channel(channel, rule, django_capture_on_commit_callbacks):
    # JSON escapes, as the network sends them: json.loads turns them into NUL and a lone surrogate.
    page = fixture(
        "search_recent__keyword", **{"Acme VPN": "Acme\\u0000 VPN", "Bob Martin": "Bob\\u0000 \\ud800Martin"}
    )
    responses.get(SEARCH, json=page, headers=LIMIT_HEADERS)

    assert poll(channel, django_capture_on_commit_callbacks) == 1

    post = Post.objects.select_related("author").get()
    assert post.text == "Is the Acme VPN down for anyone else? Cannot connect since this morning >:("
    assert post.author.name == "Bob \ufffdMartin"
    assert post.raw["data"]["text"].startswith("Is the Acme VPN down")
    channel.refresh_from_db()
    assert (channel.health, channel.last_error) == (Channel.Health.OK, "")
    assert WatchRule.objects.get(pk=rule.pk).cursor["since_id"] == "2125865892053941272"


@responses.activate
def test_post_that_does_not_summon_us_gets_a_refusal_and_a_dm_instead(
    channel, rule, agent, django_capture_on_commit_callbacks
):
    responses.get(SEARCH, json=fixture("search_recent__keyword"), headers=LIMIT_HEADERS)
    poll(channel, django_capture_on_commit_callbacks)
    post = Post.objects.select_related("incident").get()
    assert post.text == "Is the Acme VPN down for anyone else? Cannot connect since this morning >:("

    with pytest.raises(ApplicationError) as refused:
        reply_queue(incident=post.incident, post=post, text="We're on it", visibility="public", agent=agent)
    assert refused.value.field == "visibility"
    assert refused.value.message == (
        "X only allows automated public replies to posts that mention or quote @AcmeSupport, and this one does "
        "neither. Send a direct message instead, or answer from the X app."
    )
    assert len(responses.calls) == 1  # nothing was sent

    responses.post(
        f"{API}/2/dm_conversations/with/1500000000000000003/messages",
        json=fixture("dm_conversations__create"),
        status=201,
    )
    text = "Hi Bob, this is Acme Support. Could you DM us your employee id? Ref INC0001001."
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_queue(incident=post.incident, post=post, text=text, visibility="direct", agent=agent)
    assert json.loads(responses.calls[1].request.body) == {"text": text}
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.SENT, "2125870422000000777")


def test_enterprise_channel_may_reply_to_anything(channel):
    channel.config["reply_policy"] = "any"
    post = Post(channel=channel, text="VPN down", raw={"data": {"id": "1", "text": "VPN down"}})
    assert XConnector(channel).reply_refusal(post, "public") == ""


def test_direct_message_cannot_be_answered_publicly(channel):
    post = Post(channel=channel, text="@AcmeSupport help", raw={}, is_direct=True)
    assert XConnector(channel).reply_refusal(post, "public") == (
        "This is a direct message on X: answer it with a direct message."
    )


def test_channel_without_user_keys_cannot_reply(channel):
    channel.credentials = {"bearer_token": "AAAA"}
    post = Post(channel=channel, text="@AcmeSupport help", raw={})
    assert "no OAuth user keys" in XConnector(channel).reply_refusal(post, "direct")


@responses.activate
def test_reply_costs_are_counted_per_price_and_overridable(channel):
    channel.config["prices"] = {"summoned_reply": "0.02"}
    post = Post(channel=channel, external_id="2125864646345653272", text="@AcmeSupport VPN down", raw={})
    responses.post(f"{API}/2/tweets", json=fixture("tweets_create__reply"), status=201)
    connector = XConnector(channel)
    connector.reply(post, "On it", "public", idempotency_key="k1")
    connector.reply(post, "Status: https://status.example.com", "public", idempotency_key="k2")
    assert connector.quota.requests == 2
    assert connector.quota.cost == pytest.approx(0.02 + 0.20)


@responses.activate
def test_a_repost_on_the_mentions_timeline_is_stored_as_its_original(channel, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory(channel=channel, kind=WatchRule.Kind.MENTIONS, query="")
    responses.get(f"{API}/2/users/{OUR_ID}/mentions", json=fixture("mentions__retweets"), headers=LIMIT_HEADERS)

    assert poll(channel, django_capture_on_commit_callbacks) == 2

    posts = {p.external_id: p for p in Post.objects.select_related("author")}
    # The repost whose original X left out is skipped; no "RT @..." copy is stored for anyone.
    assert sorted(posts) == ["2125864646345653299", "2125870170244021272"]
    original = posts["2125864646345653299"]
    assert original.text == (
        "@AcmeSupport VPN down again since 8am & nobody answers the helpdesk, third time this week and I "
        "still cannot reach the file shares from home"
    )
    assert (original.author.external_id, original.author.handle) == (JANE_ID, "@janedoe")
    assert original.url == "https://x.com/janedoe/status/2125864646345653299"
    assert original.posted_at == datetime(2026, 11, 26, 8, 10, 3, tzinfo=UTC)
    assert not Post.objects.filter(text__startswith="RT @").exists()
    assert not Post.objects.filter(author__external_id="1500000000000000007").exists()
    assert WatchRule.objects.get(pk=rule.pk).cursor == {"since_id": "2125871000000000001"}
    # Owned reads of the three listed posts and the included original, and the two users.
    assert Channel.objects.get(pk=channel.pk).cost_used == Decimal("0.0240")


@responses.activate
def test_quotes_polls_and_image_descriptions_become_details(channel, rule, django_capture_on_commit_callbacks):
    responses.get(SEARCH, json=fixture("search_recent__poll_and_media"))
    (post,), _ = XConnector(channel).search(rule, {})
    assert post.details == (
        PostDetail(DetailKind.POLL, "VPN"),
        PostDetail(DetailKind.POLL, "Email"),
        PostDetail(DetailKind.POLL, "Both"),
        PostDetail(
            DetailKind.ALT_TEXT,
            "Screenshot: VPN client says error 809, the network connection could not be established",
            "https://pbs.example.com/media/G1a2b3c4.jpg",
        ),
        PostDetail(
            DetailKind.MEDIA, "", "https://pbs.example.com/ext_tw_video_thumb/1995000000000000012/pu/img/Vid.jpg"
        ),
    )
    assert [m["media_key"] for m in post.raw["includes"]["media"]] == ["3_1995000000000000011", "7_1995000000000000012"]

    responses.replace(responses.GET, SEARCH, json=fixture("search_recent__quote"))
    assert poll(channel, django_capture_on_commit_callbacks) == 1
    stored = Post.objects.get(external_id="2125865309045685272")
    assert stored.details == [
        {
            "kind": "quote",
            "text": "We're aware of VPN connection problems and are working on a fix.",
            "url": "https://x.com/AcmeSupport/status/2125860858889141272",
        }
    ]


@responses.activate
def test_a_post_read_twice_in_one_utc_day_is_billed_once_and_again_the_next_day(
    channel, rule, django_capture_on_commit_callbacks
):
    responses.get(SEARCH, json=fixture("search_recent__mention"), headers=LIMIT_HEADERS)

    def cost_after_poll_at(when: datetime) -> Decimal:
        with time_machine.travel(when, tick=False):
            poll(channel, django_capture_on_commit_callbacks)
        return Channel.objects.get(pk=channel.pk).cost_used

    # One post read (0.005) and one user read (0.010) per UTC day, however often X delivers them.
    assert cost_after_poll_at(datetime(2026, 11, 26, 23, 59, 30, tzinfo=UTC)) == Decimal("0.0150")
    assert cost_after_poll_at(datetime(2026, 11, 26, 23, 59, 59, 999999, tzinfo=UTC)) == Decimal("0.0150")
    assert cost_after_poll_at(datetime(2026, 11, 27, 0, 0, 0, tzinfo=UTC)) == Decimal("0.0300")
    assert cost_after_poll_at(datetime(2026, 11, 27, 18, 0, tzinfo=UTC)) == Decimal("0.0300")
    stored = Channel.objects.get(pk=channel.pk)
    assert stored.requests_made == 4
    assert sorted(BilledResource.objects.filter(channel=channel).values_list("day", "item", "resource_id")) == [
        (date(2026, 11, 26), "post_read", "2125864646345653272"),
        (date(2026, 11, 26), "user_read", JANE_ID),
        (date(2026, 11, 27), "post_read", "2125864646345653272"),
        (date(2026, 11, 27), "user_read", JANE_ID),
    ]
    # Two days on, the ledger keeps only yesterday's and today's charges.
    assert cost_after_poll_at(datetime(2026, 11, 29, 0, 30, tzinfo=UTC)) == Decimal("0.0450")
    assert sorted(BilledResource.objects.filter(channel=channel).values_list("day", flat=True)) == [
        date(2026, 11, 29),
        date(2026, 11, 29),
    ]


@responses.activate
def test_long_post_is_read_from_note_tweet(channel, rule):
    responses.get(SEARCH, json=fixture("search_recent__long_post"))
    (post,), _ = XConnector(channel).search(rule, {})
    assert post.text.endswith("Wir verpassen Kundenanfragen.")
    assert len(post.text) > 280
    assert post.language == "de"


@responses.activate
def test_partial_errors_keep_the_data(channel, rule):
    responses.get(SEARCH, json=fixture("search_recent__partial_errors"))
    posts, cursor = XConnector(channel).search(rule, {})
    assert [p.external_id for p in posts] == ["2125865892053941272"]
    assert cursor == {"since_id": "2125865892053941272"}


def test_an_edit_names_its_first_version_and_is_dated_by_it(channel, rule):
    body = fixture("search_recent__edit")
    (post,) = [tweet_to_inbound(item, body["includes"]) for item in body["data"]]
    assert (post.external_id, post.original_id) == ("2125868328944565272", "2125864646345653272")
    # The first version's time comes from its id; the edit's from its own created_at.
    assert post.posted_at == datetime(2026, 11, 26, 8, 10, 3, tzinfo=UTC)
    assert post.edited_at == datetime(2026, 11, 26, 8, 24, 41, tzinfo=UTC)
    assert post.url == "https://x.com/janedoe/status/2125868328944565272"


@pytest.mark.parametrize(
    ("history", "original"),
    [
        (["2125864646345653272"], ""),
        (["2125864646345653272", "2125868328944565272"], ""),
        ([], ""),
        ("2125860000000000000", ""),
        ([None, "2125864646345653272"], ""),
        (["2125860000000000000", "2125864646345653272"], "2125860000000000000"),
    ],
    ids=["never-edited", "first-version-of-an-edited-post", "empty", "not-a-list", "junk", "edit"],
)
def test_only_a_later_version_is_an_edit(history, original):
    tweet = {"id": "2125864646345653272", "text": "VPN down", "edit_history_tweet_ids": history}
    assert edit_original(tweet) == original
    assert tweet_to_inbound(tweet, {}).original_id == original


@responses.activate
def test_an_edit_updates_the_post_and_tells_its_incident(channel, rule, django_capture_on_commit_callbacks):
    responses.get(SEARCH, json=fixture("search_recent__mention"), headers=LIMIT_HEADERS)
    responses.get(SEARCH, json=fixture("search_recent__edit"), headers=LIMIT_HEADERS)
    assert poll(channel, django_capture_on_commit_callbacks) == 1
    assert poll(channel, django_capture_on_commit_callbacks) == 0

    assert query_of(responses.calls[1])["since_id"] == "2125864646345653272"
    post = Post.objects.select_related("incident").get()
    assert (post.external_id, post.edited_at) == ("2125864646345653272", datetime(2026, 11, 26, 8, 24, 41, tzinfo=UTC))
    assert post.text == (
        "@AcmeSupport VPN down again since 8am & nobody answers the helpdesk. Now Outlook is down too "
        "https://status.example.com/vpn"
    )
    assert post.raw["data"]["edit_controls"] == {
        "edits_remaining": 4,
        "is_edit_eligible": True,
        "editable_until": "2026-11-26T09:10:03.000Z",
    }
    assert list(post.revisions.values_list("text", flat=True)) == [
        "@AcmeSupport VPN down again since 8am & nobody answers the helpdesk https://status.example.com/vpn"
    ]
    assert post.incident is not None
    edited = post.incident.events.get(kind="post_edited")
    assert edited.message.startswith("x:2125864646345653272 edited; now reads as a complaint")
    assert WatchRule.objects.get(pk=rule.pk).cursor == {"since_id": "2125868328944565272"}


# --- cursors ------------------------------------------------------------------------------------


@responses.activate
def test_next_poll_asks_since_the_cursor_and_an_empty_answer_keeps_it(channel, rule):
    responses.get(SEARCH, json=fixture("search_recent__empty"))
    posts, cursor = XConnector(channel).search(rule, {"since_id": "2125864646345653272"})
    assert (list(posts), cursor) == ([], {"since_id": "2125864646345653272"})
    assert query_of(responses.calls[0])["since_id"] == "2125864646345653272"


@responses.activate
def test_backlog_beyond_the_page_cap_is_resumed_without_gaps(channel, rule):
    channel.config["max_pages"] = 1
    since = "2125860858889141272"
    responses.get(SEARCH, json=fixture("search_recent__page_1"))
    responses.get(SEARCH, json=fixture("search_recent__page_2"))
    connector = XConnector(channel)

    posts, cursor = connector.search(rule, {"since_id": since})
    assert [p.external_id for p in posts] == ["2125869666927541272", "2125869918585781272"]  # oldest first
    assert cursor == {"since_id": since, "until_id": "2125869666927541272", "newest_id": "2125869918585781272"}

    posts, cursor = connector.search(rule, cursor)
    second = query_of(responses.calls[1])
    assert (second["since_id"], second["until_id"]) == (since, "2125869666927541272")
    assert [p.external_id for p in posts] == ["2125868408636341272"]
    assert cursor == {"since_id": "2125869918585781272"}


@responses.activate
def test_pages_are_followed_within_one_poll(channel, rule):
    responses.get(SEARCH, json=fixture("search_recent__page_1"))
    responses.get(SEARCH, json=fixture("search_recent__page_2"))
    posts, cursor = XConnector(channel).search(rule, {"since_id": "2125860858889141272"})
    assert query_of(responses.calls[1])["pagination_token"] == "b26v89c19zqg8o3fr5w6d2x8z1"
    assert [p.external_id for p in posts] == ["2125868408636341272", "2125869666927541272", "2125869918585781272"]
    assert cursor == {"since_id": "2125869918585781272"}


@responses.activate
def test_first_poll_reads_one_page_only(channel, rule):
    responses.get(SEARCH, json=fixture("search_recent__page_1"))
    _, cursor = XConnector(channel).search(rule, {})
    assert len(responses.calls) == 1
    assert cursor == {"since_id": "2125869918585781272"}


@responses.activate
def test_cursor_older_than_the_search_window_starts_at_its_edge(channel, rule):
    responses.get(SEARCH, json=fixture("search_recent__empty"))
    week_old = "2123000000000000000"  # 2026-11-18
    XConnector(channel).search(rule, {"since_id": week_old})
    query = query_of(responses.calls[0])
    assert "since_id" not in query
    assert query["start_time"] == "2026-11-19T09:05:00Z"


@responses.activate
def test_mentions_rule_reads_the_mentions_timeline_as_the_account(channel):
    rule = WatchRuleFactory(channel=channel, kind=WatchRule.Kind.MENTIONS, query="")
    url = f"{API}/2/users/{OUR_ID}/mentions"
    responses.get(url, json=fixture("mentions__reply"), headers=LIMIT_HEADERS)
    connector = XConnector(channel)
    (post,), cursor = connector.search(rule, {"since_id": "2125864646345653272"})
    call = responses.calls[0]
    assert call.request.headers["Authorization"].startswith("OAuth ")
    assert query_of(call)["since_id"] == "2125864646345653272"
    assert (post.in_reply_to, post.conversation_id) == ("2125860858889141272", "2125860858889141272")
    assert cursor == {"since_id": "2125870170244021272"}
    assert connector.quota.cost_delivered == pytest.approx(2 * 0.001 + 0.010)  # owned reads: reply + our quoted post


@responses.activate
def test_direct_rule_reads_dm_events_and_our_own_messages_are_not_stored(channel, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory(channel=channel, kind=WatchRule.Kind.DIRECT, query="")
    responses.get(f"{API}/2/dm_events", json=fixture("dm_events__message_create"))
    poll(channel, django_capture_on_commit_callbacks)
    post = Post.objects.get()
    assert post.external_id == "2125869918585781999"
    assert post.is_direct
    assert post.text == "Hi, my Outlook mailbox is full and I cannot send mail & the helpdesk line is busy"
    assert post.conversation_id == f"{OUR_ID}-{JANE_ID}"
    assert post.incident is not None
    assert WatchRule.objects.get(pk=rule.pk).cursor == {"since_id": "2125869918585781999"}
    assert query_of(responses.calls[0])["event_types"] == "MessageCreate"


# --- identity -----------------------------------------------------------------------------------


@responses.activate
def test_verify_returns_the_handle_and_records_our_account_id():
    channel = ChannelFactory(network="x", handle="", config={}, credentials=dict(CREDENTIALS))
    responses.get(f"{API}/2/users/me", json=fixture("users_me"), headers=LIMIT_HEADERS)
    responses.get(f"{API}/2/tweets/search/stream/rules", json={"meta": {"sent": "x", "result_count": 0}})
    assert XConnector(channel).verify() == "@AcmeSupport"
    assert channel.config["account_id"] == OUR_ID
    assert responses.calls[1].request.headers["Authorization"] == "Bearer AAAA-app-bearer"


@responses.activate
def test_verify_with_only_an_app_token_looks_up_the_handle():
    channel = ChannelFactory(network="x", handle="@AcmeSupport", config={}, credentials={"bearer_token": "AAAA"})
    responses.get(f"{API}/2/users/by/username/AcmeSupport", json=fixture("users_me"))
    assert XConnector(channel).verify() == "@AcmeSupport"
    assert channel.config["account_id"] == OUR_ID


@responses.activate
def test_verify_with_bad_keys_says_so():
    channel = ChannelFactory(network="x", config={}, credentials=dict(CREDENTIALS))
    responses.get(f"{API}/2/users/me", json=fixture("error__unauthorized"), status=401)
    with pytest.raises(PermanentError, match=r"X refused the channel's credentials \(HTTP 401\): Unauthorized"):
        XConnector(channel).verify()
    assert "account_id" not in channel.config


def test_verify_without_credentials_is_refused():
    channel = ChannelFactory(network="x", config={}, credentials={})
    with pytest.raises(PermanentError, match="needs a bearer_token"):
        XConnector(channel).verify()


# --- error paths: the channel stays consistent --------------------------------------------------


@pytest.mark.parametrize(
    ("response", "health", "error", "limited_until"),
    [
        (
            {"json": fixture("error__unauthorized"), "status": 401},
            "failing",
            "X refused the channel's credentials",
            None,
        ),
        (
            {"json": fixture("error__forbidden_reply"), "status": 403},
            "failing",
            "X does not allow this (HTTP 403): Forbidden: Reply to this conversation",
            None,
        ),
        ({"json": fixture("error__not_found"), "status": 404}, "failing", "X has no such resource (HTTP 404)", None),
        (
            {
                "json": fixture("error__rate_limit_v1"),
                "status": 429,
                "headers": {**LIMIT_HEADERS, "x-rate-limit-remaining": "0"},
            },
            "degraded",
            "X rate limit or usage cap reached (Rate limit exceeded); allowance resets at 09:40:00 UTC",
            datetime(2026, 11, 26, 9, 40, tzinfo=UTC),
        ),
        (
            {"json": fixture("error__usage_capped"), "status": 429, "headers": {"x-rate-limit-reset": str(RESET)}},
            "degraded",
            "X rate limit or usage cap reached (UsageCapExceeded: Usage cap exceeded: Monthly product cap)",
            datetime(2026, 11, 26, 9, 40, tzinfo=UTC),
        ),
        (
            {
                "json": fixture("error__rate_limit_problem"),
                "status": 429,
                "headers": {"x-rate-limit-reset": str(RESET)},
            },
            "degraded",
            "X rate limit or usage cap reached (Too Many Requests: Too Many Requests)",
            datetime(2026, 11, 26, 9, 40, tzinfo=UTC),
        ),
        (
            {"json": fixture("error__service_unavailable"), "status": 503},
            "degraded",
            "X is failing (HTTP 503)",
            None,
        ),
        (
            {"body": "<html>upstream hiccup</html>", "status": 200},
            "degraded",
            "X answered /2/tweets/search/recent with something that is not JSON",
            None,
        ),
        ({"body": requests.exceptions.ReadTimeout("read timed out")}, "degraded", "timed out calling api.x.com", None),
        (
            {"body": requests.exceptions.ConnectionError("reset by peer")},
            "degraded",
            "cannot connect to api.x.com",
            None,
        ),
    ],
    ids=[
        "401",
        "403",
        "404",
        "429-v1",
        "429-usage-cap",
        "429-problem",
        "503",
        "malformed-json",
        "timeout",
        "connection",
    ],
)
@responses.activate
def test_poll_errors_leave_the_cursor_and_report_on_the_channel(
    channel, rule, response, health, error, limited_until, django_capture_on_commit_callbacks
):
    rule.cursor = {"since_id": "2125860858889141272"}
    rule.save()
    responses.get(SEARCH, **response)

    assert poll(channel, django_capture_on_commit_callbacks) == 0

    stored = Channel.objects.get(pk=channel.pk)
    assert WatchRule.objects.get(pk=rule.pk).cursor == {"since_id": "2125860858889141272"}
    assert (stored.health, stored.rate_limited_until) == (health, limited_until)
    assert stored.last_error.startswith(error)
    assert Post.objects.count() == 0 and Incident.objects.count() == 0
    if limited_until is not None:
        assert stored.next_poll_at == limited_until


@responses.activate
def test_reply_refused_by_x_fails_with_its_reason(channel, agent, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory(channel=channel, query="VPN")
    responses.get(SEARCH, json=fixture("search_recent__mention"))
    poll(channel, django_capture_on_commit_callbacks)
    post = Post.objects.select_related("incident").get(rule=rule)
    responses.get(f"{API}/2/tweets", json=fixture("tweets_lookup__found"))
    responses.post(f"{API}/2/tweets", json=fixture("error__forbidden_reply"), status=403)
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_queue(incident=post.incident, post=post, text="On it", visibility="public", agent=agent)
    reply.refresh_from_db()
    assert reply.status == Reply.Status.FAILED
    assert reply.error.startswith(
        "X does not allow this (HTTP 403): Forbidden: Reply to this conversation is not allowed"
    )


# --- filtered stream rules ----------------------------------------------------------------------


@responses.activate
def test_stream_rules_sync_adds_missing_and_deletes_stale_rules_only_of_this_channel(channel, rule):
    mentions = WatchRuleFactory(channel=channel, kind=WatchRule.Kind.MENTIONS, query="", name="Mentions")
    WatchRuleFactory(channel=channel, kind=WatchRule.Kind.DIRECT, query="", name="DMs")
    subs = {"CHANNEL": channel.pk, "RULE": rule.pk, "MENTIONS": mentions.pk}
    rules_url = f"{API}/2/tweets/search/stream/rules"
    responses.get(rules_url, json=fixture("stream_rules__list", **subs))
    responses.post(rules_url, json=fixture("stream_rules__delete"))
    responses.post(rules_url, json=fixture("stream_rules__add", **subs))

    summary = XConnector(channel).stream_rules_sync(list(channel.rules.all()))

    assert summary == {"added": 1, "deleted": 1, "kept": 1}
    assert json.loads(responses.calls[1].request.body) == {"delete": {"ids": ["2125800000000000001"]}}
    assert json.loads(responses.calls[2].request.body) == {
        "add": [
            {"value": "@AcmeSupport -is:retweet -from:AcmeSupport", "tag": f"socialitsm:{channel.pk}:{mentions.pk}"}
        ]
    }
    assert all(c.request.headers["Authorization"] == "Bearer AAAA-app-bearer" for c in responses.calls)


@responses.activate
def test_stream_rules_refused_by_x_are_a_clear_error(channel):
    mentions = WatchRuleFactory(channel=channel, kind=WatchRule.Kind.MENTIONS, query="")
    rules_url = f"{API}/2/tweets/search/stream/rules"
    responses.get(rules_url, json={"meta": {"sent": "2026-11-26T08:00:00.000Z", "result_count": 0}})
    responses.post(rules_url, json=fixture("stream_rules__add_invalid"))
    with pytest.raises(PermanentError, match="X refused stream rules: @AcmeSupport -is:retweet -from:AcmeSupport: "):
        XConnector(channel).stream_rules_sync([mentions])


def test_rule_query_carries_hashtags_and_languages(channel):
    rule = WatchRuleFactory.build(
        channel=channel, kind=WatchRule.Kind.HASHTAG, query="#acmedown vpnfail", languages=["en", "de"]
    )
    assert XConnector(channel).rule_query(rule) == (
        "(#acmedown OR #vpnfail) (lang:en OR lang:de) -is:retweet -from:AcmeSupport"
    )


def test_a_query_longer_than_the_access_level_allows_is_refused_before_calling(channel):
    rule = WatchRuleFactory.build(channel=channel, name="Too long", query=" OR ".join(["outage"] * 50))
    with pytest.raises(PermanentError) as refused:
        XConnector(channel).rule_query(rule)
    assert refused.value.message == "watch rule 'Too long' makes an X query of 526 characters; the limit is 512"
    channel.config["max_query_length"] = 1024
    assert len(XConnector(channel).rule_query(rule)) == 526


# --- deletions: are stored posts still there? ---------------------------------------------------

GONE_ID = "2125865892053941272"
HIDDEN_ID = "2125866000000000001"
ALIVE_ID = "2125864646345653272"


@responses.activate
def test_posts_gone_looks_posts_up_in_one_call_and_takes_not_found_for_gone(channel):
    lookup = responses.get(f"{API}/2/tweets", json=fixture("tweets_lookup__partial_errors"), headers=LIMIT_HEADERS)
    posts = [
        Post(external_id=ALIVE_ID),
        Post(external_id=GONE_ID),
        # A protected post we may not see: cannot tell, so not gone.
        Post(external_id=HIDDEN_ID),
        # A direct message has no post look-up.
        Post(external_id="1582838000000000099", is_direct=True),
    ]
    connector = XConnector(channel)
    assert connector.posts_gone(posts) == {GONE_ID: "deleted"}
    assert query_of(lookup.calls[0]) == {"ids": f"{ALIVE_ID},{GONE_ID},{HIDDEN_ID}"}
    assert lookup.calls[0].request.headers["Authorization"].startswith("OAuth ")
    # Billed per post read: one came back.
    assert (connector.quota.requests, connector.quota.cost_delivered) == (1, 0.005)


@responses.activate
def test_posts_gone_uses_the_app_token_without_user_keys():
    channel = ChannelFactory(network="x", credentials={"bearer_token": "AAAA-app-bearer"}, config={})
    lookup = responses.get(f"{API}/2/tweets", json=fixture("tweets_lookup__found"))
    assert XConnector(channel).posts_gone([Post(external_id=ALIVE_ID)]) == {}
    assert lookup.calls[0].request.headers["Authorization"] == "Bearer AAAA-app-bearer"


def test_only_direct_messages_cost_no_call(channel):
    assert XConnector(channel).posts_gone([Post(external_id="1582838000000000099", is_direct=True)]) == {}


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"status": 503, "json": fixture("error__service_unavailable")}, "X is failing (HTTP 503)"),
        ({"status": 429, "json": fixture("error__usage_capped")}, "X rate limit or usage cap reached"),
        ({"body": requests.ConnectionError("reset")}, "cannot connect to api.x.com"),
        ({"status": 200, "body": "<html>oops</html>"}, "X answered /2/tweets with something that is not JSON"),
    ],
)
@responses.activate
def test_a_failed_look_up_is_an_error_never_a_deletion(channel, answer, error):
    responses.get(f"{API}/2/tweets", **answer)
    with pytest.raises(TransientError) as caught:
        XConnector(channel).posts_gone([Post(external_id=GONE_ID)])
    assert caught.value.message.startswith(error)


@responses.activate
def test_a_404_problem_for_the_whole_request_is_not_a_deletion(channel):
    responses.get(f"{API}/2/tweets", status=404, json=fixture("error__not_found"))
    with pytest.raises(PermanentError):
        XConnector(channel).posts_gone([Post(external_id=GONE_ID)])


# --- a retry after X took the reply ---------------------------------------------------------------

TEXT = "Sorry about this, Jane. Status & updates: https://status.acme.example/vpn"
JANE_POST = "2125864646345653272"
TWEETS = f"{API}/2/users/{OUR_ID}/tweets"
DMS = f"{API}/2/dm_conversations/with/{JANE_ID}/dm_events"


def _dead_worker_reply(channel, visibility: str) -> Reply:
    """A reply whose first attempt reached X at 08:41 and whose worker then died."""
    from ..factories import AuthorFactory, PostFactory

    post = PostFactory(
        rule=WatchRuleFactory(channel=channel, kind=WatchRule.Kind.MENTIONS),
        external_id=JANE_POST,
        text="@AcmeSupport VPN down again",
        raw={},
        author=AuthorFactory(network="x", external_id=JANE_ID, handle="@janedoe"),
        incident=Incident.objects.create(short_description="VPN down"),
    )
    return dead_worker_reply(
        post,
        channel=channel,
        visibility=visibility,
        text=TEXT,
        claimed_at=datetime(2026, 11, 26, 8, 41, tzinfo=UTC),
    )


def _tweet(tweet_id: str, *, to: str = JANE_POST, at: str = "2026-11-26T08:41:02.000Z", text: str = "") -> dict:
    """Our reply as X lists it: the @mention X put in front, the link wrapped in t.co."""
    return {
        "id": tweet_id,
        "text": text or "@janedoe Sorry about this, Jane. Status &amp; updates: https://t.co/Ab12Cd34",
        "created_at": at,
        "referenced_tweets": [{"type": "replied_to", "id": to}],
        "entities": {
            "urls": [{"url": "https://t.co/Ab12Cd34", "expanded_url": "https://status.acme.example/vpn", "start": 53}]
        },
    }


def _dm(event_id: str, *, sender: str = OUR_ID, at: str = "2026-11-26T08:41:01.000Z", text: str = "") -> dict:
    return {
        "id": event_id,
        "event_type": "MessageCreate",
        "text": text or "Sorry about this, Jane. Status &amp; updates: https://t.co/Ab12Cd34",
        "sender_id": sender,
        "dm_conversation_id": f"{OUR_ID}-{JANE_ID}",
        "created_at": at,
    }


TWEET_QUERY = {
    "max_results": "100",
    "start_time": "2026-11-26T08:35:00Z",
    "tweet.fields": "created_at,entities,note_tweet,referenced_tweets",
}
DM_QUERY = {
    "event_types": "MessageCreate",
    "dm_event.fields": "id,text,event_type,created_at,sender_id,dm_conversation_id",
    "max_results": "100",
}


@pytest.mark.parametrize(
    ("visibility", "url", "pages", "found"),
    [
        (
            "public",
            TWEETS,
            [[_tweet("2125870500000000009", to="1"), _tweet("2125870500000000001")]],
            "2125870500000000001",
        ),
        (
            "direct",
            DMS,
            [
                [_dm("2125870600000000009", sender=JANE_ID, at="2026-11-26T08:59:00.000Z", text="thanks")],
                [_dm("2125870600000000001")],
            ],
            "2125870600000000001",
        ),
    ],
    ids=["public", "direct-on-the-second-page"],
)
@responses.activate
def test_a_retried_reply_that_x_took_is_not_sent_again(channel, visibility, url, pages, found):
    reply = _dead_worker_reply(channel, visibility)
    for number, page in enumerate(pages):
        meta = {"result_count": len(page), **({"next_token": "p2"} if number + 1 < len(pages) else {})}
        responses.get(url, json={"data": page, "meta": meta})
    tweet = responses.post(f"{API}/2/tweets", json=fixture("tweets_create__reply"), status=201)
    dm = responses.post(f"{API}/2/dm_conversations/with/{JANE_ID}/messages", json={}, status=201)
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.SENT, found)
    assert (tweet.call_count, dm.call_count) == (0, 0)
    first = TWEET_QUERY if visibility == "public" else DM_QUERY
    queries = [first, {**first, "pagination_token": "p2"}][: len(pages)]
    assert [query_of(call) for call in responses.calls] == queries
    assert all(call.request.headers["Authorization"].startswith("OAuth ") for call in responses.calls)


@pytest.mark.parametrize(
    ("visibility", "url", "listed", "send", "answer"),
    [
        (
            "public",
            TWEETS,
            [
                _tweet("2125870500000000002", to="1"),  # the same words to another post
                _tweet("2125870500000000003", text="@janedoe Fixed now."),
                _tweet("2125870500000000004", at="2026-11-26T08:00:00.000Z"),  # before this reply
            ],
            "/2/tweets",
            fixture("tweets_create__reply"),
        ),
        (
            "direct",
            DMS,
            [_dm("2125870600000000002", sender=JANE_ID), _dm("2125870600000000003", at="2026-11-26T07:00:00.000Z")],
            f"/2/dm_conversations/with/{JANE_ID}/messages",
            fixture("dm_conversations__create"),
        ),
    ],
    ids=["public", "direct"],
)
@responses.activate
def test_a_retried_reply_without_a_copy_is_sent_once(channel, visibility, url, listed, send, answer):
    reply = _dead_worker_reply(channel, visibility)
    looked = responses.get(url, json={"data": listed, "meta": {"result_count": len(listed)}})
    # Before a public reply: is the post still there? (A direct message is not asked after.)
    alive = responses.get(f"{API}/2/tweets", json=fixture("tweets_lookup__found"))
    sent = responses.post(f"{API}{send}", json=answer, status=201)
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert reply.status == Reply.Status.SENT
    assert (looked.call_count, alive.call_count, sent.call_count) == (1, int(visibility == "public"), 1)
    assert json.loads(sent.calls[0].request.body)["text"] == TEXT


@pytest.mark.parametrize("visibility", ["public", "direct"])
@responses.activate
def test_a_look_up_that_fails_sends_nothing_and_retries_at_the_reset(channel, visibility):
    reply = _dead_worker_reply(channel, visibility)
    responses.get(
        TWEETS if visibility == "public" else DMS,
        status=429,
        json=fixture("error__rate_limit_problem"),
        headers={**LIMIT_HEADERS, "x-rate-limit-remaining": "0"},
    )
    tweet = responses.post(f"{API}/2/tweets", json=fixture("tweets_create__reply"), status=201)
    dm = responses.post(f"{API}/2/dm_conversations/with/{JANE_ID}/messages", json={}, status=201)
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.retry_after) == (Reply.Status.QUEUED, datetime(2026, 11, 26, 9, 40, tzinfo=UTC))
    assert (tweet.call_count, dm.call_count) == (0, 0)


@responses.activate
def test_status_post_is_a_post_without_reply_settings(channel):
    created = responses.post(f"{API}/2/tweets", json=fixture("tweets_create__status_post"), status=201)
    connector = XConnector(channel)
    assert connector.post_status("We know AcmeMail is down; updates here.", idempotency_key="k") == (
        "2125870999000000009",
        "https://x.com/i/web/status/2125870999000000009",
    )
    assert json.loads(created.calls[0].request.body) == {"text": "We know AcmeMail is down; updates here."}
    assert connector.quota.cost == pytest.approx(connector.price("post_create"))
