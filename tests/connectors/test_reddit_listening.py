"""Reddit listening in the shapes real inboxes and listings take: answers nested in private
message threads, moderators' messages, deleted accounts, removals, galleries, polls and
crossposts (HTTP mocked at the transport with `responses`)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from functools import partial

import pytest
import responses

from socialitsm.connectors import reddit
from socialitsm.connectors.base import DetailKind, PostDetail
from socialitsm.connectors.reddit import RedditConnector, thing_to_inbound
from socialitsm.models import Author, Channel, Incident, Post, Reply, WatchRule
from socialitsm.services.ingest import channel_poll
from socialitsm.services.replies import reply_options, reply_queue

from ..factories import AuthorFactory, IncidentFactory, PostFactory, ReplyFactory, WatchRuleFactory
from ..fixtures import load_fixture
from .shared import API, T0, TOKEN, form, reddit_channel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reddit_tokens", "clock")]

MESSAGES = f"{API}/message/messages"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

fixture = partial(load_fixture, "reddit")


@pytest.fixture
def channel():
    return reddit_channel(include_comments=True, password="pw")


def signed_in() -> None:
    responses.post(TOKEN, json=fixture("token__password"))


def poll(channel, django_capture_on_commit_callbacks) -> int:
    with django_capture_on_commit_callbacks(execute=True):
        return channel_poll(channel=Channel.objects.get(pk=channel.pk))


def reddit_author(name: str) -> Author:
    return AuthorFactory(network="reddit", external_id=name, handle=f"u/{name}", name="")


# --- answers inside private message threads -------------------------------------------------------

# Before the poll: the thread with mara_ops was read when only our first answer was in it.
CURSOR = {"messages": {"watermark": T0 - 6000, "seen": {"t4_2b3c5f": T0 - 6000}}}


@pytest.fixture
def direct_rule(channel):
    # Every message that does not continue an incident opens one: threading alone decides.
    return WatchRuleFactory(
        channel=channel, kind=WatchRule.Kind.DIRECT, query="", complaint_threshold=0.0, cursor=CURSOR
    )


@pytest.fixture
def printer(channel, direct_rule):
    """mara_ops's message (hours older than the cursor) with its incident, and our answer."""
    post = PostFactory(
        rule=direct_rule,
        external_id="t4_2b3c4e",
        conversation_id="t4_2b3c4e",
        is_direct=True,
        author=reddit_author("mara_ops"),
        text="Printer on floor 3",
        incident=IncidentFactory(short_description="Printer on floor 3"),
    )
    ReplyFactory(post=post, visibility=Reply.Visibility.DIRECT, status=Reply.Status.SENT, external_id="t4_2b3c5f")
    return post


@pytest.fixture
def webmail(channel):
    """jdoe_it's public post, which we answered with a new private message (t4_2b9a01)."""
    search = WatchRuleFactory(channel=channel, kind=WatchRule.Kind.SEARCH, query="AcmeMail", enabled=False)
    post = PostFactory(
        rule=search,
        external_id="t3_1h2g3k4",
        conversation_id="t3_1h2g3k4",
        author=reddit_author("jdoe_it"),
        text="AcmeMail down for anyone else?",
        incident=IncidentFactory(short_description="AcmeMail down"),
    )
    ReplyFactory(post=post, visibility=Reply.Visibility.DIRECT, status=Reply.Status.SENT, external_id="t4_2b9a01")
    return post


