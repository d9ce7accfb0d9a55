"""Deletions: the one redaction, the re-check sweep, and the look-up before a public reply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from socialitsm import tasks
from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Channel, Incident, IncidentEvent, ItsmConnection, ItsmDelivery, ItsmLink, Post, Reply
from socialitsm.services.deletions import (
    channel_posts_recheck,
    channels_recheck_due,
    posts_redact,
    reply_target_gone,
    text_without,
)
from socialitsm.services.incidents import incident_update, post_link
from socialitsm.services.itsm_sync import itsm_tick
from socialitsm.services.replies import reply_options, reply_queue, reply_send
from socialitsm.services.routing import posts_process
from socialitsm.text import shorten

from ..factories import ChannelFactory, IncidentFactory, PostFactory, ReplyFactory, WatchRuleFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SECRET = (
    "Acme VPN down again since 8am and I cannot log in to the payroll portal.\n\n"
    "My manager Petra Nowak says the Berlin office is stuck too. Employee 4711, please call me back "
    "on +49 30 1234567 before noon!!"
)


def stored_strings(incident: Incident) -> list[str]:
    """Every string we keep about an incident: its fields, its posts, its audit trail and what
    the ITSM sync recorded."""
    incident.refresh_from_db()
    strings = [incident.short_description, incident.description]
    for post in Post.objects.filter(incident=incident):
        strings += [post.text, str(post.raw), str(post.reasons)]
    for event in IncidentEvent.objects.filter(incident=incident):
        strings += [event.message, event.old_value, event.new_value]
    for link in ItsmLink.objects.filter(incident=incident):
        strings.append(str(link.pushed))
    strings += list(ItsmDelivery.objects.filter(link__incident=incident).values_list("detail", flat=True))
    return strings


def fragments_of(post: Post) -> list[str]:
    """The post's words as we may have stored them: whole, as a title, as a log line, and the
    classifier's reasons quoting it."""
    return [post.text, shorten(post.text, 160), shorten(post.text, 200), "Petra Nowak", "1234567", *post.reasons]


@pytest.fixture
def routed(clock):
    rule = WatchRuleFactory(complaint_threshold=0.05)
    post = PostFactory(
        rule=rule,
        text=SECRET,
        external_id="gone-1",
        raw={"text": SECRET},
        details=[
            {"kind": "alt_text", "text": "Photo of Petra Nowak's badge", "url": "https://files.example.com/b.png"}
        ],
    )
    posts_process(post_ids=[post.pk])
    post.refresh_from_db()
    assert post.incident is not None
    return post


def test_redaction_removes_the_text_from_the_post_title_description_events_and_itsm_sync(
    routed, agent, clock, fake_suite
):
    post = routed
    incident = post.incident
    ItsmConnection.objects.create(name="Suite", slug="suite", kind="fake", base_url="https://suite.example.com")
    itsm_tick()
    # An agent retitles it: the audit trail now holds the old, post-made title.
    incident = incident_update(incident=incident, actor=agent, short_description="VPN outage, Berlin")
    incident_update(incident=incident, actor=agent, short_description=shorten(SECRET, 160))
    clock.shift(timedelta(minutes=1))
    itsm_tick()
    fragments = fragments_of(post)
    assert any(fragment in text for fragment in fragments for text in stored_strings(incident))
    other = PostFactory(rule=post.rule, text="Same for me in Hamburg, VPN dead", external_id="stays-1")
    post_link(post=other, incident=incident)

    clock.shift(timedelta(minutes=1))
    assert posts_redact(network=post.network, external_ids=["gone-1", "unknown"]) == 1

    leftovers = [(f, text) for f in fragments for text in stored_strings(incident) if f in text]
    assert leftovers == []
    post.refresh_from_db()
    assert (post.text, post.raw, post.details, post.reasons, post.deleted_at, post.gone_reason) == (
        "[deleted by the author]",
        {},
        [],
        [],
        NOW + timedelta(minutes=2),
        "deleted",
    )
    incident.refresh_from_db()
    assert incident.short_description == "Post deleted by its author"
    assert incident.number.startswith("INC")
    assert "[deleted by the author]" in incident.description
    assert post.url in incident.description
    # The post that was not deleted keeps its words.
    assert incident.events.get(kind="post_linked", new_value=f"{other.network}:stays-1").message == other.text
    assert list(incident.events.filter(kind="post_deleted").values_list("old_value", "message")) == [
        (f"{post.network}:gone-1", "The author deleted this post; our copy was redacted.")
    ]
    # The next sync pushes the redacted title and sends none of the text again (a suite's
    # description is written once, at creation: no adapter can rewrite it).
    ticket = next(iter(fake_suite.tickets.values()))
    comments_before = len(ticket.comments)
    clock.shift(timedelta(minutes=1))
    itsm_tick()
    assert ticket.fields["short_description"] == "Post deleted by its author"
    sent_after = [c["text"] for c in ticket.comments[comments_before:]]
    assert sent_after and [f for f in fragments for text in sent_after if f in text] == []
    assert [f for f in fragments for text in stored_strings(incident) if f in text] == []


