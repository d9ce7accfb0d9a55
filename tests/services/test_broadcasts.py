from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from socialitsm.exceptions import ApplicationError, ConflictError, PermanentError, TransientError
from socialitsm.models import Broadcast, Incident, IncidentEvent, Network, Reply, SlaClock, StatusPost
from socialitsm.services.broadcasts import (
    broadcast_confirm,
    broadcast_create,
    broadcast_discard,
    broadcast_preview,
    broadcast_propose_fixed,
    broadcast_update,
    status_post_publish,
    status_post_retry,
    status_posts_send_due,
    template_parse,
)
from socialitsm.services.replies import replies_send_due
from socialitsm.services.routing import posts_process

from ..factories import (
    AuthorFactory,
    ChannelFactory,
    IncidentFactory,
    PostFactory,
    WatchRuleFactory,
    major_child,
    major_incident,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
EVERYONE = "E-mail down for everyone"


@pytest.fixture
def rule():
    return WatchRuleFactory(channel=ChannelFactory(slug="support", network=Network.MASTODON))


# -- the template ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("Hi {nom}", "unknown variable {nom}"),
        ("Hi {name.__class__}", "unknown variable {name.__class__}"),
        ("Hi {name[0]}", "unknown variable {name[0]}"),
        ("Hi {name:>9999}", "unknown variable {name:>9999}"),
        ("Hi {name!r}", "unknown variable {name!r}"),
        ("Hi {0}", "unknown variable {0}"),
        ("Hi {}", "unknown variable {}"),
        ("Hi {name", "stray brace"),
        ("Hi name}", "stray brace"),
    ],
)
def test_template_refuses_anything_but_plain_variables(text, message):
    with pytest.raises(ApplicationError) as refused:
        template_parse(text)
    assert message in refused.value.message
    assert refused.value.field == "text"


def test_unknown_variable_is_refused_when_the_draft_is_written(rule, agent):
    major = major_incident(short_description=EVERYONE)
    with pytest.raises(ApplicationError, match=r"unknown variable \{ticket\}"):
        broadcast_create(major=major, text="Hi {name}, see {ticket}", actor=agent)
    assert Broadcast.objects.count() == 0


def test_broadcast_needs_a_major_incident(rule, agent):
    plain = IncidentFactory()
    with pytest.raises(ApplicationError, match="is not a major incident"):
        broadcast_create(major=plain, text="Hi", actor=agent)


# -- preview ---------------------------------------------------------------------------------------


def test_preview_personalises_per_poster_and_says_who_is_left_out(rule, agent, fake_network):
    major = major_incident(short_description=EVERYONE)
    child_a, _post_a = major_child(major, rule, handle="@ana", name="Ana")
    child_b, post_b = major_child(major, rule, handle="@bo", name="")
    # Bo wrote twice: the latest post is answered, once.
    later_b = PostFactory(
        rule=rule, author=post_b.author, incident=child_b, posted_at=post_b.posted_at + timedelta(minutes=5)
    )
    child_c, _post_c = major_child(major, rule, handle="@cy", name="Cy", state="closed")
    # A poster on the major incident itself gets it too.
    major_post = PostFactory(rule=rule, incident=major, author=AuthorFactory(handle="@dee", name="Dee {incident}"))
    broadcast = broadcast_create(
        major=major, text="Hi {name} ({handle}): {service} is down, {{we know}}. Ref {incident}.", actor=agent
    )

    preview = broadcast_preview(broadcast)

    by_handle = {r.author.handle: r for r in preview.recipients}
    assert set(by_handle) == {"@ana", "@bo", "@cy", "@dee"}
    assert by_handle["@ana"].text == f"Hi Ana (@ana): Email is down, {{we know}}. Ref {child_a.number}."
    assert by_handle["@ana"].visibility == "public"
    assert by_handle["@bo"].post == later_b
    assert by_handle["@bo"].text == f"Hi bo (@bo): Email is down, {{we know}}. Ref {child_b.number}."
    # Values are inserted as written, never formatted again.
    assert by_handle["@dee"].text == f"Hi Dee {{incident}} (@dee): Email is down, {{we know}}. Ref {major.number}."
    assert by_handle["@dee"].post == major_post
    assert (by_handle["@cy"].reason_code, by_handle["@cy"].reason) == ("closed", f"{child_c.number} is closed")
    # Oldest latest post first: Bo wrote again after Dee.
    assert [r.author.handle for r in preview.to_send] == ["@ana", "@dee", "@bo"]
    assert fake_network.sent == []


