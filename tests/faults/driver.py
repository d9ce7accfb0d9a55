"""Sets up the fault scenarios in the throwaway database, in a process of its own:
`python -m tests.faults.driver <command> '<json arguments>'` prints a JSON answer."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta


def _complaint(i: int) -> str:
    issues = ("VPN down again", "Outlook keeps crashing", "wifi dead on floor 3", "printer jammed all morning")
    return f"{issues[i % len(issues)]}, third time this week, nobody answers the helpdesk (case {i})"


def ingest_setup(*, posts: int, batch: int) -> dict:
    """A replay channel whose file holds `posts` posts, polled `batch` at a time every second."""
    from django.conf import settings

    from socialitsm.models import Channel, WatchRule

    path = settings.VAR_DIR / "faults-posts.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for i in range(posts):
            author = {"id": f"ingest-u{i}", "handle": f"@ingest{i}"}
            fh.write(json.dumps({"id": f"ingest-{i:05d}", "text": _complaint(i), "author": author}) + "\n")
    channel = Channel.objects.create(
        name="Faults replay",
        slug="faults-replay",
        network="replay",
        config={"path": str(path), "batch": batch},
        poll_interval=1,
    )
    WatchRule.objects.create(channel=channel, name="complaints", query="helpdesk", complaint_threshold=0.3)
    return {"channel": channel.pk}


def _incidents(slug: str, network: str, count: int, config: dict) -> list:
    """`count` incidents, each opened from a post of its own (without the worker or the
    classifier: these scenarios are about what happens after routing)."""
    from django.db import transaction
    from django.utils import timezone

    from socialitsm.connectors import InboundAuthor, InboundPost
    from socialitsm.models import Channel, Post, WatchRule
    from socialitsm.services.incidents import incident_open_from_post
    from socialitsm.services.ingest import posts_ingest

    channel = Channel.objects.create(
        name=slug, slug=slug, network=network, config=config, credentials={"secret": "faults-secret"}
    )
    rule = WatchRule.objects.create(channel=channel, name="complaints", query="helpdesk", complaint_threshold=0.0)
    now = timezone.now()
    inbound = [
        InboundPost(
            external_id=f"{slug}-{i}",
            author=InboundAuthor(external_id=f"{slug}-u{i}", handle=f"@{slug}{i}"),
            text=_complaint(i),
            posted_at=now - timedelta(minutes=1),
            conversation_id=f"{slug}-c{i}",
        )
        for i in range(count)
    ]
    posts_ingest(channel=channel, posts=inbound, rule=rule, process=False)
    for post in Post.objects.filter(channel=channel).order_by("external_id"):
        with transaction.atomic():
            incident_open_from_post(post=post, rule=rule, service=None, urgency=2)
    return list(Post.objects.filter(channel=channel, incident__isnull=False).select_related("incident"))


def replies_setup(*, count: int, url: str) -> dict:
    """`count` incidents on a webhook channel whose replies go to `url`, each with a reply queued."""
    from django.contrib.auth import get_user_model

    from socialitsm.services.replies import reply_queue

    agent = get_user_model().objects.create_user("faults.agent")
    posts = _incidents("faults-replies", "webhook", count, {"reply_url": url})
    for post in posts:
        reply_queue(
            incident=post.incident,
            post=post,
            text=f"Sorry, looking into it ({post.external_id})",
            visibility="public",
            agent=agent,
        )
    return {"replies": len(posts)}


def itsm_setup(*, count: int, url: str) -> dict:
    """A webhook ITSM connection to `url` that takes the incidents opened from now on, then
    `count` incidents for it."""
    from socialitsm.models import IncidentEvent, ItsmConnection

    cursor = IncidentEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    connection = ItsmConnection.objects.create(
        name="Faults receiver",
        slug="faults-itsm",
        kind="webhook",
        base_url=url,
        credentials={"secret": "faults-itsm-secret"},
        event_cursor=cursor,
    )
    posts = _incidents("faults-itsm", "webhook", count, {})
    return {"connection": connection.pk, "incidents": sorted({p.incident_id for p in posts})}


def itsm_disable(*, slug: str) -> dict:
    from socialitsm.models import ItsmConnection

    return {"disabled": ItsmConnection.objects.filter(slug=slug).update(enabled=False)}


def stream_setup(*, base_url: str, tag: str) -> dict:
    from socialitsm.models import Channel, WatchRule

    channel = Channel.objects.create(
        name="Faults stream",
        slug="faults-stream",
        network="mastodon",
        base_url=base_url,
        credentials={"access_token": "faults-token"},
        config={"account_id": "1"},
        listen_mode=Channel.ListenMode.STREAM,
    )
    WatchRule.objects.create(channel=channel, name=tag, kind="hashtag", query=f"#{tag}", complaint_threshold=0.3)
    return {"channel": channel.pk}


COMMANDS = {f.__name__: f for f in (ingest_setup, replies_setup, itsm_setup, itsm_disable, stream_setup)}


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.faults.settings")
    django.setup()
    command, arguments = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    print(json.dumps(COMMANDS[command](**arguments), default=str))


if __name__ == "__main__":
    main()