def test_a_removal_by_moderators_is_recorded_as_such(routed):
    posts_redact(network=routed.network, external_ids=[routed.external_id], reason=Post.Gone.REMOVED)
    routed.refresh_from_db()
    routed.incident.refresh_from_db()
    assert (routed.text, routed.gone_reason) == ("[removed by moderators]", "removed")
    assert routed.incident.short_description == "Post removed by moderators"
    assert routed.incident.events.get(kind="post_deleted").message == (
        "Moderators or the network removed this post; our copy was redacted."
    )


def test_a_title_an_agent_wrote_is_kept(routed, agent):
    incident_update(incident=routed.incident, actor=agent, short_description="Berlin VPN outage")
    posts_redact(network=routed.network, external_ids=[routed.external_id])
    routed.incident.refresh_from_db()
    assert routed.incident.short_description == "Berlin VPN outage"


def test_redaction_is_idempotent(routed):
    assert posts_redact(network=routed.network, external_ids=[routed.external_id]) == 1
    assert posts_redact(network=routed.network, external_ids=[routed.external_id]) == 0
    assert IncidentEvent.objects.filter(kind="post_deleted").count() == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Title: VPN down again since 8am and the portal is dead", "Title: [x]"),
        ("VPN down again since 8am…", "[x]"),
        ("VPN down again since 8am and the por", "[x]"),
        (
            "quoted twice: VPN down again since 8am and the portal is dead / VPN down again / VPN down",
            "quoted twice: [x] / [x] / VPN down",
        ),
        ("nothing of it here", "nothing of it here"),
        ("", ""),
    ],
)
def test_text_without_finds_the_text_whole_on_one_line_and_cut_short(value, expected):
    assert text_without(value, "VPN down again since 8am\nand the portal is dead", "[x]") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("VPN down", "[x]"),
        (" VPN  down ", "[x]"),
        (
            "@maria on Replay at 2026-11-26 08:00 UTC:\n\nVPN down\n\nhttps://example.com/1",
            "@maria on Replay at 2026-11-26 08:00 UTC:\n\n[x]\n\nhttps://example.com/1",
        ),
        ("Is the VPN down for you too?", "Is the VPN down for you too?"),
        ("from Suite; both sides changed the state", "from Suite; both sides changed the state"),
    ],
)
def test_a_short_text_is_only_taken_out_where_it_is_the_whole_value_or_line(value, expected):
    assert text_without(value, "VPN down", "[x]") == expected


def test_a_one_letter_post_leaves_other_words_alone(routed, agent):
    incident = routed.incident
    post = PostFactory(rule=routed.rule, text="a", external_id="short-1")
    post_link(post=post, incident=incident)
    posts_redact(network=post.network, external_ids=["short-1"])
    assert (
        incident.events.get(kind="post_linked", new_value=f"{post.network}:short-1").message
        == "[deleted by the author]"
    )
    assert incident.events.get(kind="opened").message.startswith("complaint score ")
    incident.refresh_from_db()
    assert incident.short_description == shorten(SECRET, 160)