def test_a_thread_is_read_down_to_its_nested_answers_each_by_its_own_time(channel, direct_rule):
    with responses.RequestsMock() as mock:
        mock.post(TOKEN, json=fixture("token__password"))
        mock.get(MESSAGES, json=fixture("messages__threads"))
        posts, cursor = RedditConnector(channel).search(direct_rule, CURSOR)
    assert [(p.external_id, p.author.external_id, p.in_reply_to, p.conversation_id) for p in posts] == [
        ("t4_2b9a01", "acme_support", "", "t4_2b9a01"),
        ("t4_2b3c6a", "mara_ops", "t4_2b3c5f", "t4_2b3c4e"),
        ("t4_2b3c7b", "acme_support", "t4_2b3c6a", "t4_2b3c4e"),
        ("t4_2c0d01", "#sysadmin", "", "t4_2c0d01"),
        ("t4_2b3c8c", "mara_ops", "t4_2b3c7b", "t4_2b3c4e"),
        ("t4_2b9d10", "jdoe_it", "t4_2b9a01", "t4_2b9a01"),
    ]
    assert all(p.is_direct for p in posts)
    assert not any("replies" in p.raw["data"] for p in posts)
    assert posts[1].raw["data"]["body"] == posts[1].text
    assert posts[1].text == "It still jams after the technician left, and now it prints blank pages."
    # The thread of "Helpdesk hours" is older than the cursor's window: reading stopped there.
    assert cursor == {
        "messages": {
            "watermark": T0 + 2800,
            "seen": {
                "t4_2b3c6a": T0 + 2400,
                "t4_2b3c7b": T0 + 2500,
                "t4_2c0d01": T0 + 2600,
                "t4_2b3c8c": T0 + 2700,
                "t4_2b9d10": T0 + 2800,
            },
        }
    }


@responses.activate
def test_answers_in_threads_join_their_incidents_and_ours_are_not_complaints(
    channel, direct_rule, printer, webmail, django_capture_on_commit_callbacks
):
    signed_in()
    responses.get(MESSAGES, json=fixture("messages__threads"))

    assert poll(channel, django_capture_on_commit_callbacks) == 4

    stored = {p.external_id: p for p in Post.objects.select_related("author", "incident")}
    # Ours (the first message to jdoe_it, the second answer to mara_ops) were skipped.
    assert set(stored) == {"t4_2b3c4e", "t3_1h2g3k4", "t4_2b3c6a", "t4_2b3c8c", "t4_2b9d10", "t4_2c0d01"}
    # mara_ops answered our reply, then our second answer: both in the printer incident.
    assert stored["t4_2b3c6a"].incident_id == printer.incident_id
    assert stored["t4_2b3c8c"].incident_id == printer.incident_id
    # jdoe_it answered the private message we started about the public post: its incident.
    assert stored["t4_2b9d10"].incident_id == webmail.incident_id
    assert stored["t4_2b9d10"].is_direct
    assert stored["t4_2b9d10"].text == "It is INC-4471, and webmail still answers with a 502."
    # The moderators' message is a conversation of its own.
    assert stored["t4_2c0d01"].incident_id not in (printer.incident_id, webmail.incident_id)
    assert Incident.objects.count() == 3

    # The same inbox read again hands nothing out twice.
    responses.replace(responses.GET, MESSAGES, json=fixture("messages__threads"))
    assert poll(channel, django_capture_on_commit_callbacks) == 0
    assert Post.objects.count() == 6


def later_answer(listing: dict, *, created: float) -> dict:
    """The inbox as it reads once mara_ops answered again, deep in the old thread."""
    listing = copy.deepcopy(listing)
    thread = next(c for c in listing["data"]["children"] if c["data"]["name"] == "t4_2b3c4e")
    deepest = thread["data"]["replies"]["data"]["children"][1]["data"]["replies"]["data"]["children"][0]["data"]
    deepest = deepest["replies"]["data"]["children"][0]["data"]
    answer = copy.deepcopy(deepest)
    answer.update(
        id="2b3c9d", name="t4_2b3c9d", parent_id="t4_2b3c8c", created=created, created_utc=created, replies=""
    )
    answer["body"] = "Printer fixed, thanks!"
    deepest["replies"] = {
        "kind": "Listing",
        "data": {"after": None, "before": None, "children": [{"kind": "t4", "data": answer}]},
    }
    # Reddit lists threads by their latest message: this one comes up first.
    listing["data"]["children"].sort(key=lambda c: c["data"]["name"] != "t4_2b3c4e")
    return listing


@responses.activate
def test_a_later_answer_in_an_old_thread_is_delivered_once(
    channel, direct_rule, printer, webmail, django_capture_on_commit_callbacks
):
    signed_in()
    responses.get(MESSAGES, json=fixture("messages__threads"))
    poll(channel, django_capture_on_commit_callbacks)
    # A little later; the thread's first message is hours older than the cursor's window.
    responses.replace(responses.GET, MESSAGES, json=later_answer(fixture("messages__threads"), created=T0 + 2950))

    assert poll(channel, django_capture_on_commit_callbacks) == 1

    answer = Post.objects.get(external_id="t4_2b3c9d")
    assert (answer.text, answer.in_reply_to, answer.incident_id) == (
        "Printer fixed, thanks!",
        "t4_2b3c8c",
        printer.incident_id,
    )
    assert WatchRule.objects.get(pk=direct_rule.pk).cursor["messages"]["watermark"] == T0 + 2950


