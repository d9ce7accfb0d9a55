from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import override_settings

from socialitsm.exceptions import ApplicationError
from socialitsm.models import Incident, IncidentEvent, Post, Service, WatchRule
from socialitsm.services.routing import post_promote, posts_process

from ..factories import AuthorFactory, ChannelFactory, PostFactory, ReplyFactory, WatchRuleFactory

pytestmark = pytest.mark.django_db

COMPLAINT = "VPN down again, third time this week"
NOISE = "Anyone up for lunch at the canteen today?"


def route(*posts: Post) -> dict[str, int]:
    return posts_process(post_ids=[p.pk for p in posts])


def test_complaint_opens_incident_with_matrix_priority():
    group = Group.objects.create(name="Network Team")
    Service.objects.filter(slug="vpn").update(owner_group=group)
    rule = WatchRuleFactory(default_impact=2)
    post = PostFactory(rule=rule, text=COMPLAINT, url="https://social.example.com/@p/1")
    assert route(post) == {"incident": 1}
    post.refresh_from_db()
    incident = post.incident
    assert incident.number == "INC0001001"
    assert incident.short_description == COMPLAINT
    assert incident.service.slug == "vpn"
    assert incident.assignment_group == group
    assert incident.state == Incident.State.NEW
    assert incident.impact == 2
    assert incident.priority == {1: 2, 2: 3, 3: 4}[incident.urgency]
    assert incident.author == post.author
    assert post.triage_state == Post.Triage.INCIDENT
    assert post.is_complaint is True
    assert post.detected_service.slug == "vpn"
    assert post.reasons
    assert list(incident.events.values_list("kind", flat=True)) == ["opened", "post_linked"]


def test_incident_numbers_are_sequential():
    posts = [PostFactory(text=f"{COMPLAINT} #{n}", author=AuthorFactory()) for n in range(3)]
    route(*posts)
    assert sorted(Incident.objects.values_list("number", flat=True)) == ["INC0001001", "INC0001002", "INC0001003"]


def test_noise_is_kept_as_ignored():
    post = PostFactory(text=NOISE)
    assert route(post) == {"ignored": 1}
    post.refresh_from_db()
    assert post.triage_state == Post.Triage.IGNORED
    assert post.is_complaint is False
    assert post.incident is None
    assert "below the complaint threshold" in post.reasons
    assert Incident.objects.count() == 0


def test_rule_threshold_applies_to_score():
    strict = WatchRuleFactory(complaint_threshold=1.0)
    post = PostFactory(rule=strict, text=COMPLAINT)
    assert route(post) == {"ignored": 1}


def test_queue_rule_keeps_complaints_for_triage():
    rule = WatchRuleFactory(action=WatchRule.Action.QUEUE)
    post = PostFactory(rule=rule, text=COMPLAINT)
    assert route(post) == {"queued": 1}
    assert Incident.objects.count() == 0


def test_follow_up_in_same_conversation_attaches():
    author = AuthorFactory()
    first = PostFactory(author=author, text=COMPLAINT, conversation_id="c-1")
    route(first)
    follow = PostFactory(
        author=author,
        rule=first.rule,
        text="any update?? still nothing",
        conversation_id="c-1",
        posted_at=datetime(2026, 11, 26, 9, 0, tzinfo=UTC),
    )
    assert route(follow) == {"incident": 1}
    follow.refresh_from_db()
    first.refresh_from_db()
    assert follow.incident == first.incident
    assert Incident.objects.count() == 1


def test_reply_to_linked_post_attaches_even_if_not_a_complaint():
    first = PostFactory(text=COMPLAINT, external_id="root-1")
    route(first)
    thanks = PostFactory(rule=first.rule, text="ok it works now, thanks!", in_reply_to="root-1")
    route(thanks)
    thanks.refresh_from_db()
    first.refresh_from_db()
    assert thanks.incident_id == first.incident_id
    assert thanks.triage_state == Post.Triage.INCIDENT


def test_reply_to_our_reply_attaches():
    first = PostFactory(text=COMPLAINT)
    route(first)
    first.refresh_from_db()
    ReplyFactory(
        incident=first.incident,
        post=first,
        visibility="public",
        text="On it",
        status="sent",
        external_id="ours-9",
    )
    answer = PostFactory(rule=first.rule, text="still broken for me", in_reply_to="ours-9")
    route(answer)
    answer.refresh_from_db()
    first.refresh_from_db()
    assert answer.incident_id == first.incident_id