def test_preview_refuses_texts_too_long_for_the_network(rule, agent, fake_network):
    fake_network.max_reply_chars = 30
    major = major_incident(short_description=EVERYONE)
    major_child(major, rule, handle="@al", name="Al")
    major_child(major, rule, handle="@b", name="Bartholomew Longname-Example")
    broadcast = broadcast_create(major=major, text="Hi {name}, mail is back.", actor=agent)

    preview = broadcast_preview(broadcast)

    fits, long = preview.recipients
    assert (fits.text, fits.sendable) == ("Hi Al, mail is back.", True)
    assert long.reason_code == "too_long"
    assert long.reason == "the message is 46 characters for this poster; Mastodon allows 30"


def test_direct_message_where_public_refused_and_left_out_where_neither(rule, agent, fake_network):
    major = major_incident(short_description=EVERYONE)
    major_child(major, rule, handle="@pub")
    broadcast = broadcast_create(major=major, text="Update: {service} is being fixed", actor=agent)
    fake_network.refusals = {"public": "the author did not mention us"}
    assert [(r.visibility, r.reason_code) for r in broadcast_preview(broadcast).recipients] == [("direct", "")]
    fake_network.refusals = {"public": "the author did not mention us", "direct": "they do not accept messages"}
    (left,) = broadcast_preview(broadcast).recipients
    assert left.reason_code == "no_reply"
    assert left.reason == "no reply possible: the author did not mention us; they do not accept messages"


def test_agent_may_choose_direct_messages(rule, agent):
    major = major_incident(short_description=EVERYONE)
    major_child(major, rule, handle="@pub")
    broadcast = broadcast_create(major=major, text="Update", actor=agent, visibility="direct")
    assert [r.visibility for r in broadcast_preview(broadcast).recipients] == ["direct"]


# -- confirm ---------------------------------------------------------------------------------------


def test_nothing_is_sent_before_confirmation(rule, agent, fake_network, django_capture_on_commit_callbacks):
    major = major_incident(short_description=EVERYONE)
    major_child(major, rule, handle="@ana")
    with django_capture_on_commit_callbacks(execute=True):
        broadcast_create(major=major, text="Hi {name}", actor=agent)
    assert fake_network.sent == []
    assert Reply.objects.count() == 0


def test_confirm_sends_once_per_poster_and_is_idempotent(
    clock, rule, agent, lead, fake_network, django_capture_on_commit_callbacks
):
    major = major_incident(short_description=EVERYONE)
    child_a, post_a = major_child(major, rule, handle="@ana", name="Ana")
    child_b, post_b = major_child(major, rule, handle="@bo", name="Bo")
    _child_c, post_c = major_child(major, rule, handle="@cy", name="Cy")
    broadcast = broadcast_create(major=major, text="Hi {name}, we are on it ({incident}).", actor=agent)

    with django_capture_on_commit_callbacks(execute=True):
        confirmed = broadcast_confirm(broadcast=broadcast, actor=lead, exclude=[post_c.author_id])
    with django_capture_on_commit_callbacks(execute=True):
        again = broadcast_confirm(broadcast=broadcast, actor=agent, exclude=[])

    assert again.pk == confirmed.pk
    assert (again.confirmed_by, again.recipient_count, again.skipped_count) == (lead, 2, 1)
    assert again.skipped == [
        {"author": post_c.author_id, "handle": "@cy", "code": "excluded", "reason": "left out by the agent"}
    ]
    replies = list(Reply.objects.filter(broadcast=broadcast).order_by("pk"))
    assert [(r.incident, r.post, r.text) for r in replies] == [
        (child_a, post_a, f"Hi Ana, we are on it ({child_a.number})."),
        (child_b, post_b, f"Hi Bo, we are on it ({child_b.number})."),
    ]
    # The first goes at once; the second waits for its slot (Mastodon: 2 a minute).
    assert [(r.status, r.sent_at, r.retry_after) for r in replies] == [
        ("sent", NOW, None),
        ("queued", None, NOW + timedelta(seconds=30)),
    ]
    assert [m["text"] for m in fake_network.sent] == [f"Hi Ana, we are on it ({child_a.number})."]
    assert IncidentEvent.objects.filter(incident=major, kind="broadcast_confirmed").count() == 1


