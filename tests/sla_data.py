"""A small, fully known SLA history for report tests (web, API, browser), built through the services
at fixed times. Policies are 24x7: P1 answers in 15 min and resolves in 4 h, P4 in 60 min and 8 h.

    A  P1 Service Desk, anna: posted Fri 20 Nov 08:00, received 08:02, answered 08:10, resolved 10:00
    B  P1 Service Desk, anna: posted 09:00, answered 09:30 (late), still open
    C  P4 Network Team, nobody: posted 10:59, received 11:00, not answered (at risk at 11:55)
    D  P4 Network Team, bob: posted Thu 19 Nov 07:00, never answered (both targets breached)
    E  a positive Mastodon post on the 20th that opened nothing

The report is for 19-20 Nov at 11:55 UTC on the 20th."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from django.contrib.auth.models import Group
from django.db import transaction

from socialitsm.exceptions import PermanentError
from socialitsm.models import Incident, Network, Service, SlaPolicy
from socialitsm.roles import AGENT_GROUP
from socialitsm.services.broadcasts import broadcast_confirm, broadcast_create
from socialitsm.services.incidents import incident_open_from_post, incident_update
from socialitsm.services.replies import replies_send_due, reply_queue, reply_send

from .factories import ChannelFactory, IncidentFactory, PostFactory, UserFactory, WatchRuleFactory

NOW = datetime(2026, 11, 20, 11, 55, tzinfo=UTC)
QUERY = {"from": "2026-11-19", "to": "2026-11-20"}


def z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _open(rule, *, posted: str, received: str, impact: int, urgency: int, sentiment: float, handle: str) -> Incident:
    with time_machine.travel(z(received), tick=False):
        post = PostFactory(
            rule=rule,
            posted_at=z(posted),
            ingested_at=z(received),
            sentiment=sentiment,
            author__handle=handle,
            external_id=f"sla-{handle}",
        )
        rule.default_impact = impact
        with transaction.atomic():
            return incident_open_from_post(post=post, rule=rule, service=None, urgency=urgency)


def _reply(incident: Incident, at: str, agent) -> None:
    with time_machine.travel(z(at), tick=False):
        reply = reply_queue(
            incident=incident, post=incident.posts.get(), text="On it.", visibility="public", agent=agent
        )
        reply_send(reply=reply)


def _update(incident: Incident, at: str, actor, **changes) -> None:
    with time_machine.travel(z(at), tick=False):
        incident_update(incident=incident, actor=actor, **changes)


def build() -> dict[str, Incident]:
    SlaPolicy.objects.create(name="P1 24x7", priority=1, first_response_minutes=15, resolution_minutes=240)
    SlaPolicy.objects.create(name="P4 24x7", priority=4, first_response_minutes=60, resolution_minutes=480)
    desk = Group.objects.create(name="Service Desk")
    network = Group.objects.create(name="Network Team")
    agents = Group.objects.get(name=AGENT_GROUP)
    anna = UserFactory(username="anna")
    bob = UserFactory(username="bob")
    anna.groups.add(agents)
    bob.groups.add(agents)
    replay = ChannelFactory(network=Network.REPLAY)
    desk_rule = WatchRuleFactory(channel=replay, assignment_group=desk)
    network_rule = WatchRuleFactory(channel=replay, name="network", assignment_group=network)

    d = _open(
        network_rule,
        posted="2026-11-19 07:00",
        received="2026-11-19 07:00",
        impact=3,
        urgency=2,
        sentiment=0.0,
        handle="@dora",
    )
    _update(d, "2026-11-19 07:30", bob, assignee=bob)
    a = _open(
        desk_rule,
        posted="2026-11-20 08:00",
        received="2026-11-20 08:02",
        impact=1,
        urgency=1,
        sentiment=-0.6,
        handle="@ada",
    )
    _update(a, "2026-11-20 08:05", anna, assignee=anna)
    _reply(a, "2026-11-20 08:10", anna)
    b = _open(
        desk_rule,
        posted="2026-11-20 09:00",
        received="2026-11-20 09:00",
        impact=1,
        urgency=1,
        sentiment=-0.3,
        handle="@ben",
    )
    _update(b, "2026-11-20 09:01", anna, assignee=anna)
    _reply(b, "2026-11-20 09:30", anna)
    _update(a, "2026-11-20 10:00", anna, state="resolved")
    c = _open(
        network_rule,
        posted="2026-11-20 10:59",
        received="2026-11-20 11:00",
        impact=3,
        urgency=2,
        sentiment=0.4,
        handle="@cy",
    )
    mastodon = ChannelFactory(network=Network.MASTODON)
    PostFactory(
        rule=WatchRuleFactory(channel=mastodon),
        posted_at=z("2026-11-20 10:00"),
        ingested_at=z("2026-11-20 10:00"),
        sentiment=0.5,
    )
    return {"A": a, "B": b, "C": c, "D": d}


def build_major_outage(*, now: datetime, agent, fake_network) -> Incident:
    """Two major incidents about e-mail for the lead's major incident figures, as seen at `now`:

    INC0000900, opened 60 min before `now` over three posters who wrote 90, 80 and 70 min before
    it (30 min from the first post to the major incident); a broadcast confirmed 45 min before
    `now` (45 min after the first post) reached two of them, the third's network refused it.
    INC0000950, opened 5 min before `now`, with no posters yet."""
    email = Service.objects.get(slug="email")
    rule = WatchRuleFactory(
        channel=ChannelFactory(slug="support", config={"connector": "fake", "broadcast_per_minute": 60})
    )
    major = IncidentFactory(
        number="INC0000900",
        is_major=True,
        service=email,
        opened_at=now - timedelta(minutes=60),
        short_description="Mail",
    )
    for n, minutes in enumerate([90, 80, 70]):
        child = IncidentFactory(number=f"INC000091{n}", parent=major, service=email)
        PostFactory(rule=rule, incident=child, posted_at=now - timedelta(minutes=minutes))
    IncidentFactory(number="INC0000950", is_major=True, service=email, opened_at=now - timedelta(minutes=5))
    with time_machine.travel(now - timedelta(minutes=45), tick=False):
        broadcast_confirm(broadcast=broadcast_create(major=major, text="We know", actor=agent), actor=agent)
    with time_machine.travel(now - timedelta(minutes=44), tick=False):
        fake_network.errors = [PermanentError("blocked")]
        replies_send_due()
    return major
