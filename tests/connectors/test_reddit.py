"""Reddit connector contract tests: documented listings in, exact form bodies out (HTTP mocked at
the transport with `responses`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from socialitsm.connectors.reddit import RedditConnector, markdown_escape, markdown_to_text
from socialitsm.connectors.reddit.parse import thing_to_inbound
from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Channel, Incident, Post, Reply, WatchRule
from socialitsm.services.ingest import channel_poll
from socialitsm.services.replies import reply_queue, reply_send

from ..factories import AuthorFactory, WatchRuleFactory, dead_worker_reply
from ..fixtures import load_fixture
from .shared import API, T0, TOKEN, form, reddit_channel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reddit_tokens", "clock")]

SEARCH = f"{API}/r/sysadmin/search"
COMMENTS = f"{API}/r/sysadmin/comments"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
LIMIT_HEADERS = {"X-Ratelimit-Used": "2", "X-Ratelimit-Remaining": "598.0", "X-Ratelimit-Reset": "412"}
USER_AGENT = "server:socialitsm:v1 (by /u/acme_support)"


fixture = partial(load_fixture, "reddit")


def query_of(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def listing(*children: dict, after: str | None = None) -> dict:
    return {"kind": "Listing", "data": {"after": after, "before": None, "children": list(children)}}


def t3(id_: str, created: float, title: str = "VPN down again") -> dict:
    return {
        "kind": "t3",
        "data": {
            "id": id_,
            "name": f"t3_{id_}",
            "title": title,
            "selftext": "",
            "author": "jdoe_it",
            "created_utc": created,
            "permalink": f"/r/sysadmin/comments/{id_}/x/",
            "is_self": True,
        },
    }


@pytest.fixture
def channel():
    return reddit_channel(include_comments=False, password="hunter2 & more")


@pytest.fixture
def rule(channel):
    return WatchRuleFactory(channel=channel, kind=WatchRule.Kind.SEARCH, query="AcmeMail")


def signed_in() -> None:
    responses.post(TOKEN, json=fixture("token__password"), headers=LIMIT_HEADERS)


def poll(channel, django_capture_on_commit_callbacks) -> int:
    with django_capture_on_commit_callbacks(execute=True):
        return channel_poll(channel=Channel.objects.get(pk=channel.pk))


# --- listen -> Post -> Incident -> reply --------------------------------------------------------


@responses.activate
def test_search_hit_becomes_incident_and_comment_reply_is_sent(
    channel, rule, agent, django_capture_on_commit_callbacks
):
    signed_in()
    responses.get(SEARCH, json=fixture("search__post"), headers=LIMIT_HEADERS)

    assert poll(channel, django_capture_on_commit_callbacks) == 1

    token_call, search_call = responses.calls
    assert token_call.request.headers["Authorization"] == "Basic Y2wtaWQ6Y2wtc2VjcmV0"
    assert token_call.request.headers["User-Agent"] == USER_AGENT
    assert form(token_call) == {"grant_type": "password", "username": "acme_support", "password": "hunter2 & more"}
    assert search_call.request.headers["Authorization"] == "bearer eyJhbGciOi-test-token"
    assert search_call.request.headers["User-Agent"] == USER_AGENT
    assert query_of(search_call) == {
        "q": "AcmeMail",
        "sort": "new",
        "t": "week",
        "type": "link",
        "restrict_sr": "1",
        "limit": "100",
        "raw_json": "1",
    }
    post = Post.objects.select_related("author", "incident").get()
    assert post.external_id == "t3_1h2g3k4"
    assert post.text == (
        "AcmeMail down for anyone else?\n\nCan't log in since 9am UTC & the status page "
        "(https://status.example.com) says all green.\n\nService degraded? No."
    )
    assert (post.author.external_id, post.author.handle) == ("jdoe_it", "u/jdoe_it")
    assert post.author.profile_url == "https://www.reddit.com/user/jdoe_it"
    assert post.url == "https://www.reddit.com/r/sysadmin/comments/1h2g3k4/acmemail_down_for_anyone_else/"
    assert (post.conversation_id, post.in_reply_to, post.is_direct) == ("t3_1h2g3k4", "", False)
    assert post.posted_at == datetime(2026, 11, 26, 8, 10, 3, tzinfo=UTC)
    assert post.incident is not None
    assert WatchRule.objects.get(pk=rule.pk).cursor == {"posts": {"watermark": T0, "seen": {"t3_1h2g3k4": T0}}}
    stored = Channel.objects.get(pk=channel.pk)
    assert (stored.requests_made, stored.quota_remaining, stored.quota_limit) == (2, 598, 600)
    assert stored.quota_reset_at == NOW + timedelta(seconds=412)
    assert stored.cost_used == 0

    # Before a public reply: is the post still there? (/api/info answers in a listing.)
    responses.get(f"{API}/api/info", json=fixture("search__post"), headers=LIMIT_HEADERS)
    responses.post(f"{API}/api/comment", json=fixture("comment__created"), headers=LIMIT_HEADERS)
    text = "Hi u/jdoe_it, sorry about this.\n*Status*: https://status.example.com/acme_mail (ref INC0001001)"
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_queue(incident=post.incident, post=post, text=text, visibility="public", agent=agent)
    assert query_of(responses.calls[2]) == {"id": "t3_1h2g3k4", "raw_json": "1"}
    sent = responses.calls[3]
    assert form(sent) == {
        "api_type": "json",
        "thing_id": "t3_1h2g3k4",
        "text": (
            "Hi u/jdoe_it, sorry about this.  \n\\*Status\\*: https://status.example.com/acme_mail (ref INC0001001)"
        ),
    }
    assert sent.request.headers["Authorization"] == "bearer eyJhbGciOi-test-token"  # token reused
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.SENT, "t1_lqb11b2")


@responses.activate
def test_new_comments_are_matched_on_the_rule_terms_and_deletions_are_passed_on(channel, rule):
    channel.config["include_comments"] = True
    signed_in()
    responses.get(SEARCH, json=listing())
    responses.get(COMMENTS, json=fixture("comments__new"))
    posts, cursor = RedditConnector(channel).search(rule, {})
    assert [(p.external_id, p.deleted) for p in posts] == [("t1_lq9x8z0", True), ("t1_lq9x8z2", False)]
    comment = posts[1]
    assert comment.text == "Same here, AcmeMail webmail gives a 502 for the whole team"
    assert (comment.in_reply_to, comment.conversation_id) == ("t1_lq9x8y0", "t3_1h2g3k4")
    assert cursor == {
        "posts": {},
        "comments": {
            "watermark": T0 + 300,
            "seen": {"t1_lq9x8z0": T0 + 100, "t1_lq9x8z1": T0 + 200, "t1_lq9x8z2": T0 + 300},
        },
    }


@responses.activate
def test_rule_without_terms_takes_every_new_post_and_comment_of_the_watched_subreddits(channel):
    channel.config["include_comments"] = True
    rule = WatchRuleFactory(channel=channel, kind=WatchRule.Kind.SEARCH, query="")
    signed_in()
    responses.get(f"{API}/r/sysadmin/new", json=fixture("search__post"))
    responses.get(COMMENTS, json=fixture("comments__new"))
    posts, _ = RedditConnector(channel).search(rule, {})
    assert query_of(responses.calls[1]) == {"limit": "100", "raw_json": "1"}
    assert [p.external_id for p in posts] == ["t3_1h2g3k4", "t1_lq9x8z0", "t1_lq9x8z1", "t1_lq9x8z2"]


def test_rule_without_terms_needs_subreddits(channel):
    channel.config["subreddits"] = []
    rule = WatchRuleFactory(channel=channel, kind=WatchRule.Kind.SEARCH, query="", name="Everything")
    with pytest.raises(PermanentError) as refused:
        RedditConnector(channel).search(rule, {})
    assert refused.value.message == (
        "watch rule 'Everything' has no search terms and the channel watches no subreddits"
    )


@responses.activate
def test_removed_post_is_a_deletion_marker(channel, rule):
    signed_in()
    responses.get(SEARCH, json=fixture("search__removed"))
    (post,), _ = RedditConnector(channel).search(rule, {})
    assert (post.external_id, post.deleted, post.gone_reason) == ("t3_1h2g3k9", True, "removed")


@responses.activate
def test_a_removal_seen_in_a_listing_redacts_our_copy_as_removed(channel, rule, django_capture_on_commit_callbacks):
    from ..factories import PostFactory

    stored = PostFactory(rule=rule, external_id="t3_1h2g3k9", text="Acme VPN broken, call me on 555 0100")
    signed_in()
    responses.get(SEARCH, json=fixture("search__removed"))
    poll(channel, django_capture_on_commit_callbacks)
    stored.refresh_from_db()
    assert (stored.text, stored.gone_reason, stored.raw) == ("[removed by moderators]", "removed", {})


@pytest.mark.parametrize(
    ("edited", "expected"),
    [
        (False, None),
        (T0 + 900, datetime(2026, 11, 26, 8, 25, 3, tzinfo=UTC)),
        (1795681503, datetime(2026, 11, 26, 8, 25, 3, tzinfo=UTC)),
        (True, None),
        ("1795681503.0", None),
        (1e20, None),
    ],
    ids=["never", "float", "int", "undated", "text", "out-of-range"],
)
def test_the_edited_field_gives_the_edit_time(edited, expected):
    thing = {**fixture("search__post")["data"]["children"][0]["data"], "edited": edited}
    assert thing_to_inbound("t3", thing).edited_at == expected


@responses.activate
def test_an_edit_seen_in_the_overlap_updates_our_copy(channel, rule, django_capture_on_commit_callbacks):
    signed_in()
    responses.get(SEARCH, json=fixture("search__post"), headers=LIMIT_HEADERS)
    responses.get(SEARCH, json=fixture("search__post_edited"), headers=LIMIT_HEADERS)
    assert poll(channel, django_capture_on_commit_callbacks) == 1
    assert poll(channel, django_capture_on_commit_callbacks) == 0

    post = Post.objects.select_related("incident").get()
    assert post.edited_at == datetime(2026, 11, 26, 8, 25, 3, tzinfo=UTC)
    assert post.text.endswith("Service degraded? No.\n\nEdit: calendar sync is broken too, 40 people affected.")
    (revision,) = post.revisions.all()
    assert revision.text.endswith("Service degraded? No.")
    assert post.incident is not None
    assert list(post.incident.events.values_list("kind", flat=True)) == ["opened", "post_linked", "post_edited"]
    # Handed out again at every poll while in the overlap; ingest knows it has the edit.
    assert poll(channel, django_capture_on_commit_callbacks) == 0
    assert post.revisions.count() == 1


@responses.activate
def test_mentions_rule_reads_the_inbox_comments_only(channel):
    rule = WatchRuleFactory(channel=channel, kind=WatchRule.Kind.MENTIONS, query="")
    signed_in()
    responses.get(f"{API}/message/inbox", json=fixture("inbox__mention"))
    (post,), cursor = RedditConnector(channel).search(rule, {})
    assert post.external_id == "t1_lqa00a1"
    assert post.text == "u/acme_support the Outlook add-in still fails after the update, any ETA?"
    assert (post.in_reply_to, post.conversation_id) == ("t1_lq9x8z2", "t3_1h2g3k4")
    assert post.url == (
        "https://www.reddit.com/r/sysadmin/comments/1h2g3k4/acmemail_down_for_anyone_else/lqa00a1/?context=3"
    )
    assert cursor == {"inbox": {"watermark": T0 + 900, "seen": {"t1_lqa00a1": T0 + 900}}}
    assert len(responses.calls) == 2  # nothing was marked read


@responses.activate
def test_private_message_is_answered_in_its_thread(channel, agent, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory(channel=channel, kind=WatchRule.Kind.DIRECT, query="")
    signed_in()
    responses.get(f"{API}/message/messages", json=fixture("messages__private"))
    poll(channel, django_capture_on_commit_callbacks)
    post = Post.objects.select_related("incident").get(rule=rule)
    assert (post.external_id, post.is_direct, post.conversation_id) == ("t4_2b3c4e", True, "t4_2b3c4e")
    assert post.text == (
        "Printer on floor 3\n\nHi, the printer on floor 3 is broken and jams on every job, and the ticket portal is "
        "down too."
    )
    assert RedditConnector(channel).reply_refusal(post, "public") == (
        "This is a private message on Reddit: answer it with a direct message."
    )

    responses.post(f"{API}/api/comment", json=fixture("comment__message_reply"))
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_queue(incident=post.incident, post=post, text="On it", visibility="direct", agent=agent)
    assert form(responses.calls[-1]) == {"api_type": "json", "thing_id": "t4_2b3c4e", "text": "On it"}
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.SENT, "t4_2b3c5f")


@responses.activate
def test_direct_reply_to_a_public_post_composes_a_private_message(channel, rule):
    signed_in()
    responses.get(SEARCH, json=fixture("search__post"))
    (inbound,), _ = RedditConnector(channel).search(rule, {})
    author = AuthorFactory(network="reddit", external_id="jdoe_it", handle="u/jdoe_it")
    post = Post(external_id=inbound.external_id, raw=inbound.raw, text=inbound.text, author=author)
    responses.post(f"{API}/api/compose", json=fixture("compose__ok"))
    # Compose does not name the message: it is looked up among our sent messages.
    responses.get(f"{API}/message/sent", json=fixture("sent__compose"))
    text = "Could you send us your ticket number?"
    assert RedditConnector(channel).reply(post, text, "direct", idempotency_key="k") == "t4_2b9c01"
    assert form(responses.calls[-2]) == {
        "api_type": "json",
        "to": "jdoe_it",
        "subject": "Re: AcmeMail down for anyone else?",
        "text": "Could you send us your ticket number?",
    }
    assert query_of(responses.calls[-1]) == {"limit": "100", "raw_json": "1"}


@responses.activate
def test_a_composed_message_whose_look_up_fails_is_still_sent(channel):
    signed_in()
    author = AuthorFactory(network="reddit", external_id="jdoe_it", handle="u/jdoe_it")
    post = Post(external_id="t3_1h2g3k4", raw={}, text="x", author=author)
    sent = responses.post(f"{API}/api/compose", json=fixture("compose__ok"))
    responses.get(f"{API}/message/sent", status=503, body="upstream connect error")
    assert (
        RedditConnector(channel).reply(post, "Could you send us your ticket number?", "direct", idempotency_key="k")
        == ""
    )
    assert sent.call_count == 1


@pytest.mark.parametrize("state", ["locked", "archived"])
def test_locked_or_archived_thread_is_refused_before_sending(channel, state):
    post = Post(external_id="t3_1h2g3k4", raw={"kind": "t3", "data": {"id": "1h2g3k4", state: True}}, text="x")
    assert RedditConnector(channel).reply_refusal(post, "public") == (
        f"This Reddit thread is {state} and takes no comments: answer with a direct message."
    )


@responses.activate
def test_compose_refused_by_the_user_is_a_clear_error(channel):
    signed_in()
    author = AuthorFactory(network="reddit", external_id="jdoe_it", handle="u/jdoe_it")
    post = Post(external_id="t3_1h2g3k4", raw={}, text="x", author=author)
    responses.post(f"{API}/api/compose", json=fixture("compose__not_whitelisted"))
    with pytest.raises(PermanentError) as refused:
        RedditConnector(channel).reply(post, "Hello", "direct", idempotency_key="k")
    assert refused.value.message == (
        "Reddit refused the private message: the user only accepts private messages from people they approved "
        "(NOT_WHITELISTED_BY_USER_MESSAGE)"
    )


# --- cursors ------------------------------------------------------------------------------------


@responses.activate
def test_re_reading_the_overlap_catches_late_items_and_hands_nothing_out_twice(channel, rule):
    channel.config["overlap_seconds"] = 600
    signed_in()
    first = listing(t3("a2", T0 + 60), t3("a1", T0))
    # Next poll: one new post, a late-indexed one older than the watermark but inside the overlap,
    # the two already handed out, and one older than the overlap that ends the reading.
    second = listing(t3("a4", T0 + 900), t3("a2", T0 + 60), t3("a3", T0 - 300), t3("a1", T0), t3("a0", T0 - 700))
    responses.get(SEARCH, json=first)
    responses.get(SEARCH, json=second)
    connector = RedditConnector(channel)

    posts, cursor = connector.search(rule, {})
    assert [p.external_id for p in posts] == ["t3_a1", "t3_a2"]
    posts, cursor = connector.search(rule, cursor)
    assert [p.external_id for p in posts] == ["t3_a3", "t3_a4"]
    assert cursor == {"posts": {"watermark": T0 + 900, "seen": {"t3_a4": T0 + 900}}}  # older ones left the window


@responses.activate
def test_backlog_beyond_the_page_cap_resumes_before_the_watermark_moves(channel, rule):
    channel.config["max_pages"] = 1
    signed_in()
    start = {"posts": {"watermark": T0, "seen": {}}}
    responses.get(SEARCH, json=listing(t3("b9", T0 + 3000), t3("b8", T0 + 2000), after="t3_b8"))
    responses.get(SEARCH, json=listing(t3("b7", T0 + 1000), t3("a1", T0 - 900), after="t3_a1"))
    connector = RedditConnector(channel)

    posts, cursor = connector.search(rule, start)
    assert [p.external_id for p in posts] == ["t3_b8", "t3_b9"]
    assert cursor == {
        "posts": {
            "watermark": T0,
            "seen": {"t3_b8": T0 + 2000, "t3_b9": T0 + 3000},
            "after": "t3_b8",
            "pending": T0 + 3000,
        }
    }
    posts, cursor = connector.search(rule, cursor)
    assert query_of(responses.calls[2])["after"] == "t3_b8"
    assert [p.external_id for p in posts] == ["t3_b7"]
    assert cursor["posts"]["watermark"] == T0 + 3000
    assert "after" not in cursor["posts"]


# --- sign-in ------------------------------------------------------------------------------------


@responses.activate
def test_verify_returns_the_username_and_records_it_as_our_account(channel):
    channel.config = {}
    signed_in()
    responses.get(f"{API}/api/v1/me", json=fixture("me"))
    assert RedditConnector(channel).verify() == "u/acme_support"
    assert channel.config["account_id"] == "acme_support"


@responses.activate
def test_wrong_password_is_a_clear_error_despite_http_200(channel):
    responses.post(TOKEN, json=fixture("token__invalid_grant"))
    with pytest.raises(PermanentError, match=r"^Reddit refused the sign-in \(invalid_grant\)$"):
        RedditConnector(channel).verify()


@responses.activate
def test_refresh_token_grant_is_used_when_given(channel):
    channel.credentials = {"client_id": "cl-id", "client_secret": "cl-secret", "refresh_token": "rt-1"}
    signed_in()
    responses.get(f"{API}/api/v1/me", json=fixture("me"))
    RedditConnector(channel).verify()
    assert form(responses.calls[0]) == {"grant_type": "refresh_token", "refresh_token": "rt-1"}
    assert responses.calls[0].request.headers["User-Agent"] == "server:socialitsm:v1 (by /u/acme_support)"


@responses.activate
def test_token_is_cached_and_renewed_once_after_a_401(channel):
    signed_in()
    me = f"{API}/api/v1/me"
    responses.get(me, json=fixture("me"))
    responses.get(me, json=fixture("error__unauthorized"), status=401)
    responses.get(me, json=fixture("me"))
    connector = RedditConnector(channel)
    connector.verify()
    connector.verify()
    assert [c.request.url.split("?")[0] for c in responses.calls] == [TOKEN, me, me, TOKEN, me]


@responses.activate
def test_a_second_401_after_renewal_is_reported(channel):
    signed_in()
    responses.get(f"{API}/api/v1/me", json=fixture("error__unauthorized"), status=401)
    with pytest.raises(PermanentError) as refused:
        RedditConnector(channel).verify()
    assert refused.value.message == (
        "Reddit refused the channel's credentials on the account check (HTTP 401): Unauthorized"
    )
    assert len([c for c in responses.calls if c.request.url == TOKEN]) == 2


def test_missing_credentials_are_named(channel):
    channel.credentials = {"client_id": "cl-id", "client_secret": "cl-secret"}
    with pytest.raises(PermanentError, match=r"needs username and password \(script app\) or a refresh_token"):
        RedditConnector(channel).verify()


# --- error paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "health", "error", "limited_until"),
    [
        (
            {"json": fixture("error__forbidden_private"), "status": 403},
            "failing",
            "Reddit forbids search in /r/sysadmin (HTTP 403: Forbidden: private)",
            None,
        ),
        (
            {"json": fixture("error__not_found"), "status": 404},
            "failing",
            "Reddit has no search in /r/sysadmin (HTTP 404): Not Found",
            None,
        ),
        (
            {"status": 302, "headers": {"Location": "https://www.reddit.com/subreddits/search.json?q=sysadmin"}},
            "failing",
            "Reddit redirected search in /r/sysadmin to https://www.reddit.com/subreddits/search.json?q=sysadmin",
            None,
        ),
        (
            {
                "json": fixture("error__too_many_requests"),
                "status": 429,
                "headers": {"X-Ratelimit-Used": "600", "X-Ratelimit-Remaining": "0.0", "X-Ratelimit-Reset": "95"},
            },
            "degraded",
            "Reddit rate limit reached on search in /r/sysadmin",
            NOW + timedelta(seconds=95),
        ),
        (
            {"body": "<html>Our CDN was unable to reach our servers</html>", "status": 503},
            "degraded",
            "Reddit is failing (HTTP 503)",
            None,
        ),
        (
            {"body": "<html>upstream hiccup</html>", "status": 200},
            "degraded",
            "Reddit answered search in /r/sysadmin with something that is not JSON",
            None,
        ),
        (
            {"json": {"kind": "t3", "data": {}}, "status": 200},
            "degraded",
            "Reddit answered search in /r/sysadmin with something that is not a listing",
            None,
        ),
        (
            {"body": requests.exceptions.ReadTimeout("read timed out")},
            "degraded",
            "timed out calling oauth.reddit.com",
            None,
        ),
    ],
    ids=["403-private", "404", "302-unknown-subreddit", "429", "503", "malformed-json", "not-a-listing", "timeout"],
)
@responses.activate
def test_poll_errors_leave_the_cursor_and_report_on_the_channel(
    channel, rule, response, health, error, limited_until, django_capture_on_commit_callbacks
):
    before = {"posts": {"watermark": T0 - 100, "seen": {"t3_old": T0 - 100}}}
    rule.cursor = before
    rule.save()
    signed_in()
    responses.get(SEARCH, **response)

    assert poll(channel, django_capture_on_commit_callbacks) == 0

    stored = Channel.objects.get(pk=channel.pk)
    assert WatchRule.objects.get(pk=rule.pk).cursor == before
    assert (stored.health, stored.rate_limited_until) == (health, limited_until)
    assert stored.last_error.startswith(error)
    assert Post.objects.count() == 0 and Incident.objects.count() == 0


@responses.activate
def test_bad_app_credentials_fail_the_poll(channel, rule, django_capture_on_commit_callbacks):
    responses.post(TOKEN, json={"message": "Unauthorized", "error": 401}, status=401)
    poll(channel, django_capture_on_commit_callbacks)
    stored = Channel.objects.get(pk=channel.pk)
    assert stored.health == "failing"
    assert stored.last_error == "Reddit refused the channel's credentials on sign-in (HTTP 401): Unauthorized"


@responses.activate
def test_locked_thread_fails_the_reply_with_the_reason(channel, rule, agent, django_capture_on_commit_callbacks):
    signed_in()
    responses.get(SEARCH, json=fixture("search__post"))
    poll(channel, django_capture_on_commit_callbacks)
    post = Post.objects.select_related("incident").get()
    responses.get(f"{API}/api/info", json=fixture("search__post"))
    responses.post(f"{API}/api/comment", json=fixture("comment__thread_locked"))
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_queue(incident=post.incident, post=post, text="On it", visibility="public", agent=agent)
    reply.refresh_from_db()
    assert (reply.status, reply.error) == (
        Reply.Status.FAILED,
        "Reddit refused the reply: the thread is locked (THREAD_LOCKED)",
    )


@responses.activate
def test_reddit_ratelimit_in_a_200_answer_is_retried_after_its_wait(channel):
    signed_in()
    post = Post(external_id="t3_1h2g3k4", raw={}, text="x")
    responses.post(f"{API}/api/comment", json=fixture("comment__ratelimit"))
    with pytest.raises(TransientError) as limited:
        RedditConnector(channel).reply(post, "On it", "public", idempotency_key="k")
    assert limited.value.retry_at == NOW + timedelta(seconds=540.2)
    assert limited.value.message.startswith("Reddit rate limit on the reply: Looks like you've been doing that a lot.")


# --- markdown -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("plain words", "plain words"),
        ("# not a heading", "\\# not a heading"),
        ("> not a quote", "\\> not a quote"),
        ("1. not a list", "1\\. not a list"),
        ("- nor this", "\\- nor this"),
        ("snake_case and *stars* ~~x~~ ^up", "snake\\_case and \\*stars\\* \\~\\~x\\~\\~ \\^up"),
        (">!spoiler!<", "\\>!spoiler\\!<"),
        ("u/acme_support see https://example.com/a_b_c", "u/acme_support see https://example.com/a_b_c"),
        ("line one\nline two\n\nnew paragraph", "line one  \nline two\n\nnew paragraph"),
        ("    indented", "indented"),
    ],
)
def test_reply_markdown_is_escaped_to_show_what_was_typed(typed, sent):
    assert markdown_escape(typed) == sent


def test_reply_length_counts_the_escaped_markdown(channel):
    connector = RedditConnector(channel)
    assert connector.reply_length("*a*") == 5
    limits = connector.limits()
    assert (limits.max_reply_chars, limits.unit) == (10_000, "characters")


def test_markdown_becomes_plain_text():
    assert (
        markdown_to_text(
            "**Bold** _it_ [link](https://example.com/a_b) &amp; `code` ^(tiny) \\*kept\\* >!spoil!<"
            "\n\n> quote\n\n# Head"
        )
        == "Bold it link (https://example.com/a_b) & code tiny *kept* spoil\n\nquote\n\nHead"
    )


# --- deletions: are stored posts and comments still there? --------------------------------------


@responses.activate
def test_posts_gone_tells_deleted_by_the_author_from_removed_by_moderators(channel):
    signed_in()
    info = responses.get(f"{API}/api/info", json=fixture("info__stored_things"), headers=LIMIT_HEADERS)
    names = ["t3_1h2g3k4", "t3_1h2g3k5", "t3_1h2g3k9", "t1_lq9x8z0", "t1_lq9x8z1", "t1_lq9x8z2", "t1_notreturned"]
    # A private message has no look-up; it is not even asked for.
    posts = [Post(external_id=name) for name in names] + [Post(external_id="t4_2bc3d4", is_direct=True)]
    assert RedditConnector(channel).posts_gone(posts) == {
        "t3_1h2g3k5": "deleted",  # a link post its author deleted
        "t3_1h2g3k9": "removed",  # removed by a moderator
        "t1_lq9x8z0": "deleted",
        "t1_lq9x8z1": "removed",
    }
    assert query_of(info.calls[0]) == {"id": ",".join(sorted(names)), "raw_json": "1"}
    assert info.calls[0].request.headers["Authorization"] == "bearer eyJhbGciOi-test-token"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"status": 500, "body": "<html>Internal</html>"}, TransientError),
        ({"status": 429, "json": fixture("error__too_many_requests")}, TransientError),
        ({"json": {"kind": "t3", "data": {}}}, TransientError),
        ({"json": {"kind": "Listing", "data": {"children": "none"}}}, TransientError),
        ({"status": 403, "json": fixture("error__forbidden_private")}, PermanentError),
    ],
)
@responses.activate
def test_a_failed_look_up_is_an_error_never_a_deletion(channel, answer, error):
    signed_in()
    responses.get(f"{API}/api/info", **answer)
    with pytest.raises(error):
        RedditConnector(channel).posts_gone([Post(external_id="t3_1h2g3k9")])


@responses.activate
def test_the_sweep_records_a_moderator_removal(channel, rule):
    from socialitsm.models import Incident
    from socialitsm.services.deletions import channel_posts_recheck

    from ..factories import PostFactory

    post = PostFactory(
        rule=rule,
        external_id="t3_1h2g3k9",
        text="Acme VPN broken",
        incident=Incident.objects.create(number="INC0001001", short_description="Acme VPN broken"),
    )
    signed_in()
    responses.get(f"{API}/api/info", json=fixture("info__stored_things"))
    assert (channel_posts_recheck(channel=channel).gone, Post.objects.get(pk=post.pk).gone_reason) == (1, "removed")
    post.refresh_from_db()
    assert (post.text, post.incident.short_description) == ("[removed by moderators]", "Post removed by moderators")


# --- a retry after Reddit took the reply ----------------------------------------------------------

TEXT = "Sorry *again*, we are on it: https://status.acme.example/x_y"
SENT_BODY = "Sorry \\*again\\*, we are on it: https://status.acme.example/x_y"
COPY_AT = T0 + 31 * 60  # 08:41:03, a minute after the reply was queued
OUR_COMMENTS = f"{API}/user/acme_support/comments"
OUR_MESSAGES = f"{API}/message/sent"


def _dead_worker_reply(channel, *, post_id: str, visibility: str, author: str = "jdoe_it") -> Reply:
    """A reply whose first attempt reached Reddit at 08:41 and whose worker then died."""
    from ..factories import PostFactory

    post = PostFactory(
        rule=WatchRuleFactory(channel=channel, kind=WatchRule.Kind.SEARCH, query="AcmeMail"),
        external_id=post_id,
        conversation_id=post_id,
        is_direct=post_id.startswith("t4_"),
        raw={},
        author=AuthorFactory(network="reddit", external_id=author, handle=f"u/{author}"),
        incident=Incident.objects.create(short_description="AcmeMail down"),
    )
    return dead_worker_reply(
        post,
        channel=channel,
        visibility=visibility,
        text=TEXT,
        claimed_at=datetime(2026, 11, 26, 8, 41, tzinfo=UTC),
    )


def _comment(id_: str, *, parent: str = "t3_1h2g3k4", body: str = SENT_BODY, at: float = COPY_AT) -> dict:
    return {
        "kind": "t1",
        "data": {
            "id": id_,
            "name": f"t1_{id_}",
            "parent_id": parent,
            "link_id": "t3_1h2g3k4",
            "author": "acme_support",
            "body": body,
            "created_utc": at,
        },
    }


def _sent_message(id_: str, *, dest: str = "jdoe_it", parent: str | None = None, at: float = COPY_AT) -> dict:
    return {
        "kind": "t4",
        "data": {
            "id": id_,
            "name": f"t4_{id_}",
            "author": "acme_support",
            "dest": dest,
            "subject": "re: Printer on floor 3" if parent else "Re: AcmeMail down for anyone else?",
            "body": SENT_BODY,
            "parent_id": parent,
            "first_message_name": parent,
            "created_utc": at,
        },
    }


KINDS = {
    # (post answered, visibility, recipient, listing read, where the reply is sent)
    "comment": ("t3_1h2g3k4", "public", "jdoe_it", OUR_COMMENTS, "/api/comment"),
    "message-thread": ("t4_2b3c4e", "direct", "mara_ops", OUR_MESSAGES, "/api/comment"),
    "private-message": ("t3_1h2g3k4", "direct", "jdoe_it", OUR_MESSAGES, "/api/compose"),
}


@pytest.mark.parametrize(
    ("kind", "copy"),
    [
        ("comment", _comment("lqcopy1")),
        ("message-thread", _sent_message("2bcopy1", dest="mara_ops", parent="t4_2b3c4e")),
        ("private-message", _sent_message("2bcopy2")),
    ],
)
@responses.activate
def test_a_retried_reply_that_reddit_took_is_not_sent_again(channel, kind, copy):
    post_id, visibility, author, url, send = KINDS[kind]
    reply = _dead_worker_reply(channel, post_id=post_id, visibility=visibility, author=author)
    signed_in()
    older = _comment("lqold01", at=T0 - 3600) if copy["kind"] == "t1" else _sent_message("2bold1", at=T0 - 3600)
    listed = responses.get(url, json=listing(copy, older))
    sent = responses.post(f"{API}{send}", json={"json": {"errors": []}})
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.SENT, copy["data"]["name"])
    assert (listed.call_count, sent.call_count) == (1, 0)
    expected = {"limit": "100", "raw_json": "1", **({"sort": "new"} if url == OUR_COMMENTS else {})}
    assert query_of(listed.calls[0]) == expected


@pytest.mark.parametrize(
    ("kind", "listed"),
    [
        ("comment", [_comment("lq1", parent="t3_other"), _comment("lq2", body="Fixed now."), _comment("lq3", at=T0)]),
        ("message-thread", [_sent_message("2b1", dest="mara_ops", parent="t4_other0"), _sent_message("2b2")]),
        ("private-message", [_sent_message("2b3", dest="someone_else"), _sent_message("2b4", at=T0)]),
    ],
)
@responses.activate
def test_a_retried_reply_without_a_copy_is_sent_once(channel, kind, listed):
    post_id, visibility, author, url, send = KINDS[kind]
    reply = _dead_worker_reply(channel, post_id=post_id, visibility=visibility, author=author)
    signed_in()
    looked = responses.get(url, json=listing(*listed))
    # Before a public reply: is the post still there? (A direct message is not asked after.)
    alive = responses.get(f"{API}/api/info", json=fixture("search__post"))
    answer = fixture("compose__ok") if send == "/api/compose" else fixture("comment__created")
    sent = responses.post(f"{API}{send}", json=answer)
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert reply.status == Reply.Status.SENT
    # A composed message is looked up once more after sending, to learn its id (none listed here).
    looks = 2 if send == "/api/compose" else 1
    assert (looked.call_count, alive.call_count, sent.call_count) == (looks, int(visibility == "public"), 1)
    assert form(sent.calls[0])["text"] == SENT_BODY


@pytest.mark.parametrize("kind", list(KINDS))
@responses.activate
def test_a_look_up_that_fails_sends_nothing_and_retries_later(channel, kind):
    post_id, visibility, author, url, send = KINDS[kind]
    reply = _dead_worker_reply(channel, post_id=post_id, visibility=visibility, author=author)
    signed_in()
    responses.get(url, status=503, body="upstream connect error")
    sent = responses.post(f"{API}{send}", json={"json": {"errors": []}})
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.QUEUED, "")
    assert reply.error.startswith("Reddit is failing")
    assert reply.retry_after is not None
    assert sent.call_count == 0


@responses.activate
@pytest.mark.parametrize(
    "config, subreddit", [({"status_subreddit": "r/acme_status"}, "acme_status"), ({}, "u_acme_support")]
)
def test_status_post_is_a_self_post_in_the_status_subreddit_or_on_the_profile(channel, config, subreddit):
    channel.config.update(config)
    signed_in()
    responses.post(f"{API}/api/submit", json=fixture("submit__self_post"), headers=LIMIT_HEADERS)
    text = "We know AcmeMail is down; updates here.\nNext update at 11:00 *UTC*."
    assert RedditConnector(channel).post_status(text, idempotency_key="k") == (
        "t3_1h9zq2x",
        "https://www.reddit.com/r/acme_status/comments/1h9zq2x/we_know_acmemail_is_down_updates_here/",
    )
    assert form(responses.calls[-1]) == {
        "api_type": "json",
        "kind": "self",
        "sr": subreddit,
        "title": "We know AcmeMail is down; updates here.",
        "text": "We know AcmeMail is down; updates here.  \nNext update at 11:00 \\*UTC\\*.",
    }


@responses.activate
def test_status_post_rate_limited_by_reddit_is_transient(channel):
    signed_in()
    responses.post(f"{API}/api/submit", json=fixture("comment__ratelimit"))
    with pytest.raises(TransientError) as limited:
        RedditConnector(channel).post_status("We know AcmeMail is down", idempotency_key="k")
    assert limited.value.retry_at is not None
