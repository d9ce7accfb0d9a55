from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from socialitsm.models import (
    Author,
    AuthorErasure,
    Incident,
    IncidentEvent,
    IngestRejection,
    Post,
    PostRevision,
    Reply,
)
from socialitsm.services.incidents import incident_open_from_post
from socialitsm.services.retention import ERASED, author_erase, author_ref, posts_retention_sweep

from ..factories import AuthorFactory, ChannelFactory, PostFactory, ReplyFactory, UserFactory, WatchRuleFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def channel():
    return ChannelFactory(retention_days=400)


def _post(channel, *, days_old: int, **fields) -> Post:
    rule = WatchRuleFactory(channel=channel)
    at = NOW - timedelta(days=days_old)
    return PostFactory(rule=rule, posted_at=at, ingested_at=at, **fields)


def _opened(post: Post) -> Incident:
    return incident_open_from_post(post=post, rule=post.rule, service=None, urgency=2)


@time_machine.travel(NOW, tick=False)
def test_retention_deletes_old_unlinked_posts_and_anonymises_counted_ones(channel):
    author = AuthorFactory(handle="@maria", name="Maria")
    old_noise = _post(channel, days_old=500, author=author, text="lunch?", raw={"id": "1"})
    old_complaint = _post(channel, days_old=450, author=author, text="VPN down again, third time", raw={"id": "2"})
    incident = _opened(old_complaint)
    PostRevision.objects.create(post=old_complaint, text="VPN down", edited_at=NOW - timedelta(days=449))
    recent = _post(channel, days_old=10, text="printer broken", raw={"id": "3"})
    IngestRejection.objects.create(
        channel=channel, network="replay", error="bad", payload={"a": 1}, created_at=NOW - timedelta(days=401)
    )
    figures = Incident.objects.values_list("post_count", "sla_started_at").get(pk=incident.pk)

    outcome = posts_retention_sweep(batch=1)

    assert (outcome.deleted, outcome.anonymised, outcome.authors_anonymised, outcome.rejections_deleted) == (
        1,
        1,
        1,
        1,
    )
    assert not Post.objects.filter(pk=old_noise.pk).exists()
    kept = Post.objects.get(pk=old_complaint.pk)
    assert (kept.text, kept.raw, kept.incident_id, kept.erased_at) == ("", {}, incident.pk, NOW)
    assert not PostRevision.objects.exists()
    assert Post.objects.get(pk=recent.pk).text == "printer broken"
    author.refresh_from_db()
    assert (author.handle, author.name, author.external_id, author.erased_at) == ("", "", f"erased-{author.pk}", NOW)
    # The incident's figures stay as they were.
    assert Incident.objects.values_list("post_count", "sla_started_at").get(pk=incident.pk) == figures
    linked = IncidentEvent.objects.get(incident=incident, kind=IncidentEvent.Kind.POST_LINKED)
    assert linked.message == ""
    assert not IngestRejection.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_retention_keeps_authors_with_recent_posts_and_channels_without_a_period(channel):
    author = AuthorFactory(handle="@kim")
    _post(channel, days_old=500, author=author)
    _post(channel, days_old=5, author=author)
    forever = ChannelFactory(retention_days=None)
    untouched = _post(forever, days_old=900, text="old but kept")

    outcome = posts_retention_sweep()

    assert (outcome.deleted, outcome.anonymised, outcome.authors_anonymised, outcome.authors_deleted) == (1, 0, 0, 0)
    assert Author.objects.get(pk=author.pk).handle == "@kim"
    assert Post.objects.get(pk=untouched.pk).text == "old but kept"
    assert posts_retention_sweep().deleted == 0


@time_machine.travel(NOW, tick=False)
def test_retention_deletes_authors_left_with_nothing(channel):
    author = AuthorFactory()
    _post(channel, days_old=401, author=author)

    outcome = posts_retention_sweep()

    assert (outcome.deleted, outcome.authors_deleted) == (1, 1)
    assert not Author.objects.filter(pk=author.pk).exists()