# -- the sweep -----------------------------------------------------------------------------------


def _post_in(channel: Channel, state: str | None, external_id: str, **extra) -> Post:
    rule = WatchRuleFactory(channel=channel)
    incident = IncidentFactory(state=state) if state else None
    return PostFactory(rule=rule, external_id=external_id, incident=incident, **extra)


@pytest.fixture
def sweep_channel(clock, fake_network):
    fake_network.gone_lookup_batch = 2
    channel = ChannelFactory(config={"connector": "fake", "recheck_max_posts": 3, "recheck_minutes": 30})
    for number, state in enumerate(["new", "in_progress", "on_hold", "new", "resolved"], start=1):
        _post_in(channel, state, f"live-{number}")
    _post_in(channel, "closed", "closed-1")
    _post_in(channel, "canceled", "canceled-1")
    _post_in(channel, None, "loose-1")
    _post_in(channel, "new", "deleted-1", deleted_at=NOW - timedelta(days=1))
    _post_in(ChannelFactory(), "new", "elsewhere-1")
    return channel


def test_the_sweep_looks_up_live_posts_of_open_incidents_within_the_budget_and_rotates(
    sweep_channel, clock, fake_network
):
    fake_network.gone = {"live-2": "deleted"}
    result = channel_posts_recheck(channel=sweep_channel)
    assert (result.checked, result.gone, result.error) == (3, 1, "")
    assert fake_network.gone_lookups == [["live-1", "live-2"], ["live-3"]]
    assert Post.objects.get(external_id="live-2").text == "[deleted by the author]"
    assert Post.objects.get(external_id="live-1").checked_at == NOW

    clock.shift(timedelta(minutes=1))
    fake_network.gone_lookups.clear()
    assert channel_posts_recheck(channel=sweep_channel).checked == 2
    assert fake_network.gone_lookups == [["live-4", "live-5"]]

    clock.shift(timedelta(minutes=1))
    fake_network.gone_lookups.clear()
    assert channel_posts_recheck(channel=sweep_channel).checked == 0
    assert fake_network.gone_lookups == []

    # Half an hour after the first look: the least recently checked go first again.
    clock.shift(timedelta(minutes=29))
    assert channel_posts_recheck(channel=sweep_channel).checked == 2
    assert fake_network.gone_lookups == [["live-1", "live-3"]]
    never = Post.objects.filter(external_id__in=["closed-1", "canceled-1", "loose-1", "deleted-1", "elsewhere-1"])
    assert list(never.exclude(checked_at=None)) == []


def test_a_network_error_ends_the_sweep_and_marks_nothing_gone(sweep_channel, fake_network):
    fake_network.gone = {"live-1": "deleted", "live-3": "removed"}
    fake_network.gone_lookup_errors = [TransientError("mastodon.example is failing (HTTP 503)")]
    result = channel_posts_recheck(channel=sweep_channel)
    assert (result.checked, result.gone, result.error) == (0, 0, "mastodon.example is failing (HTTP 503)")
    assert fake_network.gone_lookups == [["live-1", "live-2"]]
    assert Post.objects.filter(deleted_at__isnull=False).count() == 1  # deleted-1, from before
    assert Channel.objects.get(pk=sweep_channel.pk).requests_made == 1


def test_a_later_batch_failing_keeps_what_earlier_batches_found(sweep_channel, fake_network):
    fake_network.gone = {"live-1": "deleted", "live-3": "removed"}
    fake_network.gone_lookup_errors = [None, PermanentError("refused")]
    result = channel_posts_recheck(channel=sweep_channel)
    assert (result.checked, result.gone, result.error) == (2, 1, "refused")
    assert Post.objects.get(external_id="live-1").gone_reason == "deleted"
    assert Post.objects.get(external_id="live-3").deleted_at is None