def test_posters_who_already_had_the_message_are_left_out(clock, rule, agent, django_capture_on_commit_callbacks):
    major = major_incident(short_description=EVERYONE)
    major_child(major, rule, handle="@ana")
    with django_capture_on_commit_callbacks(execute=True):
        broadcast_confirm(broadcast=broadcast_create(major=major, text="We are on it", actor=agent), actor=agent)
    _child_b, _post_b = major_child(major, rule, handle="@late")
    again = broadcast_create(major=major, text="We are on it", actor=agent)
    other = broadcast_create(major=major, text="New update: a fix is being tested", actor=agent)

    assert [(r.author.handle, r.reason_code) for r in broadcast_preview(again).recipients] == [
        ("@ana", "already_had"),
        ("@late", ""),
    ]
    assert [r.reason_code for r in broadcast_preview(other).recipients] == ["", ""]


def test_unknown_exclusion_and_discarded_draft_are_refused(rule, agent):
    major = major_incident(short_description=EVERYONE)
    major_child(major, rule, handle="@ana")
    broadcast = broadcast_create(major=major, text="Hi", actor=agent)
    stranger = AuthorFactory()
    with pytest.raises(ApplicationError, match="not an affected poster"):
        broadcast_confirm(broadcast=broadcast, actor=agent, exclude=[stranger.pk])
    broadcast_discard(broadcast=broadcast, actor=agent)
    with pytest.raises(ConflictError):
        broadcast_confirm(broadcast=broadcast, actor=agent)
    assert Reply.objects.count() == 0


def test_confirmed_broadcast_cannot_be_edited(clock, rule, agent, django_capture_on_commit_callbacks):
    major = major_incident(short_description=EVERYONE)
    major_child(major, rule, handle="@ana")
    broadcast = broadcast_create(major=major, text="Hi", actor=agent)
    broadcast_update(broadcast=broadcast, actor=agent, text="Hi {name}")
    with django_capture_on_commit_callbacks(execute=True):
        broadcast_confirm(broadcast=broadcast, actor=agent)
    with pytest.raises(ConflictError):
        broadcast_update(broadcast=broadcast, actor=agent, text="changed")


# -- fixed -----------------------------------------------------------------------------------------


def test_propose_fixed_drafts_one_editable_message(clock, rule, agent, settings, django_capture_on_commit_callbacks):
    settings.SOCIALITSM_BROADCAST_FIXED_TEXT = "Fixed: {service} works again, {name}."
    major = major_incident(short_description=EVERYONE)
    _child, _post = major_child(major, rule, handle="@ana", name="Ana")

    draft = broadcast_propose_fixed(major=major, actor=None)
    assert broadcast_propose_fixed(major=major, actor=None) == draft
    assert (draft.kind, draft.status, draft.text) == ("fixed", "draft", "Fixed: {service} works again, {name}.")
    assert Reply.objects.count() == 0

    broadcast_update(broadcast=draft, actor=agent, text="All fixed, {name}: {service} is back.")
    with django_capture_on_commit_callbacks(execute=True):
        broadcast_confirm(broadcast=draft, actor=agent)
    assert list(Reply.objects.values_list("text", flat=True)) == ["All fixed, Ana: Email is back."]
    # A second fixed message skips those told already.
    second = broadcast_propose_fixed(major=major, actor=None)
    assert second != draft
    assert [r.reason_code for r in broadcast_preview(second).recipients] == ["already_had"]


# -- SLA -------------------------------------------------------------------------------------------


def routed_child(major: Incident, rule, handle: str) -> Incident:
    post = PostFactory(rule=rule, author=AuthorFactory(handle=handle), text="Outlook is down, no mail at all")
    posts_process(post_ids=[post.pk])
    post.refresh_from_db()
    child = post.incident
    Incident.objects.filter(pk=child.pk).update(parent=major)
    return child


def test_delivered_broadcast_reply_is_the_first_response_and_a_failed_one_is_not(
    clock, rule, agent, sla_defaults, fake_network, django_capture_on_commit_callbacks
):
    rule.channel.config["broadcast_per_minute"] = 60
    rule.channel.save()
    major = major_incident(short_description=EVERYONE)
    delivered = routed_child(major, rule, "@ana")
    refused = routed_child(major, rule, "@bo")
    broadcast = broadcast_create(major=major, text="We know, {name}; fixing it", actor=agent)
    fake_network.errors = []
    with django_capture_on_commit_callbacks(execute=True):
        broadcast_confirm(broadcast=broadcast, actor=agent)
    clock.shift(timedelta(seconds=1))
    fake_network.errors = [PermanentError("Mastodon refused the request (HTTP 422): blocked")]
    clock.shift(timedelta(seconds=60))
    replies_send_due()

    delivered.refresh_from_db()
    refused.refresh_from_db()
    assert delivered.first_response_at == NOW
    assert refused.first_response_at is None
    assert Reply.objects.get(incident=refused).status == "failed"
    first = SlaClock.Target.FIRST_RESPONSE
    assert delivered.sla_clocks.get(target=first).state == "met"
    assert refused.sla_clocks.get(target=first).state == "running"