def test_follow_up_to_resolved_incident_opens_a_new_one():
    author = AuthorFactory()
    first = PostFactory(author=author, text=COMPLAINT, conversation_id="c-1")
    route(first)
    Incident.objects.update(state=Incident.State.RESOLVED)
    again = PostFactory(
        author=author, rule=first.rule, text="VPN is broken again, cannot connect", conversation_id="c-1"
    )
    route(again)
    assert Incident.objects.count() == 2


def test_same_conversation_other_author_does_not_attach():
    first = PostFactory(text=COMPLAINT, conversation_id="c-1")
    route(first)
    other = PostFactory(rule=first.rule, text="Email is down, Outlook keeps failing", conversation_id="c-1")
    route(other)
    assert Incident.objects.count() == 2


def test_our_own_posts_are_ignored():
    channel = ChannelFactory(handle="@ITSupport")
    rule = WatchRuleFactory(channel=channel)
    own = PostFactory(rule=rule, text=COMPLAINT, author=AuthorFactory(handle="@itsupport"))
    assert route(own) == {"ignored": 1}


def test_language_filter():
    rule = WatchRuleFactory(languages=["en"])
    post = PostFactory(rule=rule, text="Le VPN ne marche plus depuis ce matin", language="fr")
    assert route(post) == {"ignored": 1}


def test_processing_twice_is_a_no_op():
    post = PostFactory(text=COMPLAINT)
    route(post)
    assert route(post) == {}
    assert Incident.objects.count() == 1
    assert IncidentEvent.objects.count() == 2


def test_agent_promotes_ignored_post(agent):
    post = PostFactory(text=NOISE)
    route(post)
    incident = post_promote(post=Post.objects.get(pk=post.pk), actor=agent)
    post.refresh_from_db()
    assert post.incident == incident
    assert list(incident.events.values_list("kind", "actor")) == [
        ("opened", agent.pk),
        ("post_linked", agent.pk),
        ("promoted", agent.pk),
    ]
    with pytest.raises(ApplicationError):
        post_promote(post=post, actor=agent)
    assert Incident.objects.count() == 1


def test_pending_post_cannot_be_promoted(agent):
    post = PostFactory(text=NOISE)
    with pytest.raises(ApplicationError, match="not been classified"):
        post_promote(post=post, actor=agent)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_follow_ups_open_one_incident():
    import threading

    from django.db import connections

    author = AuthorFactory()
    rule = WatchRuleFactory()
    posts = [
        PostFactory(rule=rule, author=author, text=f"VPN down again, try {n}", conversation_id="c-9") for n in range(4)
    ]
    barrier = threading.Barrier(len(posts))
    errors: list[Exception] = []

    def work(post: Post) -> None:
        try:
            barrier.wait()
            posts_process(post_ids=[post.pk])
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(post,)) for post in posts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Incident.objects.count() == 1
    assert set(Post.objects.values_list("incident_id", flat=True)) == {Incident.objects.get().pk}


# What a fresh install ships (migration 0011): priority -> (first response, resolution) minutes, 24x7.
SHIPPED_TARGETS = {1: (15, 240), 2: (60, 480), 3: (240, 4320), 4: (480, 7200), 5: (1440, 14400)}
FRESH_NOW = datetime(2026, 11, 28, 22, 30, tzinfo=UTC)  # a Saturday night: the defaults never sleep


@time_machine.travel(FRESH_NOW, tick=False)
@pytest.mark.parametrize("promoted", [False, True])
def test_on_a_fresh_install_incidents_get_the_service_desk_and_due_times(sla_defaults, promoted):
    posted = FRESH_NOW - timedelta(minutes=5)
    rule = WatchRuleFactory(action=WatchRule.Action.QUEUE if promoted else WatchRule.Action.OPEN_INCIDENT)
    post = PostFactory(rule=rule, text=COMPLAINT, posted_at=posted, ingested_at=posted)
    route(post)
    if promoted:
        post_promote(post=Post.objects.get(pk=post.pk), actor=None)

    incident = Post.objects.get(pk=post.pk).incident
    response, resolution = SHIPPED_TARGETS[incident.priority]
    assert (incident.service.slug, incident.assignment_group.name, incident.sla_policy.priority) == (
        "vpn",
        "Service Desk",
        incident.priority,
    )
    assert (incident.response_due_at, incident.resolution_due_at) == (
        posted + timedelta(minutes=response),
        posted + timedelta(minutes=resolution),
    )