def test_channels_due_are_handed_to_tasks(sweep_channel, clock, monkeypatch):
    handed: list[int] = []
    monkeypatch.setattr(tasks.channel_posts_recheck_task, "delay", handed.append)
    failing = ChannelFactory(health=Channel.Health.FAILING)
    _post_in(failing, "new", "failing-1")
    disabled = ChannelFactory(enabled=False)
    _post_in(disabled, "new", "disabled-1")
    webhook = ChannelFactory(network="webhook", config={})
    _post_in(webhook, "new", "webhook-1")
    replay = ChannelFactory(network="replay", config={})
    _post_in(replay, "new", "replay-1")
    other = Post.objects.get(external_id="elsewhere-1").channel
    assert channels_recheck_due() == [sweep_channel.pk, other.pk]
    assert handed == [sweep_channel.pk, other.pk]
    # Once every post was looked up, nothing is due until the interval has passed.
    channel_posts_recheck(channel=sweep_channel)
    channel_posts_recheck(channel=sweep_channel)
    channel_posts_recheck(channel=other)
    assert channels_recheck_due() == []
    clock.shift(timedelta(minutes=31))
    assert channels_recheck_due() == [sweep_channel.pk, other.pk]


def test_networks_without_a_look_up_are_never_asked(clock, fake_network):
    for network in ("webhook", "replay"):
        channel = ChannelFactory(network=network, config={})
        _post_in(channel, "new", f"{network}-1")
        assert channel_posts_recheck(channel=channel).checked == 0
    assert Post.objects.exclude(checked_at=None).count() == 0


def test_x_checks_less_often_and_fewer_posts_by_default():
    from socialitsm.connectors import connector_for

    x = connector_for(ChannelFactory(network="x", config={}))
    mastodon = connector_for(ChannelFactory(network="mastodon", config={}))
    tuned = connector_for(ChannelFactory(network="x", config={"recheck_minutes": "60", "recheck_max_posts": 5}))
    assert x.recheck_budget() == (timedelta(hours=6), 20)
    assert mastodon.recheck_budget() == (timedelta(minutes=30), 100)
    assert tuned.recheck_budget() == (timedelta(minutes=60), 5)


def test_the_recheck_tasks_run_the_sweep(sweep_channel, fake_network, caplog):
    tasks.channel_posts_recheck_task(sweep_channel.pk)
    assert fake_network.gone_lookups == [["live-1", "live-2"], ["live-3"]]
    Channel.objects.filter(pk=sweep_channel.pk).update(enabled=False)
    tasks.channel_posts_recheck_task(sweep_channel.pk)
    assert len(fake_network.gone_lookups) == 2
    assert f"channel {sweep_channel.pk} vanished or was disabled before its re-check" in caplog.text


# -- before a public reply -----------------------------------------------------------------------


@pytest.fixture
def answered(clock):
    post = PostFactory(text="VPN down again, third time this week", external_id="target-1")
    posts_process(post_ids=[post.pk])
    post.refresh_from_db()
    return post


def test_a_public_reply_to_a_post_deleted_meanwhile_is_not_sent(answered, agent, fake_network):
    reply = ReplyFactory(post=answered, incident=answered.incident, agent=agent)
    fake_network.gone = {"target-1": "deleted"}
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.error) == (
        Reply.Status.FAILED,
        "the post was deleted by its author, so it cannot be answered in public; send a direct message instead",
    )
    assert fake_network.sent == []
    assert fake_network.gone_lookups == [["target-1"]]
    answered.refresh_from_db()
    assert (answered.text, answered.checked_at is not None) == ("[deleted by the author]", True)
    assert list(answered.incident.events.values_list("kind", flat=True))[-2:] == ["post_deleted", "reply_failed"]


def test_a_public_reply_to_a_live_post_goes_out_after_the_look_up(answered, agent, fake_network):
    reply = ReplyFactory(post=answered, incident=answered.incident, agent=agent)
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert reply.status == Reply.Status.SENT
    assert fake_network.gone_lookups == [["target-1"]]
    assert [sent["to"] for sent in fake_network.sent] == ["target-1"]