@time_machine.travel(NOW, tick=False)
def test_forget_removes_the_posters_words_everywhere_and_records_only_that_it_happened(channel):
    lead = UserFactory(username="lead.lou")
    author = AuthorFactory(handle="@maria", name="Maria Lopez", caller_email="maria@example.com")
    first = _post(channel, days_old=3, author=author, text="VPN down again, third time this week")
    incident = _opened(first)
    Incident.objects.filter(pk=incident.pk).update(description="Maria Lopez on Replay")
    reply = ReplyFactory(post=first, incident=incident, text="Hi Maria Lopez, we are on it")
    unanswered = _post(channel, days_old=2, author=author, text="also my printer")
    other = _post(channel, days_old=2, text="VPN down for me too")
    ref = author_ref(author)
    count_before = Incident.objects.get(pk=incident.pk).post_count

    record = author_erase(author=author, actor=lead)

    assert (record.author_id_erased, record.author_ref, record.actor, record.created_at) == (author.pk, ref, lead, NOW)
    assert AuthorErasure.objects.count() == 1
    assert not Post.objects.filter(pk=unanswered.pk).exists()
    kept = Post.objects.get(pk=first.pk)
    assert (kept.text, kept.raw, kept.external_id, kept.gone_reason) == (
        "[erased at the poster's request]",
        {},
        f"erased-{first.pk}",
        Post.Gone.ERASED,
    )
    incident.refresh_from_db()
    assert incident.short_description == "Post erased at the poster's request"
    assert "Maria" not in incident.description
    assert incident.post_count == count_before == 1
    assert Reply.objects.get(pk=reply.pk).text == ERASED
    trail = " ".join(
        f"{e.message} {e.old_value} {e.new_value}" for e in IncidentEvent.objects.filter(incident=incident)
    )
    assert "VPN down again" not in trail
    assert first.external_id not in trail
    author.refresh_from_db()
    assert (author.handle, author.name, author.caller_email, author.external_id) == ("", "", "", f"erased-{author.pk}")
    assert Post.objects.get(pk=other.pk).text == "VPN down for me too"


@time_machine.travel(NOW, tick=False)
def test_retention_task_runs_the_sweep(channel):
    from socialitsm.tasks import posts_retention_task

    _post(channel, days_old=401)

    posts_retention_task()

    assert not Post.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_forget_deletes_the_posts_of_theirs_the_database_refused(channel):
    author = AuthorFactory(network=channel.network, external_id="109", handle="@maria")
    other_channel = ChannelFactory(network=channel.network)

    def refused(on, author_id: str) -> IngestRejection:
        return IngestRejection.objects.create(
            channel=on,
            network=on.network,
            external_id="p-1",
            error="value too long",
            payload={"external_id": "p-1", "author": {"external_id": author_id, "handle": "@x"}, "text": "VPN down"},
        )

    theirs = [refused(channel, "109"), refused(other_channel, "109")]
    someone_else = refused(channel, "110")
    _post(channel, days_old=1, author=author)

    author_erase(author=author, actor=UserFactory())

    assert not IngestRejection.objects.filter(pk__in=[r.pk for r in theirs]).exists()
    assert list(IngestRejection.objects.values_list("pk", flat=True)) == [someone_else.pk]


@time_machine.travel(NOW, tick=False)
def test_forget_takes_titles_made_from_their_posts_even_after_the_words_expired(channel, agent):
    from socialitsm.services.incidents import incident_update
    from socialitsm.services.major import major_open

    author = AuthorFactory(handle="@maria", name="Maria Lopez")
    old = _post(channel, days_old=450, author=author, text="Outlook keeps crashing with 0x800CCC0E on my laptop")
    renamed = _post(channel, days_old=3, author=author, text="printer on floor 2 jammed since this morning")
    first, second = _opened(old), _opened(renamed)
    incident_update(incident=second, actor=agent, short_description="Printing: floor 2 printer jammed")
    major = major_open(incidents=[first], actor=agent)
    assert major.short_description == "Major incident: Outlook keeps crashing with 0x800CCC0E on my laptop"
    posts_retention_sweep()
    assert Post.objects.get(pk=old.pk).text == ""  # the words are gone from the post, not from the titles
    events_before = IncidentEvent.objects.count()

    author_erase(author=author, actor=UserFactory())

    first.refresh_from_db()
    assert (first.short_description, first.description) == ("Post erased at the poster's request", ERASED)
    major.refresh_from_db()
    assert "Outlook" not in major.short_description
    assert major.short_description.startswith("Major incident: ")
    second.refresh_from_db()
    assert second.short_description == "Printing: floor 2 printer jammed"
    trail = " ".join(f"{e.message} {e.old_value} {e.new_value}" for e in IncidentEvent.objects.all())
    assert "0x800CCC0E" not in trail
    assert IncidentEvent.objects.count() >= events_before
    assert AuthorErasure.objects.count() == 1
