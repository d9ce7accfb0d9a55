from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from socialitsm.connectors.base import DetailKind, PostDetail
from socialitsm.models import Incident, IncidentEvent, Post, PostRevision
from socialitsm.services import routing
from socialitsm.services.deletions import posts_redact
from socialitsm.services.edits import EditOutcome, post_edit
from socialitsm.services.ingest import post_clean, posts_ingest

from ..factories import WatchRuleFactory, inbound

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
POSTED = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
COMPLAINT = "VPN down again, third time this week"
CHATTER = "Lovely weather for a picnic in the park today"
FIXED = "Never mind, the VPN works fine now, thanks!"


def edited(external_id: str, text: str, minutes: int, **extra):
    return inbound(external_id, text, edited_at=POSTED + timedelta(minutes=minutes), **extra)


def ingest(rule, posts, capture):
    with capture(execute=True):
        return posts_ingest(channel=rule.channel, posts=posts, rule=rule)


def test_an_edit_keeps_the_earlier_version_once(clock, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory()
    ingest(rule, [inbound("a1", COMPLAINT)], django_capture_on_commit_callbacks)
    edit = edited("a1", "VPN down again, fourth time this week", 5)

    first = ingest(rule, [edit], django_capture_on_commit_callbacks)
    again = ingest(rule, [edit, edit], django_capture_on_commit_callbacks)

    assert (first.created, first.edited, first.duplicates) == (0, 1, 0)
    assert (again.created, again.edited, again.duplicates) == (0, 0, 2)
    post = Post.objects.get()
    assert (post.text, post.edited_at) == ("VPN down again, fourth time this week", POSTED + timedelta(minutes=5))
    revisions = list(PostRevision.objects.values_list("post_id", "text", "edited_at", "recorded_at"))
    assert revisions == [(post.pk, COMPLAINT, POSTED + timedelta(minutes=5), NOW)]


def test_a_post_without_an_edit_time_is_a_duplicate_even_with_other_text(clock, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory()
    ingest(rule, [inbound("a1", COMPLAINT)], django_capture_on_commit_callbacks)
    again = ingest(rule, [inbound("a1", CHATTER)], django_capture_on_commit_callbacks)
    assert (again.edited, again.duplicates) == (0, 1)
    assert Post.objects.get().text == COMPLAINT
    assert PostRevision.objects.count() == 0


def test_an_older_edit_than_the_stored_one_changes_nothing(clock, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory()
    ingest(rule, [inbound("a1", COMPLAINT)], django_capture_on_commit_callbacks)
    ingest(rule, [edited("a1", "VPN down, fourth time", 10)], django_capture_on_commit_callbacks)
    late = ingest(rule, [edited("a1", "VPN down, third time", 5)], django_capture_on_commit_callbacks)
    assert late.edited == 0
    post = Post.objects.get()
    assert (post.text, post.edited_at) == ("VPN down, fourth time", POSTED + timedelta(minutes=10))
    assert list(PostRevision.objects.values_list("text", flat=True)) == [COMPLAINT]


def test_an_edit_that_changes_neither_text_nor_details_records_no_revision(clock):
    rule = WatchRuleFactory()
    posts_ingest(channel=rule.channel, posts=[inbound("a1", COMPLAINT)], rule=rule, process=False)
    result = posts_ingest(
        channel=rule.channel, posts=[edited("a1", COMPLAINT, 3, raw={"sensitive": True})], rule=rule, process=False
    )
    assert (result.edited, result.duplicates) == (0, 1)
    post = Post.objects.get()
    assert (post.edited_at, post.raw) == (POSTED + timedelta(minutes=3), {"sensitive": True})
    assert PostRevision.objects.count() == 0


def test_an_edit_of_the_details_alone_is_recorded(clock):
    rule = WatchRuleFactory()
    before = (PostDetail(kind=DetailKind.POLL, text="Yes"),)
    posts_ingest(channel=rule.channel, posts=[inbound("a1", COMPLAINT, details=before)], rule=rule, process=False)
    after = (PostDetail(kind=DetailKind.POLL, text="Yes, still"),)
    result = posts_ingest(
        channel=rule.channel, posts=[edited("a1", COMPLAINT, 3, details=after)], rule=rule, process=False
    )
    assert result.edited == 1
    assert Post.objects.get().details == [{"kind": "poll", "text": "Yes, still", "url": ""}]
    assert list(PostRevision.objects.values_list("text", "details")) == [
        (COMPLAINT, [{"kind": "poll", "text": "Yes", "url": ""}])
    ]


def test_an_ignored_post_edited_into_a_complaint_opens_an_incident(clock, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory()
    ingest(rule, [inbound("a1", CHATTER)], django_capture_on_commit_callbacks)
    post = Post.objects.get()
    assert (post.triage_state, post.incident_id) == (Post.Triage.IGNORED, None)

    result = ingest(rule, [edited("a1", COMPLAINT, 5)], django_capture_on_commit_callbacks)

    assert result.pending_ids == [post.pk]
    post.refresh_from_db()
    assert post.triage_state == Post.Triage.INCIDENT
    assert post.is_complaint is True
    assert post.complaint_score is not None and post.complaint_score >= 0.5
    incident = Incident.objects.get()
    assert post.incident_id == incident.pk
    assert incident.service is not None and incident.service.slug == "vpn"
    assert list(IncidentEvent.objects.values_list("kind", flat=True)) == ["opened", "post_linked"]


def test_an_ignored_post_edited_into_other_chatter_stays_ignored(clock, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory()
    ingest(rule, [inbound("a1", CHATTER)], django_capture_on_commit_callbacks)
    ingest(rule, [edited("a1", "Great game last night, what a goal", 5)], django_capture_on_commit_callbacks)
    post = Post.objects.get()
    assert (post.triage_state, post.is_complaint, post.incident_id) == (Post.Triage.IGNORED, False, None)
    assert Incident.objects.count() == 0
    assert PostRevision.objects.count() == 1


def test_a_complaint_edited_into_no_complaint_is_only_reported(clock, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory()
    ingest(rule, [inbound("a1", COMPLAINT)], django_capture_on_commit_callbacks)
    post = Post.objects.get()
    incident = Incident.objects.get()
    routed = (post.triage_state, post.is_complaint, post.complaint_score, post.incident_id, post.reasons)
    events_before = IncidentEvent.objects.count()

    result = ingest(rule, [edited("a1", FIXED, 5)], django_capture_on_commit_callbacks)

    assert (result.edited, result.pending_ids) == (1, [])
    post.refresh_from_db()
    assert post.text == FIXED
    assert (post.triage_state, post.is_complaint, post.complaint_score, post.incident_id, post.reasons) == routed
    after = Incident.objects.get()
    assert (after.state, after.short_description, after.description) == (
        incident.state,
        incident.short_description,
        incident.description,
    )
    assert IncidentEvent.objects.count() == events_before + 1
    event = IncidentEvent.objects.get(kind=IncidentEvent.Kind.POST_EDITED)
    assert event.incident_id == incident.pk
    assert event.message.startswith("replay:a1 edited; now reads as not a complaint (score 0.00 < 0.50).")
    assert event.message.endswith(f"It now reads:\n{FIXED}")
    assert (event.field, event.old_value, event.new_value) == ("complaint_score", f"{routed[2]:.2f}", "0.00")


def test_a_complaint_edited_in_an_open_incident_shows_the_new_text(clock, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory()
    ingest(rule, [inbound("a1", COMPLAINT)], django_capture_on_commit_callbacks)
    new_text = "AcmeMail has been down for an hour, cannot log in"
    ingest(rule, [edited("a1", new_text, 5)], django_capture_on_commit_callbacks)
    event = IncidentEvent.objects.get(kind=IncidentEvent.Kind.POST_EDITED)
    score = routing.posts_classify([Post(text=new_text, language="")], routing.catalogue_load()[1])[0].score
    assert event.message == (
        f"replay:a1 edited; now reads as a complaint (score {score:.2f}).\nIt now reads:\n{new_text}"
    )
    assert Incident.objects.count() == 1
    assert Post.objects.get().triage_state == Post.Triage.INCIDENT


def test_a_redacted_post_is_not_revived_by_an_edit(clock, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory()
    ingest(rule, [inbound("a1", COMPLAINT)], django_capture_on_commit_callbacks)
    posts_redact(network=rule.channel.network, external_ids=["a1"])
    events_before = IncidentEvent.objects.count()

    result = ingest(rule, [edited("a1", COMPLAINT + " still", 5)], django_capture_on_commit_callbacks)

    assert result.edited == 0
    post = Post.objects.get()
    assert (post.text, post.edited_at, post.raw) == ("[deleted by the author]", None, {})
    assert PostRevision.objects.count() == 0
    assert IncidentEvent.objects.count() == events_before


def test_redaction_takes_every_version_out_of_the_incident(clock, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory()
    ingest(rule, [inbound("a1", COMPLAINT)], django_capture_on_commit_callbacks)
    new_text = "AcmeMail has been down for an hour, cannot log in"
    ingest(rule, [edited("a1", new_text, 5)], django_capture_on_commit_callbacks)
    incident = Incident.objects.get()

    assert posts_redact(network=rule.channel.network, external_ids=["a1"]) == 1

    assert PostRevision.objects.count() == 0
    incident.refresh_from_db()
    texts = [incident.short_description, incident.description]
    texts += [v for e in IncidentEvent.objects.all() for v in (e.message, e.old_value, e.new_value)]
    assert not [t for t in texts if COMPLAINT in t or new_text in t]
    assert "[deleted by the author]" in IncidentEvent.objects.get(kind=IncidentEvent.Kind.POST_EDITED).message


def test_an_x_style_edit_updates_the_post_stored_under_the_first_version(clock, django_capture_on_commit_callbacks):
    rule = WatchRuleFactory()
    ingest(rule, [inbound("100", COMPLAINT)], django_capture_on_commit_callbacks)
    edit = edited("105", "VPN down again, fourth time this week", 5, original_id="100")

    result = ingest(rule, [edit], django_capture_on_commit_callbacks)

    assert (result.created, result.edited) == (0, 1)
    post = Post.objects.get()
    assert (post.external_id, post.text) == ("100", "VPN down again, fourth time this week")
    assert list(PostRevision.objects.values_list("text", flat=True)) == [COMPLAINT]


def test_versions_of_one_post_in_a_batch_keep_the_latest(clock):
    rule = WatchRuleFactory()
    batch = [
        edited("105", "second version", 5, original_id="100"),
        inbound("100", "first version"),
        edited("107", "third version", 7, original_id="100"),
    ]
    result = posts_ingest(channel=rule.channel, posts=batch, rule=rule, process=False)
    assert (result.created, result.duplicates) == (1, 2)
    post = Post.objects.get()
    assert (post.external_id, post.text, post.edited_at) == ("100", "third version", POSTED + timedelta(minutes=7))


def test_a_pending_post_edited_after_it_was_classified_is_routed_with_its_new_text(clock):
    rule = WatchRuleFactory()
    result = posts_ingest(channel=rule.channel, posts=[inbound("a1", CHATTER)], rule=rule, process=False)
    loaded = routing._routable(result.pending_ids)
    post = Post.objects.get()
    assert post_edit(post=post, edit=post_clean(edited("a1", COMPLAINT, 5), now=NOW)[0]) == EditOutcome.RECORDED

    # The batch classified the old text: routing leaves the post for the next run.
    assert routing._posts_route(loaded, *routing.catalogue_load()) == {}
    assert Post.objects.get().triage_state == Post.Triage.PENDING

    assert routing.posts_process(post_ids=result.pending_ids) == {"incident": 1}
    assert Post.objects.get().incident is not None


@pytest.mark.parametrize(
    ("edited_at", "expected"),
    [
        (POSTED + timedelta(minutes=5), POSTED + timedelta(minutes=5)),
        (datetime(2026, 11, 26, 10, 5, tzinfo=timezone(timedelta(hours=2))), POSTED + timedelta(minutes=5)),
        (NOW + timedelta(minutes=1), NOW),
        (datetime(2030, 1, 1, tzinfo=UTC), NOW),
        (POSTED - timedelta(days=3), POSTED),
        (datetime(2026, 11, 26, 8, 30), None),
        ("2026-11-26T08:30:00Z", None),
    ],
    ids=["plain", "offset", "ahead-of-clock", "future", "before-the-post", "naive", "not-a-time"],
)
def test_the_door_keeps_edit_times_between_the_post_and_now(edited_at, expected):
    clean, _ = post_clean(inbound("a1", edited_at=edited_at), now=NOW)
    assert clean.edited_at == expected


def test_the_door_drops_an_original_id_too_long_to_store():
    clean, _ = post_clean(inbound("105", original_id="9" * 300), now=NOW)
    assert (clean.external_id, clean.original_id) == ("105", "")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_same_edit_ingested_twice_at_once_records_one_revision():
    import threading

    from django.db import connections

    rule = WatchRuleFactory()
    first = posts_ingest(channel=rule.channel, posts=[inbound("a1", CHATTER)], rule=rule, process=False)
    routing.posts_process(post_ids=first.pending_ids)
    edit = edited("a1", COMPLAINT, 5)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def work() -> None:
        try:
            barrier.wait()
            results.append(posts_ingest(channel=rule.channel, posts=[edit], rule=rule, process=False).edited)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [0, 0, 0, 1]
    assert list(PostRevision.objects.values_list("text", flat=True)) == [CHATTER]
    post = Post.objects.get()
    assert (post.text, post.triage_state) == (COMPLAINT, Post.Triage.PENDING)
