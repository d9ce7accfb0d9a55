"""One outage from end to end on PostgreSQL: 200 people complain about e-mail on two networks,
concurrent routing workers open one major incident, one broadcast answers every poster at each
network's pace through the real send path, and resolving the major incident resolves them all."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from socialitsm.connectors.fake import FakeConnector
from socialitsm.exceptions import TransientError
from socialitsm.models import Broadcast, Incident, IncidentEvent, Network, Post, Reply
from socialitsm.services.broadcasts import broadcast_confirm, broadcast_create, broadcast_preview
from socialitsm.services.incidents import incident_update
from socialitsm.services.pacing import channel_pace_interval
from socialitsm.services.replies import replies_send_due

from ..factories import AuthorFactory, ChannelFactory, PostFactory, WatchRuleFactory, route_concurrently

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
MAIL = "Email is down again, cannot send or receive anything"
POSTERS = 200
WORKERS = 4


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_200_posters_on_two_networks_one_major_one_paced_broadcast_and_one_resolution(agent, fake_network, monkeypatch):
    # -- 200 complaints, routed by four workers at once ---------------------------------------------
    with time_machine.travel(NOW, tick=True):
        rules = [
            WatchRuleFactory(channel=ChannelFactory(slug="masto", network=Network.MASTODON)),
            WatchRuleFactory(channel=ChannelFactory(slug="sky", network=Network.BLUESKY)),
        ]
        posts = []
        for n in range(POSTERS):
            rule = rules[n % 2]
            author = AuthorFactory(network=rule.channel.network)
            posts.append(PostFactory(rule=rule, author=author, text=f"{MAIL} ({n})", posted_at=NOW))
        ids = [p.pk for p in posts]
        assert route_concurrently([ids[i::WORKERS] for i in range(WORKERS)]) == []

    [major] = Incident.objects.filter(is_major=True)
    children = Incident.objects.filter(parent=major)
    assert children.count() == POSTERS
    assert Incident.objects.filter(is_major=False, parent__isnull=True).count() == 0
    assert set(children.values_list("author__network", flat=True)) == {"mastodon", "bluesky"}
    assert not Reply.objects.exists()

    # The connector's send calls, failed ones included, per post.
    calls: Counter[str] = Counter()
    reply = FakeConnector.reply

    def counting_reply(self, post, text, visibility, *, idempotency_key):
        calls[post.external_id] += 1
        return reply(self, post, text, visibility, idempotency_key=idempotency_key)

    monkeypatch.setattr(FakeConnector, "reply", counting_reply)

    start = NOW + timedelta(minutes=20)
    with time_machine.travel(start, tick=False) as clock:
        # -- one broadcast: draft, preview, confirm ------------------------------------------------
        broadcast = broadcast_create(
            major=major, text="{name}: {service} is down, we are on it ({incident})", actor=agent
        )
        preview = broadcast_preview(broadcast)
        assert len(preview.recipients) == POSTERS
        assert len(preview.to_send) == POSTERS
        assert {r.incident.parent_id for r in preview.recipients} == {major.pk}
        assert fake_network.sent == []

        # The very first send fails on the way (503); it is retried after the channel's other replies.
        fake_network.errors = [TransientError("the network is failing (HTTP 503): try later")]
        confirmed = broadcast_confirm(broadcast=broadcast, actor=agent)
        assert (confirmed.recipient_count, confirmed.skipped_count) == (POSTERS, 0)

        replies = list(Reply.objects.filter(broadcast=broadcast).select_related("channel"))
        assert len(replies) == POSTERS
        assert len({r.post_id for r in replies}) == POSTERS
        # Mastodon paces 2 a minute, Bluesky 6: each channel's replies are one interval apart,
        # the first at once (sent, or failed and put back behind the others).
        intervals = {r.channel_id: channel_pace_interval(r.channel) for r in replies}
        assert sorted(intervals.values()) == [timedelta(seconds=10), timedelta(seconds=30)]
        scheduled: dict[int, list[datetime]] = defaultdict(list)
        for r in replies:
            scheduled[r.channel_id].append(start if r.attempts else r.retry_after)
        for channel_id, times in scheduled.items():
            assert sorted(times) == [start + k * intervals[channel_id] for k in range(POSTERS // 2)]
        [failed] = [r for r in replies if r.attempts == 1 and r.status == Reply.Status.QUEUED]
        assert failed.retry_after == start + (POSTERS // 2) * intervals[failed.channel_id]
        assert Reply.objects.filter(broadcast=broadcast, status=Reply.Status.SENT).count() == 1

        # -- the beat sends what is due as the clock moves on --------------------------------------
        for _ in range(400):
            clock.shift(timedelta(seconds=10))
            replies_send_due()
            if not Reply.objects.filter(broadcast=broadcast).exclude(status=Reply.Status.SENT).exists():
                break

        replies = list(Reply.objects.filter(broadcast=broadcast))
        assert {r.status for r in replies} == {Reply.Status.SENT}
        assert sorted(r.attempts for r in replies) == [1] * (POSTERS - 1) + [2]
        # Each post was sent to once; only the failed one was called twice.
        assert len(calls) == POSTERS
        assert sorted(calls.values()) == [1] * (POSTERS - 1) + [2]
        assert calls[Post.objects.get(pk=failed.post_id).external_id] == 2
        assert Counter(m["to"] for m in fake_network.sent) == {p.external_id: 1 for p in posts}
        assert len({m["key"] for m in fake_network.sent}) == POSTERS
        assert {m["key"] for m in fake_network.sent} == {str(r.idempotency_key) for r in replies}
        sent_times: dict[int, list[datetime]] = defaultdict(list)
        for r in replies:
            sent_times[r.channel_id].append(r.sent_at)
        for channel_id, times in sent_times.items():
            times.sort()
            assert min(b - a for a, b in itertools.pairwise(times)) >= intervals[channel_id]
            # 100 replies take 99 intervals; the channel of the failed one needs one more.
            last = POSTERS // 2 if channel_id == failed.channel_id else POSTERS // 2 - 1
            assert times[-1] == start + last * intervals[channel_id]
        assert children.filter(first_response_at__isnull=False).count() == POSTERS

        # -- the fix: resolving the major incident resolves every child, one "fixed" draft ---------
        clock.shift(timedelta(minutes=5))
        incident_update(incident=major, actor=agent, state=Incident.State.RESOLVED)

    assert set(children.values_list("state", flat=True)) == {Incident.State.RESOLVED}
    assert (
        IncidentEvent.objects.filter(
            incident__parent=major, kind=IncidentEvent.Kind.CHANGED, field="state", new_value="resolved"
        ).count()
        == POSTERS
    )
    [fixed] = Broadcast.objects.filter(incident=major, kind=Broadcast.Kind.FIXED)
    assert fixed.status == Broadcast.Status.DRAFT
    assert Broadcast.objects.filter(incident=major).count() == 2
    assert len(broadcast_preview(fixed).to_send) == POSTERS
    # Drafting sends nothing.
    assert Reply.objects.count() == POSTERS
    assert len(fake_network.sent) == POSTERS