def test_an_answered_thread_listed_after_an_old_one_on_the_same_page_is_not_lost(channel, direct_rule):
    page = fixture("messages__threads")
    page["data"]["children"].reverse()  # the old "Helpdesk hours" thread first
    page["data"]["after"] = "t4_2b9a01"
    with responses.RequestsMock() as mock:
        mock.post(TOKEN, json=fixture("token__password"))
        read = mock.get(MESSAGES, json=page)
        posts, cursor = RedditConnector(channel).search(direct_rule, CURSOR)
    assert [p.external_id for p in posts] == [
        "t4_2b9a01",
        "t4_2b3c6a",
        "t4_2b3c7b",
        "t4_2c0d01",
        "t4_2b3c8c",
        "t4_2b9d10",
    ]
    # The page reached the cursor's window: no further page is asked for.
    assert read.call_count == 1
    assert cursor["messages"]["watermark"] == T0 + 2800


def test_a_message_thread_in_the_inbox_does_not_end_the_reading_of_mentions(channel):
    rule = WatchRuleFactory(channel=channel, kind=WatchRule.Kind.MENTIONS, query="")
    inbox = fixture("messages__threads")
    mention = fixture("inbox__mention")["data"]["children"][1]
    mention["data"]["created_utc"] = T0 + 2300
    # The printer thread (first message long before the cursor, answers after it), then a mention.
    inbox["data"]["children"].insert(2, mention)
    with responses.RequestsMock() as mock:
        mock.post(TOKEN, json=fixture("token__password"))
        mock.get(f"{API}/message/inbox", json=inbox)
        posts, cursor = RedditConnector(channel).search(rule, {"inbox": {"watermark": T0 - 6000, "seen": {}}})
    assert [p.external_id for p in posts] == ["t1_lqa00a1"]
    assert cursor["inbox"]["watermark"] == T0 + 2300


def test_a_thread_nested_past_the_depth_limit_is_cut_not_an_error():
    message = {"id": "x0", "name": "t4_x0", "author": "mara_ops", "body": "0", "created_utc": T0, "replies": ""}
    top = message
    for depth in range(1, reddit.parse.MAX_THREAD_DEPTH + 10):
        child = {**message, "id": f"x{depth}", "name": f"t4_x{depth}", "body": str(depth)}
        message["replies"] = {"kind": "Listing", "data": {"children": [{"kind": "t4", "data": child}]}}
        message = child
    thread = reddit.parse.thread_of("t4", top)
    assert len(thread) == reddit.parse.MAX_THREAD_DEPTH + 1
    assert reddit.parse.thread_of("t4", {**top, "replies": {"kind": "Listing", "data": {"children": "x"}}}) == [
        ("t4", {**top, "replies": {"kind": "Listing", "data": {"children": "x"}}})
    ]


# --- moderators' messages -------------------------------------------------------------------------


@responses.activate
def test_a_moderators_message_is_filed_under_the_subreddits_moderators_and_answered_in_its_thread(
    channel, agent, django_capture_on_commit_callbacks
):
    WatchRuleFactory(channel=channel, kind=WatchRule.Kind.DIRECT, query="", complaint_threshold=0.0)
    signed_in()
    responses.get(MESSAGES, json=fixture("messages__moderators"))
    poll(channel, django_capture_on_commit_callbacks)

    post = Post.objects.select_related("author", "incident").get()
    assert (post.author.external_id, post.author.handle, post.author.profile_url) == (
        "#sysadmin",
        "r/sysadmin moderators",
        "https://www.reddit.com/r/sysadmin/about/moderators",
    )
    assert post.text.startswith("Your post in r/sysadmin was removed\n\nYour post about the AcmeMail outage")
    options = reply_options(post)
    assert (options.public_refusal, options.direct_refusal) == (
        "This is a private message on Reddit: answer it with a direct message.",
        "",
    )

    sent = responses.post(f"{API}/api/comment", json=fixture("comment__moderators_reply"))
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_queue(
            incident=post.incident, post=post, text="Understood, thank you.", visibility="direct", agent=agent
        )
    assert form(sent.calls[0]) == {"api_type": "json", "thing_id": "t4_2c0d01", "text": "Understood, thank you."}
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == (Reply.Status.SENT, "t4_2c0d02")