def test_a_look_up_that_cannot_answer_now_retries_the_reply_later(clock, answered, agent, fake_network):
    reply = ReplyFactory(post=answered, incident=answered.incident, agent=agent)
    fake_network.gone_lookup_errors = [TransientError("timed out calling mastodon.example")]
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert (reply.status, reply.error) == (Reply.Status.QUEUED, "timed out calling mastodon.example")
    assert reply.retry_after > NOW
    assert fake_network.sent == []
    answered.refresh_from_db()
    assert answered.deleted_at is None
    # Not sent blind before its next attempt; then the post is asked about again.
    assert reply_send(reply=reply) is None
    clock.move_to(reply.retry_after)
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert reply.status == Reply.Status.SENT
    assert fake_network.gone_lookups == [["target-1"], ["target-1"]]
    assert len(fake_network.sent) == 1


def test_a_refused_look_up_leaves_the_verdict_to_the_reply(answered, agent, fake_network):
    reply = ReplyFactory(post=answered, incident=answered.incident, agent=agent)
    fake_network.gone_lookup_errors = [PermanentError("this token may not read statuses")]
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert reply.status == Reply.Status.SENT


def test_a_direct_message_is_not_held_up_by_a_look_up(answered, agent, fake_network):
    reply = ReplyFactory(post=answered, incident=answered.incident, agent=agent, visibility="direct")
    fake_network.gone = {"target-1": "deleted"}
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert reply.status == Reply.Status.SENT
    assert fake_network.gone_lookups == []


def test_a_post_known_gone_fails_the_reply_without_asking(answered, agent, fake_network):
    posts_redact(network=answered.network, external_ids=["target-1"], reason=Post.Gone.REMOVED)
    answered.refresh_from_db()
    reply = Reply.objects.create(
        incident=answered.incident, post=answered, channel=answered.channel, visibility="public", text="Hi"
    )
    assert reply_target_gone(reply=reply).startswith("the post was removed by moderators")
    reply_send(reply=reply)
    reply.refresh_from_db()
    assert reply.status == Reply.Status.FAILED
    assert (fake_network.gone_lookups, fake_network.sent) == ([], [])


def test_queueing_a_public_reply_to_a_deleted_post_is_refused_with_the_reason(
    answered, agent, fake_network, django_capture_on_commit_callbacks
):
    posts_redact(network=answered.network, external_ids=["target-1"])
    answered.refresh_from_db()
    options = reply_options(answered)
    assert options.public_refusal == (
        "the post was deleted by its author, so it cannot be answered in public; send a direct message instead"
    )
    assert options.direct_refusal == ""
    from socialitsm.exceptions import ApplicationError

    with pytest.raises(ApplicationError) as refused:
        reply_queue(incident=answered.incident, post=answered, text="Hi", visibility="public", agent=agent)
    assert (refused.value.message, refused.value.field) == (options.public_refusal, "visibility")
    assert Reply.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_queue(incident=answered.incident, post=answered, text="Hi", visibility="direct", agent=agent)
    reply.refresh_from_db()
    assert reply.status == Reply.Status.SENT


def test_a_rate_limit_holds_the_channels_look_ups_until_it_resets(sweep_channel, clock, fake_network, monkeypatch):
    reset = NOW + timedelta(hours=2)
    fake_network.gone_lookup_errors = [TransientError("rate limit reached", status=429, retry_at=reset)]
    assert channel_posts_recheck(channel=sweep_channel).error == "rate limit reached"
    sweep_channel.refresh_from_db()
    assert sweep_channel.rate_limited_until == reset
    monkeypatch.setattr(tasks.channel_posts_recheck_task, "delay", lambda channel_id: None)

    clock.shift(timedelta(minutes=31))
    fake_network.gone_lookups.clear()
    assert sweep_channel.pk not in channels_recheck_due()
    assert channel_posts_recheck(channel=sweep_channel).checked == 0
    assert fake_network.gone_lookups == []

    clock.shift(timedelta(hours=2))
    assert sweep_channel.pk in channels_recheck_due()
    assert channel_posts_recheck(channel=sweep_channel).checked == 3