@pytest.mark.parametrize(
    ("owner", "rule_group", "expected"),
    [
        ("Network Team", "Triage", "Network Team"),
        (None, "Triage", "Triage"),
        (None, None, "Service Desk"),
    ],
)
def test_the_default_group_takes_only_what_nothing_else_routes(sla_defaults, owner, rule_group, expected):
    if owner:
        Service.objects.filter(slug="vpn").update(owner_group=Group.objects.create(name=owner))
    rule = WatchRuleFactory(assignment_group=Group.objects.create(name=rule_group) if rule_group else None)
    post = PostFactory(rule=rule, text=COMPLAINT)

    route(post)

    assert Post.objects.get(pk=post.pk).incident.assignment_group.name == expected


@pytest.mark.parametrize("setting", ["", "No Such Group"])
def test_without_a_default_group_unrouted_incidents_stay_unassigned(sla_defaults, setting):
    post = PostFactory(text=COMPLAINT)

    with override_settings(SOCIALITSM_DEFAULT_GROUP=setting):
        route(post)

    assert Post.objects.get(pk=post.pk).incident.assignment_group is None


NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    import time_machine

    with time_machine.travel(NOW, tick=False):
        yield


def _refuse_incidents_about(word: str) -> None:
    """A rule only the database knows, so routing a post about `word` fails there."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE socialitsm_incident ADD CONSTRAINT test_refuse "
            f"CHECK (short_description NOT LIKE '%%{word}%%')"
        )


@pytest.mark.postgres
def test_post_dated_1950_is_routed_with_its_lag_clamped(frozen):
    from socialitsm.models import SlaClock
    from socialitsm.services.sla import INT_FIELD_MAX

    post = PostFactory(text=COMPLAINT, posted_at=datetime(1950, 1, 1, tzinfo=UTC), ingested_at=NOW)

    assert route(post) == {"incident": 1}

    incident = Incident.objects.get(posts=post)
    assert incident.ingest_lag_seconds == INT_FIELD_MAX
    assert incident.sla_started_at == datetime(1950, 1, 1, tzinfo=UTC)
    assert all(0 <= c.elapsed_seconds <= INT_FIELD_MAX for c in SlaClock.objects.filter(incident=incident))


@pytest.mark.postgres
def test_post_whose_routing_fails_is_parked_and_the_rest_of_the_batch_is_routed(frozen):
    _refuse_incidents_about("printer")
    rule = WatchRuleFactory()
    first = PostFactory(rule=rule, text=COMPLAINT, posted_at=datetime(2026, 11, 26, 7, 0, tzinfo=UTC))
    bad = PostFactory(
        rule=rule, text="printer broken again, VPN down too", posted_at=datetime(2026, 11, 26, 7, 30, tzinfo=UTC)
    )
    last = PostFactory(rule=rule, text=NOISE, posted_at=datetime(2026, 11, 26, 8, 0, tzinfo=UTC))

    assert route(first, bad, last) == {"incident": 1, "ignored": 1, "parked": 1}

    bad.refresh_from_db()
    assert (bad.triage_state, bad.incident, bad.routing_failed_at) == (Post.Triage.PENDING, None, NOW)
    assert bad.routing_error.startswith("IntegrityError: ")
    assert "test_refuse" in bad.routing_error
    assert Post.objects.get(pk=first.pk).triage_state == Post.Triage.INCIDENT
    assert Post.objects.get(pk=last.pk).triage_state == Post.Triage.IGNORED
    assert Incident.objects.count() == 1
    # Parked: routing leaves it alone until a person asks again.
    assert route(bad) == {}


@pytest.mark.postgres
def test_parked_post_never_holds_back_the_recovery_sweep(monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from socialitsm.services.recovery import work_recover

    _refuse_incidents_about("printer")
    stale = timezone.now() - timedelta(hours=1)
    oldest = PostFactory(text="printer broken, VPN down", posted_at=datetime(2026, 1, 1, tzinfo=UTC), ingested_at=stale)
    behind = [PostFactory(text=COMPLAINT, ingested_at=stale) for _ in range(2)]
    assert route(oldest) == {"parked": 1}
    processed: list[list[int]] = []
    monkeypatch.setattr("socialitsm.tasks.posts_process_task.delay", processed.append)

    assert work_recover() == {"posts": 2, "replies": 0}

    assert processed == [[p.pk for p in behind]]
    assert posts_process(post_ids=processed[0]) == {"incident": 2}
    assert work_recover() == {"posts": 0, "replies": 0}


def test_agent_routes_a_parked_post_again(django_capture_on_commit_callbacks, frozen):
    from socialitsm.services.routing import post_routing_park, post_routing_retry

    post = PostFactory(text=COMPLAINT)
    assert post_routing_park(post_id=post.pk, error="ValueError: bad clock") == 1
    assert route(post) == {}

    with django_capture_on_commit_callbacks(execute=True):
        assert post_routing_retry(post=post) is True

    post.refresh_from_db()
    assert (post.routing_error, post.routing_failed_at, post.triage_state) == ("", None, Post.Triage.INCIDENT)
    assert post_routing_retry(post=post) is False


def test_database_outage_fails_the_batch_and_parks_nothing(monkeypatch):
    from django.db import OperationalError

    posts = [PostFactory(text=COMPLAINT), PostFactory(text=NOISE)]

    def down(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("socialitsm.services.routing.classify.verdict_many", down)
    with pytest.raises(OperationalError):
        route(*posts)

    assert Post.objects.filter(routing_failed_at__isnull=False).count() == 0
    assert Post.objects.pending().count() == 2


def test_webhook_post_joins_only_its_own_channels_threads():
    a = WatchRuleFactory(channel=ChannelFactory(network="webhook"))
    b = WatchRuleFactory(channel=ChannelFactory(network="webhook"))
    scope_a, scope_b = str(a.channel.pk), str(b.channel.pk)
    root = PostFactory(rule=a, external_id="p-1", scope=scope_a, author=AuthorFactory(network="webhook", scope=scope_a))
    route(root)
    root.refresh_from_db()
    ReplyFactory(post=root, incident=root.incident, external_id="r-1", status="sent")
    stranger = AuthorFactory(network="webhook", scope=scope_b)
    by_post = PostFactory(rule=b, scope=scope_b, author=stranger, text=NOISE, in_reply_to="p-1")
    by_reply = PostFactory(rule=b, scope=scope_b, author=stranger, text=NOISE, in_reply_to="r-1")
    own = PostFactory(
        rule=a, scope=scope_a, author=AuthorFactory(network="webhook", scope=scope_a), text=NOISE, in_reply_to="r-1"
    )

    assert route(by_post, by_reply, own) == {"ignored": 2, "incident": 1}

    assert Post.objects.get(pk=own.pk).incident == root.incident
    assert Post.objects.get(pk=by_post.pk).incident is None
    assert Post.objects.get(pk=by_reply.pk).incident is None


QUOTED = [{"kind": "quote", "text": "VPN down for everyone", "url": "https://social.example.com/@ops/7"}]
DESCRIBED = [{"kind": "alt_text", "text": "Screenshot: VPN client error 809", "url": "https://files.example.com/1.png"}]
POLLED = [{"kind": "poll", "text": "VPN", "url": ""}, {"kind": "poll", "text": "Email", "url": ""}]


@pytest.mark.parametrize(
    ("details", "service"),
    [([], None), (QUOTED, "vpn"), (DESCRIBED, "vpn"), (POLLED, None)],
    ids=["text-alone", "quoted-post", "image-description", "poll-options-not-read"],
)
def test_the_classifier_reads_quoted_posts_and_image_descriptions_with_the_text(details, service):
    # The text names no service: only what the post quotes or describes can give it one.
    post = PostFactory(text="down again, third time this week", details=details)
    assert route(post) == {"incident": 1}
    post.refresh_from_db()
    assert (post.detected_service.slug if post.detected_service else None) == service
    assert (post.incident.service.slug if post.incident.service else None) == service
    assert post.text == "down again, third time this week"


# A complaint whose words are about the rest of life: about us only when sent to our account.
ELSEWHERE = "my flight got cancelled again, worst airline ever"


@pytest.mark.parametrize(
    ("kind", "is_direct", "opened"),
    [
        (WatchRule.Kind.SEARCH, False, False),
        (WatchRule.Kind.HASHTAG, False, False),
        (WatchRule.Kind.MENTIONS, False, True),
        (WatchRule.Kind.DIRECT, True, True),
        (WatchRule.Kind.SEARCH, True, True),
    ],
)
def test_a_complaint_addressed_to_our_account_is_about_us(kind, is_direct, opened):
    post = PostFactory(rule=WatchRuleFactory(kind=kind), text=ELSEWHERE, is_direct=is_direct)
    assert route(post) == ({"incident": 1} if opened else {"ignored": 1})
    post.refresh_from_db()
    assert post.is_complaint is opened
    assert ("addressed to our account (a mention or a direct message)" in post.reasons) is opened


def test_a_thank_you_addressed_to_our_account_is_no_complaint():
    post = PostFactory(rule=WatchRuleFactory(kind=WatchRule.Kind.MENTIONS), text="@ITHelp thanks a lot, all good now!")
    assert route(post) == {"ignored": 1}