@pytest.mark.parametrize(
    ("author", "data", "refusal"),
    [
        ("#sysadmin", {"author": None, "subreddit": "sysadmin"}, ""),
        # Stored before moderators had an author of their own: the payload tells.
        ("[deleted]", {"author": None, "subreddit": "sysadmin", "distinguished": "moderator"}, ""),
        ("[deleted]", {"author": "[deleted]"}, "The author's Reddit account is deleted"),
        ("[deleted]:t4_2b3c4e", {"author": "[deleted]", "subreddit": None}, "The author's Reddit account is deleted"),
    ],
)
def test_a_message_thread_is_refused_only_where_nobody_is_left(channel, author, data, refusal):
    post = Post(
        external_id="t4_2c0d01",
        raw={"kind": "t4", "data": data},
        text="x",
        author=AuthorFactory(network="reddit", external_id=author),
    )
    assert RedditConnector(channel).reply_refusal(post, "direct").startswith(refusal)
    assert bool(RedditConnector(channel).reply_refusal(post, "direct")) == bool(refusal)


def test_a_retried_reply_to_moderators_finds_its_copy_in_the_thread(channel):
    post = Post(
        external_id="t4_2c0d01",
        conversation_id="t4_2c0d01",
        raw={},
        text="x",
        author=AuthorFactory(network="reddit", external_id="#sysadmin", handle="r/sysadmin moderators"),
    )
    copy_ = fixture("comment__moderators_reply")["json"]["data"]["things"][0]
    with responses.RequestsMock() as mock:
        mock.post(TOKEN, json=fixture("token__password"))
        mock.get(f"{API}/message/sent", json={"kind": "Listing", "data": {"children": [copy_]}})
        found = RedditConnector(channel).find_sent(post, "Understood, thank you.", "direct", since=NOW.replace(hour=8))
    assert found == ["t4_2c0d02"]


# --- deleted accounts -----------------------------------------------------------------------------


@responses.activate
def test_each_deleted_account_is_an_author_of_its_own_and_never_merged(channel, django_capture_on_commit_callbacks):
    WatchRuleFactory(channel=channel, kind=WatchRule.Kind.SEARCH, query="AcmeMail", complaint_threshold=0.0)
    signed_in()
    responses.get(f"{API}/r/sysadmin/search", json={"kind": "Listing", "data": {"children": []}})
    responses.get(f"{API}/r/sysadmin/comments", json=fixture("comments__deleted_authors"))

    assert poll(channel, django_capture_on_commit_callbacks) == 3

    posts = list(Post.objects.select_related("author").order_by("external_id"))
    assert [(p.external_id, p.author.external_id, p.author.handle, p.author.profile_url) for p in posts] == [
        ("t1_lqd0001", "[deleted]:t1_lqd0001", "[deleted]", ""),
        ("t1_lqd0002", "[deleted]:t1_lqd0002", "[deleted]", ""),
        ("t1_lqd0003", "[deleted]:t1_lqd0003", "[deleted]", ""),
    ]
    # Three people in one thread (same conversation): three incidents, not one.
    assert {p.conversation_id for p in posts} == {"t3_1h2g3k4"}
    assert len({p.incident_id for p in posts}) == 3
    assert RedditConnector(channel).reply_refusal(posts[0], "direct") == (
        "The author's Reddit account is deleted: there is nobody to send a private message to."
    )

    # Read again from scratch: the same authors, nothing new.
    WatchRule.objects.update(cursor={})
    assert poll(channel, django_capture_on_commit_callbacks) == 0
    assert Author.objects.filter(network="reddit").count() == 3


