from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.db.models import Q

from socialitsm.exceptions import ApplicationError, ConflictError
from socialitsm.models import (
    Broadcast,
    Incident,
    IncidentEvent,
    IncidentMerge,
    ItsmConnection,
    ItsmLink,
    Network,
    Post,
    Reply,
    Service,
)
from socialitsm.services.incidents import incident_update
from socialitsm.services.major import (
    incident_merge,
    incident_unmerge,
    major_link,
    major_open,
    major_unlink,
    spike_thresholds,
)
from socialitsm.services.routing import posts_process

from ..factories import (
    AuthorFactory,
    ChannelFactory,
    IncidentFactory,
    PostFactory,
    ReplyFactory,
    WatchRuleFactory,
    route_concurrently,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
MAIL = "Email is down again, cannot send or receive anything"


def complaint(n: int, *, rule=None, **extra) -> Post:
    rule = rule or WatchRuleFactory()
    return PostFactory(rule=rule, author=AuthorFactory(), text=f"{MAIL} ({n})", posted_at=NOW, **extra)


def route(*posts: Post) -> dict[str, int]:
    return posts_process(post_ids=[p.pk for p in posts])


def majors() -> list[Incident]:
    return list(Incident.objects.filter(is_major=True))


def test_default_thresholds_and_service_override(settings):
    email = Service.objects.get(slug="email")
    assert spike_thresholds(email) == (5, 15)
    settings.SOCIALITSM_SPIKE_AUTHORS = 7
    settings.SOCIALITSM_SPIKE_WINDOW_MINUTES = 30
    assert spike_thresholds(email) == (7, 30)
    email.spike_authors, email.spike_window_minutes = 3, 5
    assert spike_thresholds(email) == (3, 5)


def test_four_people_make_no_major_incident(clock):
    rule = WatchRuleFactory()
    route(*[complaint(n, rule=rule) for n in range(4)])
    assert Incident.objects.count() == 4
    assert majors() == []
    assert Incident.objects.filter(parent__isnull=False).count() == 0


def test_fifth_person_opens_one_major_incident_with_the_window_as_children(clock):
    rule = WatchRuleFactory()
    for n in range(4):
        route(complaint(n, rule=rule))
    route(complaint(4, rule=rule))
    [major] = majors()
    assert major.service.slug == "email"
    assert major.short_description == "Major incident: Email - 5 people report a problem"
    assert major.state == Incident.State.NEW
    assert major.impact == 2
    assert major.author is None
    children = Incident.objects.filter(is_major=False)
    assert children.count() == 5
    assert set(children.values_list("parent_id", flat=True)) == {major.pk}
    opened = major.events.get(kind=IncidentEvent.Kind.OPENED)
    assert opened.message == "5 people complained about Email within 15 minutes (threshold 5)"
    assert major.events.filter(kind=IncidentEvent.Kind.CHILD_LINKED).count() == 5
    assert IncidentEvent.objects.filter(kind=IncidentEvent.Kind.MAJOR_LINKED, new_value=major.number).count() == 5


def test_one_batch_of_five_opens_the_major_incident_at_once(clock):
    rule = WatchRuleFactory()
    route(*[complaint(n, rule=rule) for n in range(5)])
    [major] = majors()
    assert Incident.objects.filter(parent=major).count() == 5


def test_same_author_counts_once(clock):
    rule = WatchRuleFactory()
    author = AuthorFactory()
    for n in range(6):
        route(PostFactory(rule=rule, author=author, text=f"{MAIL} ({n})", posted_at=NOW))
    assert majors() == []


def test_complaints_outside_the_window_do_not_count(clock):
    rule = WatchRuleFactory()
    for n in range(4):
        route(complaint(n, rule=rule))
    clock.shift(timedelta(minutes=16))
    route(complaint(9, rule=rule))
    assert majors() == []


def test_service_override_applies(clock):
    Service.objects.filter(slug="email").update(spike_authors=2, spike_window_minutes=5)
    rule = WatchRuleFactory()
    route(complaint(1, rule=rule))
    assert majors() == []
    route(complaint(2, rule=rule))
    assert len(majors()) == 1


def test_later_complaints_join_the_open_major_incident_with_their_own_incident(clock):
    rule = WatchRuleFactory()
    route(*[complaint(n, rule=rule) for n in range(5)])
    [major] = majors()
    late = complaint(6, rule=rule)
    assert route(late) == {"incident": 1}
    late.refresh_from_db()
    assert late.incident.parent == major
    assert late.incident.author == late.author
    opened = late.incident.events.get(kind=IncidentEvent.Kind.OPENED)
    assert opened.message.endswith(f"; joined major incident {major.number}")
    # The major incident's own history lists the children it opened with, not every later one.
    assert major.events.filter(kind=IncidentEvent.Kind.CHILD_LINKED).count() == 5
    assert len(majors()) == 1


def test_same_poster_again_joins_their_own_child(clock):
    rule = WatchRuleFactory()
    posts = [complaint(n, rule=rule) for n in range(5)]
    route(*posts)
    again = PostFactory(rule=rule, author=posts[0].author, text=f"{MAIL}, still!", posted_at=NOW)
    route(again)
    again.refresh_from_db()
    posts[0].refresh_from_db()
    assert again.incident == posts[0].incident
    assert Incident.objects.filter(is_major=False).count() == 5


def test_resolving_the_major_resolves_open_children_and_a_poster_writing_again_reopens_their_own(clock, agent):
    rule = WatchRuleFactory()
    posts = [complaint(n, rule=rule, conversation_id=f"c-{n}") for n in range(5)]
    route(*posts)
    [major] = majors()
    held = Incident.objects.get(posts=posts[1])
    incident_update(incident=held, actor=agent, state=Incident.State.CANCELED)
    incident_update(incident=major, actor=agent, state=Incident.State.RESOLVED)
    states = dict(Incident.objects.filter(parent=major).values_list("pk", "state"))
    assert sorted(states.values()) == ["canceled", "resolved", "resolved", "resolved", "resolved"]
    child = Incident.objects.get(posts=posts[0])
    event = child.events.get(kind=IncidentEvent.Kind.CHANGED, field="state")
    assert (event.old_value, event.new_value, event.actor) == ("new", "resolved", agent)
    assert event.message == f"resolved with major incident {major.number}"
    assert child.resolved_at is not None

    follow_up = PostFactory(
        rule=rule, author=posts[0].author, text="Still no mail here", conversation_id="c-0", posted_at=NOW
    )
    route(follow_up)
    follow_up.refresh_from_db()
    child.refresh_from_db()
    major.refresh_from_db()
    assert follow_up.incident == child
    assert child.state == Incident.State.IN_PROGRESS
    assert major.state == Incident.State.RESOLVED
    # A new complaint after the fix is its own incident: the old children no longer count.
    route(complaint(20, rule=rule))
    assert len(majors()) == 1


def test_itsm_pull_resolving_the_major_resolves_its_children(clock):
    rule = WatchRuleFactory()
    route(*[complaint(n, rule=rule) for n in range(5)])
    [major] = majors()
    incident_update(incident=major, actor=None, message="from RT", state=Incident.State.RESOLVED)
    assert set(Incident.objects.filter(parent=major).values_list("state", flat=True)) == {"resolved"}


def test_resolving_the_major_drafts_the_fixed_message_for_every_poster_and_sends_nothing(clock, agent):
    rule = WatchRuleFactory()
    route(*[complaint(n, rule=rule) for n in range(5)])
    [major] = majors()

    incident_update(incident=major, actor=agent, state=Incident.State.RESOLVED)
    # Resolving again through another door proposes nothing more.
    incident_update(incident=major, actor=None, message="from RT", state=Incident.State.CLOSED)

    [draft] = Broadcast.objects.filter(incident=major)
    assert (draft.kind, draft.status, draft.created_by) == (Broadcast.Kind.FIXED, Broadcast.Status.DRAFT, agent)
    assert not Reply.objects.exists()


def test_links_made_and_undone_by_hand_are_pushed_to_the_itsm_suites(agent, django_capture_on_commit_callbacks):
    connection = ItsmConnection.objects.create(name="Suite", slug="suite", kind="fake", base_url="https://s.example")
    child, other = IncidentFactory(), IncidentFactory()
    link = ItsmLink.objects.create(connection=connection, incident=child, external_ref=f"R-{child.number}")
    ItsmLink.objects.filter(pk=link.pk).update(recheck_at=None)

    with django_capture_on_commit_callbacks() as linked:
        major = major_open(incidents=[child, other], actor=agent)
    link.refresh_from_db()
    assert link.recheck_at is not None
    assert linked, "the link's sync is queued after the commit"

    ItsmLink.objects.filter(pk=link.pk).update(recheck_at=None)
    with django_capture_on_commit_callbacks() as unlinked:
        major_unlink(incident=child, actor=agent)
    link.refresh_from_db()
    assert link.recheck_at is not None
    assert unlinked
    assert major.children.count() == 1


# -- by hand ---------------------------------------------------------------------------------------


def test_open_a_major_incident_by_hand_and_link(agent):
    first, second = IncidentFactory(), IncidentFactory()
    major = major_open(incidents=[first, second], actor=agent, short_description="VPN gateway down")
    assert major.is_major
    assert major.short_description == "VPN gateway down"
    assert major.service.slug == "vpn"
    assert set(major.children.values_list("pk", flat=True)) == {first.pk, second.pk}
    assert major.events.filter(kind=IncidentEvent.Kind.CHILD_LINKED, actor=agent).count() == 2
    assert first.events.get(kind=IncidentEvent.Kind.MAJOR_LINKED).new_value == major.number


def test_link_refuses_a_major_as_child_and_a_non_major_parent(agent):
    major = major_open(incidents=[IncidentFactory()], actor=agent)
    other = major_open(incidents=[IncidentFactory()], actor=agent)
    plain = IncidentFactory()
    with pytest.raises(ApplicationError, match="is a major incident and cannot be a child"):
        major_link(major=major, incidents=[other], actor=agent)
    with pytest.raises(ApplicationError, match="is not a major incident"):
        major_link(major=plain, incidents=[IncidentFactory()], actor=agent)
    with pytest.raises(ApplicationError, match="cannot be linked to itself"):
        major_link(major=major, incidents=[major], actor=agent)


def test_link_refuses_an_incident_of_another_major_and_links_nothing(agent):
    linked = IncidentFactory()
    major_open(incidents=[linked], actor=agent)
    second = major_open(incidents=[IncidentFactory()], actor=agent)
    free = IncidentFactory()
    with pytest.raises(ConflictError, match="already linked to another major incident"):
        major_link(major=second, incidents=[free, linked], actor=agent)
    free.refresh_from_db()
    assert free.parent is None


def test_link_refuses_a_resolved_major(agent):
    major = major_open(incidents=[IncidentFactory()], actor=agent)
    incident_update(incident=major, actor=agent, state=Incident.State.RESOLVED)
    with pytest.raises(ConflictError, match="is resolved"):
        major_link(major=major, incidents=[IncidentFactory()], actor=agent)


def test_unlink(agent):
    child = IncidentFactory()
    major = major_open(incidents=[child], actor=agent)
    major_unlink(incident=child, actor=agent)
    child.refresh_from_db()
    assert child.parent is None
    assert child.events.get(kind=IncidentEvent.Kind.MAJOR_UNLINKED).old_value == major.number
    assert major.events.get(kind=IncidentEvent.Kind.CHILD_UNLINKED, actor=agent).old_value == child.number
    with pytest.raises(ConflictError, match="not linked"):
        major_unlink(incident=child, actor=agent)


def _incident_with_post(author, text: str) -> Incident:
    post = PostFactory(author=author, text=text)
    route(post)
    post.refresh_from_db()
    return post.incident


def test_merge_moves_posts_replies_and_their_events_and_unmerge_moves_them_back(agent):
    author = AuthorFactory()
    target = _incident_with_post(author, "VPN down again")
    duplicate = _incident_with_post(author, "VPN still down, anyone?")
    reply = ReplyFactory(post=duplicate.posts.get(), incident=duplicate)
    dup_post = duplicate.posts.get()
    merge = incident_merge(duplicate=duplicate, target=target, actor=agent)
    duplicate.refresh_from_db()
    assert duplicate.state == Incident.State.CANCELED
    assert duplicate.merged_into == target
    assert list(target.posts.order_by("pk")) == [target.posts.order_by("pk").first(), dup_post]
    assert list(target.replies.all()) == [reply]
    assert merge.post_ids == [dup_post.pk] and merge.reply_ids == [reply.pk]
    assert target.events.filter(kind=IncidentEvent.Kind.POST_LINKED).count() == 2
    assert duplicate.events.filter(kind=IncidentEvent.Kind.OPENED).count() == 1
    assert duplicate.events.get(kind=IncidentEvent.Kind.MERGED, actor=agent).new_value == target.number
    assert target.events.get(kind=IncidentEvent.Kind.MERGED_IN).message == "1 posts, 1 replies"

    incident_unmerge(duplicate=duplicate, actor=agent)
    duplicate.refresh_from_db()
    assert duplicate.state == Incident.State.NEW
    assert duplicate.merged_into is None
    assert list(duplicate.posts.all()) == [dup_post]
    assert list(duplicate.replies.all()) == [reply]
    assert target.posts.count() == 1
    assert duplicate.events.filter(kind=IncidentEvent.Kind.POST_LINKED).count() == 1
    assert IncidentMerge.objects.get().undone_by == agent
    with pytest.raises(ConflictError, match="not merged"):
        incident_unmerge(duplicate=duplicate, actor=agent)


def test_merge_refuses_other_posters_without_the_lead_override(agent, lead):
    target = _incident_with_post(AuthorFactory(), "VPN down again")
    duplicate = _incident_with_post(AuthorFactory(), "VPN down for me too")
    with pytest.raises(ConflictError, match="different posters"):
        incident_merge(duplicate=duplicate, target=target, actor=agent)
    with pytest.raises(PermissionDenied):
        incident_merge(duplicate=duplicate, target=target, actor=agent, other_author=True)
    assert Post.objects.filter(incident=target).count() == 1
    incident_merge(duplicate=duplicate, target=target, actor=lead, other_author=True)
    assert Post.objects.filter(incident=target).count() == 2


@pytest.mark.parametrize("case", ["self", "major", "closed", "merged"])
def test_merge_refusals(agent, case):
    author = AuthorFactory()
    target = _incident_with_post(author, "VPN down again")
    duplicate = _incident_with_post(author, "VPN still down")
    if case == "self":
        with pytest.raises(ApplicationError, match="into itself"):
            incident_merge(duplicate=target, target=target, actor=agent)
        return
    if case == "major":
        major = major_open(incidents=[IncidentFactory()], actor=agent)
        with pytest.raises(ApplicationError, match="is a major incident"):
            incident_merge(duplicate=duplicate, target=major, actor=agent)
    if case == "closed":
        incident_update(incident=duplicate, actor=agent, state=Incident.State.RESOLVED)
        with pytest.raises(ConflictError, match="only open incidents merge"):
            incident_merge(duplicate=duplicate, target=target, actor=agent)
    if case == "merged":
        incident_merge(duplicate=duplicate, target=target, actor=agent)
        with pytest.raises(ConflictError, match="already merged"):
            incident_merge(duplicate=duplicate, target=target, actor=agent)
        return
    assert Post.objects.filter(incident=target).count() == 1


# -- concurrency on PostgreSQL ----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_workers_open_one_major_incident_for_one_spike():
    with time_machine.travel(NOW, tick=True):
        rule = WatchRuleFactory()
        posts = [complaint(n, rule=rule) for n in range(6)]
        errors = route_concurrently([[p.pk] for p in posts])
        assert errors == []
        [major] = majors()
        assert Incident.objects.filter(parent=major).count() == 6


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_burst_of_200_people_on_two_channels_through_four_workers_makes_one_major_with_200_children():
    with time_machine.travel(NOW, tick=True):
        rules = [
            WatchRuleFactory(channel=ChannelFactory(network=Network.MASTODON)),
            WatchRuleFactory(channel=ChannelFactory(network=Network.REPLAY)),
        ]
        posts = []
        for n in range(200):
            rule = rules[n % 2]
            author = AuthorFactory(network=rule.channel.network)
            posts.append(PostFactory(rule=rule, author=author, text=f"{MAIL} ({n})", posted_at=NOW))
        ids = [p.pk for p in posts]
        errors = route_concurrently([ids[i::4] for i in range(4)])
        assert errors == []
        [major] = majors()
        assert Incident.objects.filter(parent=major).count() == 200
        assert Incident.objects.filter(is_major=False, parent__isnull=True).count() == 0
        assert Post.objects.filter(triage_state=Post.Triage.INCIDENT).count() == 200
        # Each child's history says it belongs to the major incident: linked when the spike was
        # found, or opened into it afterwards.
        linked = IncidentEvent.objects.filter(
            Q(kind=IncidentEvent.Kind.MAJOR_LINKED, new_value=major.number)
            | Q(kind=IncidentEvent.Kind.OPENED, message__endswith=f"; joined major incident {major.number}")
        )
        assert linked.count() == 200
        assert set(linked.values_list("incident_id", flat=True)) == set(major.children.values_list("pk", flat=True))
        assert set(Post.objects.values_list("network", flat=True)) == {"mastodon", "replay"}


def test_detection_switched_off_opens_no_major_incident(clock, settings):
    settings.SOCIALITSM_SPIKE_DETECTION = False
    rule = WatchRuleFactory()
    route(*[complaint(n, rule=rule) for n in range(6)])
    assert majors() == []
    assert Incident.objects.count() == 6