# -- 200 posters on two channels -------------------------------------------------------------------


def test_200_posters_on_two_channels_are_answered_paced_once_each(
    clock, agent, fake_network, django_capture_on_commit_callbacks
):
    # Mastodon paces 2 a minute, Bluesky 6 (SOCIALITSM_BROADCAST_PER_MINUTE defaults).
    rules = [
        WatchRuleFactory(channel=ChannelFactory(slug="masto", network=Network.MASTODON)),
        WatchRuleFactory(channel=ChannelFactory(slug="sky", network=Network.BLUESKY)),
    ]
    intervals = {rules[0].channel.pk: timedelta(seconds=30), rules[1].channel.pk: timedelta(seconds=10)}
    major = major_incident(short_description=EVERYONE)
    for n in range(200):
        major_child(major, rules[n % 2], handle=f"@p{n}", name=f"P{n}")
    broadcast = broadcast_create(major=major, text="{name}: {service} is down, we are on it ({incident})", actor=agent)
    # The first send of the Mastodon channel fails on the way: it is retried. The first of the
    # Bluesky channel gets through but its answer is lost: the retry finds it, never doubles it.
    fake_network.errors = [TransientError("Mastodon is failing (HTTP 503): try later")]
    fake_network.answers_lost = 1

    with django_capture_on_commit_callbacks(execute=True):
        broadcast_confirm(broadcast=broadcast, actor=agent)

    replies = list(Reply.objects.filter(broadcast=broadcast).order_by("channel_id", "pk"))
    assert len(replies) == 200
    scheduled: dict[int, list[datetime]] = defaultdict(list)
    for reply in replies:
        scheduled[reply.channel_id].append(reply.retry_after if reply.attempts == 0 else NOW)
    for channel_id, times in scheduled.items():
        assert sorted(times) == [NOW + k * intervals[channel_id] for k in range(100)]
    # Each retry waits for its channel's next free slot, after the 100 scheduled ones.
    retried = Reply.objects.filter(broadcast=broadcast, attempts=1, status="queued")
    assert sorted((r.channel_id, r.retry_after) for r in retried) == [
        (rule.channel_id, NOW + 100 * intervals[rule.channel_id]) for rule in rules
    ]

    for _ in range(700):
        clock.shift(timedelta(seconds=5))
        replies_send_due()
        if not Reply.objects.filter(broadcast=broadcast).exclude(status="sent").exists():
            break

    replies = list(Reply.objects.filter(broadcast=broadcast))
    assert {r.status for r in replies} == {"sent"}
    assert sorted(r.attempts for r in replies) == [1] * 198 + [2, 2]
    assert len(fake_network.sent) == 200
    assert len({m["to"] for m in fake_network.sent}) == 200
    assert len({m["key"] for m in fake_network.sent}) == 200
    sent_times: dict[int, list[datetime]] = defaultdict(list)
    for reply in replies:
        sent_times[reply.channel_id].append(reply.sent_at)
    for channel_id, times in sent_times.items():
        times.sort()
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= intervals[channel_id]
    # 100 replies at each channel's pace take 99 intervals, and one more for the retried one.
    assert max(sent_times[rules[1].channel.pk]) == NOW + 100 * timedelta(seconds=10)
    assert max(sent_times[rules[0].channel.pk]) == NOW + 100 * timedelta(seconds=30)
    # Each poster's own incident got its first response.
    assert Incident.objects.filter(parent=major, first_response_at__isnull=False).count() == 200


# -- status posts ----------------------------------------------------------------------------------


def test_status_post_is_published_once_and_retried_after_a_transient_error(
    clock, rule, agent, fake_network, django_capture_on_commit_callbacks
):
    major = major_incident(short_description=EVERYONE)
    fake_network.errors = [TransientError("Mastodon is failing (HTTP 502): bad gateway")]
    with django_capture_on_commit_callbacks(execute=True):
        status_post = status_post_publish(major=major, channel=rule.channel, text="We know e-mail is down", actor=agent)
    status_post.refresh_from_db()
    assert (status_post.status, status_post.attempts, status_post.error) == (
        "queued",
        1,
        "Mastodon is failing (HTTP 502): bad gateway",
    )
    assert NOW + timedelta(seconds=15) <= status_post.retry_after <= NOW + timedelta(seconds=30)
    assert status_posts_send_due() == 0
    clock.shift(timedelta(seconds=31))
    assert status_posts_send_due() == 1
    assert status_posts_send_due() == 0
    status_post.refresh_from_db()
    assert (status_post.status, status_post.external_id, status_post.url) == (
        "sent",
        "fake-status-1",
        "https://social.example.com/support/fake-status-1",
    )
    assert fake_network.statuses == [
        {
            "id": "fake-status-1",
            "channel": "support",
            "text": "We know e-mail is down",
            "key": str(status_post.idempotency_key),
        }
    ]
    assert list(major.events.filter(kind__startswith="status_post").values_list("kind", flat=True)) == [
        "status_post_queued",
        "status_post_sent",
    ]
    with pytest.raises(ConflictError, match="already has a status post"):
        status_post_publish(major=major, channel=rule.channel, text="Again", actor=agent)