def test_a_deleted_account_keeps_one_author_per_message_thread():
    base = {"author": "[deleted]", "body": "still broken", "created_utc": T0, "first_message_name": "t4_2b3c4e"}
    first = thing_to_inbound("t4", {**base, "id": "2b3c6a", "name": "t4_2b3c6a"})
    second = thing_to_inbound("t4", {**base, "id": "2b3c8c", "name": "t4_2b3c8c"})
    assert first.author.external_id == second.author.external_id == "[deleted]:t4_2b3c4e"


# --- removed by moderators or Reddit, deleted by the author ----------------------------------------


def test_listings_tell_removals_from_deletions(channel):
    rule = WatchRuleFactory(channel=channel, kind=WatchRule.Kind.SEARCH, query="AcmeMail")
    with responses.RequestsMock() as mock:
        mock.post(TOKEN, json=fixture("token__password"))
        mock.get(f"{API}/r/sysadmin/search", json=fixture("search__gone"))
        mock.get(f"{API}/r/sysadmin/comments", json=fixture("comments__gone"))
        posts, _ = RedditConnector(channel).search(rule, {})
    assert [(p.external_id, p.deleted, p.gone_reason) for p in posts] == [
        ("t3_1h4rm06", True, "removed"),  # copyright_takedown
        ("t1_lqg0001", True, "deleted"),
        ("t3_1h4rm05", False, ""),  # the account is gone, the post stands
        ("t1_lqg0002", True, "removed"),
        ("t3_1h4rm04", True, "deleted"),
        ("t1_lqg0003", True, "removed"),  # "[ Removed by Reddit on account of ... ]"
        ("t3_1h4rm03", True, "removed"),  # automod_filtered
        ("t3_1h4rm02", True, "removed"),  # reddit
        ("t3_1h4rm01", True, "removed"),  # moderator
    ]
    standing = posts[2]
    assert (standing.text, standing.author.external_id) == (
        "AcmeMail down since 9\n\nNobody here can log in.",
        "[deleted]:t3_1h4rm05",
    )


@responses.activate
def test_stored_posts_are_redacted_with_the_reason_the_listing_gives(channel, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory(channel=channel, kind=WatchRule.Kind.SEARCH, query="AcmeMail")
    removed = PostFactory(rule=rule, external_id="t3_1h4rm02", text="Acme VPN hacked?? call 555 0100")
    deleted = PostFactory(rule=rule, external_id="t3_1h4rm04", text="AcmeMail down? mail me at x@example.com")
    by_reddit = PostFactory(rule=rule, external_id="t1_lqg0003", text="AcmeMail leaked passwords here")
    signed_in()
    responses.get(f"{API}/r/sysadmin/search", json=fixture("search__gone"))
    responses.get(f"{API}/r/sysadmin/comments", json=fixture("comments__gone"))
    poll(channel, django_capture_on_commit_callbacks)
    for post in (removed, deleted, by_reddit):
        post.refresh_from_db()
    assert [(p.text, p.gone_reason) for p in (removed, deleted, by_reddit)] == [
        ("[removed by moderators]", "removed"),
        ("[deleted by the author]", "deleted"),
        ("[removed by moderators]", "removed"),
    ]


def test_the_recheck_tells_a_removal_by_reddit_from_a_deletion(channel):
    stored = [
        Post(external_id=name, raw={}, text="x", author=AuthorFactory(network="reddit"))
        for name in ("t3_1h4rm02", "t3_1h4rm04", "t3_1h4rm05", "t1_lqg0003", "t1_lqg0001")
    ]
    info = fixture("search__gone")
    info["data"]["children"] += fixture("comments__gone")["data"]["children"]
    with responses.RequestsMock() as mock:
        mock.post(TOKEN, json=fixture("token__password"))
        mock.get(f"{API}/api/info", json=info)
        gone = RedditConnector(channel).posts_gone(stored)
    assert gone == {"t3_1h4rm02": "removed", "t3_1h4rm04": "deleted", "t1_lqg0003": "removed", "t1_lqg0001": "deleted"}


# --- galleries, polls, crossposts -----------------------------------------------------------------


@responses.activate
def test_gallery_poll_and_crosspost_keep_what_an_agent_needs(channel, django_capture_on_commit_callbacks):
    channel.config["include_comments"] = False
    channel.save()
    WatchRuleFactory(channel=channel, kind=WatchRule.Kind.SEARCH, query="AcmeMail", complaint_threshold=0.0)
    signed_in()
    responses.get(f"{API}/r/sysadmin/search", json=fixture("search__media"))
    poll(channel, django_capture_on_commit_callbacks)
    posts = {p.external_id: p for p in Post.objects.all()}

    gallery = posts["t3_1h3ga01"]
    assert gallery.text == "AcmeMail error screens\n\nhttps://www.reddit.com/gallery/1h3ga01"
    assert gallery.details == [
        {
            "kind": "media",
            "text": "Login page: error 0x80070005 after SSO",
            "url": "https://preview.redd.it/k1x2y3z4a5.png?width=1600&format=png&auto=webp&s=2b",
        },
        {
            "kind": "media",
            "text": "The status page at the same time",
            "url": "https://preview.redd.it/m6n7o8p9q0.jpg?width=1200&format=pjpg&auto=webp&s=3c",
        },
        {"kind": "link", "text": "The status page at the same time", "url": "https://status.example.com/acme_mail"},
    ]

    poll_post = posts["t3_1h3po01"]
    assert poll_post.text == "Is AcmeMail down for you too?\n\nTrying to see how widespread this is."
    assert poll_post.details == [
        {"kind": "poll", "text": "Down for me (41 votes)", "url": ""},
        {"kind": "poll", "text": "Works fine (1 vote)", "url": ""},
        {"kind": "poll", "text": "Only the Outlook add-in", "url": ""},
        {"kind": "poll", "text": "Voting ends 2026-11-29 08:10 UTC", "url": ""},
    ]

    crosspost = posts["t3_1h3cr01"]
    assert crosspost.text == (
        "Same here in Berlin\n\nhttps://www.reddit.com/r/acme/comments/1h3or01/outage_acmemail_calendar/"
    )
    assert crosspost.details == [
        {
            "kind": "crosspost",
            "text": "r/acme, u/acme_fan: Outage: AcmeMail & calendar\n\n"
            "Since 07:50 UTC nobody can send mail. Status (https://status.example.com/acme_mail)",
            "url": "https://www.reddit.com/r/acme/comments/1h3or01/outage_acmemail_calendar/",
        }
    ]


def test_a_crosspost_of_a_gallery_brings_the_gallery_along():
    media = fixture("search__media")["data"]["children"]
    gallery = media[2]["data"]
    data = {
        **media[0]["data"],
        "crosspost_parent_list": [{**gallery, "subreddit": "acme", "author": "[deleted]", "title": "Screens"}],
    }
    details = thing_to_inbound("t3", data).details
    assert details[0] == PostDetail(
        kind=DetailKind.CROSSPOST,
        text="r/acme: Screens\n\nhttps://www.reddit.com/gallery/1h3ga01",
        url="https://www.reddit.com/r/sysadmin/comments/1h3ga01/x/",
    )
    assert [d.kind for d in details[1:]] == ["media", "media", "link"]


@pytest.mark.parametrize(
    "data",
    [
        {"poll_data": {"options": "x"}},
        {"poll_data": {"options": [None, {"text": ""}, {"text": 3, "vote_count": True}], "voting_end_timestamp": 1e30}},
        {"is_gallery": True, "gallery_data": {"items": [None, {"media_id": "gone"}]}, "media_metadata": []},
        {"is_gallery": True, "gallery_data": None},
        {"crosspost_parent_list": [None]},
        {"crosspost_parent_list": "x"},
    ],
)
def test_malformed_parts_are_left_out(data):
    post = thing_to_inbound("t3", {"id": "z1", "title": "AcmeMail down", "created_utc": T0, **data})
    assert post.text == "AcmeMail down"
    assert all(d.text or d.url for d in post.details if d.kind != DetailKind.MEDIA)


def test_a_closed_poll_says_voting_ended():
    poll = fixture("search__media")["data"]["children"][1]["data"]
    poll["poll_data"]["voting_end_timestamp"] = (T0 - 3600) * 1000
    assert thing_to_inbound("t3", poll).details[-1] == PostDetail(
        kind=DetailKind.POLL, text="Voting ended 2026-11-26 07:10 UTC"
    )