def test_status_post_refused_where_the_network_has_none(rule, agent, fake_network):
    fake_network.status_refusal = "Webhook channels cannot publish a status post"
    with pytest.raises(ApplicationError, match="Webhook channels cannot publish a status post"):
        status_post_publish(
            major=major_incident(short_description=EVERYONE), channel=rule.channel, text="We know", actor=agent
        )
    assert StatusPost.objects.count() == 0


def test_status_post_failing_permanently_can_be_retried(
    clock, rule, agent, fake_network, django_capture_on_commit_callbacks
):
    major = major_incident(short_description=EVERYONE)
    fake_network.errors = [PermanentError("Mastodon refused the request (HTTP 422): duplicate")]
    with django_capture_on_commit_callbacks(execute=True):
        status_post = status_post_publish(major=major, channel=rule.channel, text="We know", actor=agent)
    status_post.refresh_from_db()
    assert (status_post.status, status_post.error) == ("failed", "Mastodon refused the request (HTTP 422): duplicate")
    with django_capture_on_commit_callbacks(execute=True):
        status_post_retry(status_post=status_post, actor=agent)
    status_post.refresh_from_db()
    assert (status_post.status, len(fake_network.statuses)) == ("sent", 1)
    with pytest.raises(ConflictError):
        status_post_retry(status_post=status_post, actor=agent)


def test_two_posters_on_one_incident_each_get_their_own_reply(clock, rule, agent, django_capture_on_commit_callbacks):
    major = major_incident(short_description=EVERYONE)
    child, post_a = major_child(major, rule, handle="@ana", name="Ana")
    post_b = PostFactory(rule=rule, incident=child, author=AuthorFactory(handle="@bo", name="Bo"))
    post_c = PostFactory(rule=rule, incident=major, author=AuthorFactory(handle="@cy", name="Cy"))
    post_d = PostFactory(rule=rule, incident=major, author=AuthorFactory(handle="@di", name="Di"))
    broadcast = broadcast_create(major=major, text="Hi {name} ({incident})", actor=agent)
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = broadcast_confirm(broadcast=broadcast, actor=agent)
    assert confirmed.recipient_count == 4
    assert sorted(Reply.objects.filter(broadcast=broadcast).values_list("post_id", "text")) == sorted(
        [
            (post_a.pk, f"Hi Ana ({child.number})"),
            (post_b.pk, f"Hi Bo ({child.number})"),
            (post_c.pk, f"Hi Cy ({major.number})"),
            (post_d.pk, f"Hi Di ({major.number})"),
        ]
    )


def test_a_rate_limit_holds_the_channels_other_paced_replies(
    clock, rule, agent, fake_network, django_capture_on_commit_callbacks
):
    major = major_incident(short_description=EVERYONE)
    for handle in ("@ana", "@bo", "@cy"):
        major_child(major, rule, handle=handle)
    broadcast = broadcast_create(major=major, text="We know", actor=agent)
    reset = NOW + timedelta(minutes=10)
    fake_network.errors = [TransientError("Mastodon rate limit reached", status=429, retry_at=reset)]

    with django_capture_on_commit_callbacks(execute=True):
        broadcast_confirm(broadcast=broadcast, actor=agent)

    replies = list(Reply.objects.filter(broadcast=broadcast).order_by("pk"))
    # The two waiting go from the reset on, 30 s apart; the limited one takes the next slot.
    assert [(r.post.author.handle, r.attempts, r.retry_after) for r in replies] == [
        ("@ana", 1, reset + timedelta(seconds=60)),
        ("@bo", 0, reset),
        ("@cy", 0, reset + timedelta(seconds=30)),
    ]
    clock.move_to(reset - timedelta(seconds=1))
    assert replies_send_due() == 0
    assert fake_network.sent == []
