"""The Bluesky connector against a real AT Protocol network on 127.0.0.1 (PLC + PDS + AppView
from @atproto/dev-env; start it with ../shared/peers/bluesky/start.sh; .ci/run does). Skipped when the
network's env file is absent. Not covered here: Jetstream (not on npm) and chat (no chat service
in dev-env); both are tested against local stand-ins in the other Bluesky tests."""

from __future__ import annotations

import os
import shlex
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from socialitsm.connectors import bluesky
from socialitsm.models import Channel, Post, Reply
from socialitsm.services.channels import channel_verify
from socialitsm.services.ingest import channel_poll
from socialitsm.services.replies import reply_queue

from ..factories import WatchRuleFactory

pytestmark = [pytest.mark.bluesky_peer, pytest.mark.django_db]

ENV_FILE = Path(os.environ.get("BSKY_PEER_ENV", "/var/lib/bsky-peer/env"))


def _peer() -> dict[str, str]:
    values: dict[str, str] = {}
    if not ENV_FILE.exists():
        return values
    for line in ENV_FILE.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("BSKY_"):
            values[key.removeprefix("export ").strip()] = shlex.split(value)[0] if value.strip() else ""
    return values


@pytest.fixture
def peer(settings) -> dict[str, str]:
    settings.SOCIALITSM_ALLOW_PRIVATE_URLS = True
    bluesky.sessions_forget()
    return _peer()


def _xrpc(
    peer: dict[str, str], nsid: str, token: str | None = None, body: dict | None = None, host: str = "", **params: str
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{host or peer['BSKY_PDS_URL']}/xrpc/{nsid}"
    response = (
        requests.post(url, json=body, headers=headers, timeout=10)
        if body is not None
        else requests.get(url, params=params, headers=headers, timeout=10)
    )
    response.raise_for_status()
    return response.json()


def _alice_posts(peer: dict[str, str], text: str, *, reply_to: dict | None = None) -> dict[str, Any]:
    """Alice writes a post mentioning the service desk (mention facet at the start)."""
    alice = _xrpc(
        peer,
        "com.atproto.server.createSession",
        body={"identifier": peer["BSKY_ALICE_HANDLE"], "password": peer["BSKY_ALICE_APP_PASSWORD"]},
    )
    mention = f"@{peer['BSKY_SERVICEDESK_HANDLE']}"
    record: dict[str, Any] = {
        "$type": "app.bsky.feed.post",
        "text": f"{mention} {text}",
        "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "langs": ["en"],
        "facets": [
            {
                "index": {"byteStart": 0, "byteEnd": len(mention.encode())},
                "features": [{"$type": "app.bsky.richtext.facet#mention", "did": peer["BSKY_SERVICEDESK_DID"]}],
            }
        ],
    }
    if reply_to:
        record["reply"] = reply_to
    return _xrpc(
        peer,
        "com.atproto.repo.createRecord",
        alice["accessJwt"],
        body={"repo": alice["did"], "collection": "app.bsky.feed.post", "record": record},
    )


def _eventually(check: Callable[[], Any], seconds: float = 15.0) -> Any:
    """The AppView indexes within about a second; poll as the connector would."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def _peer_answers() -> bool:
    """The env file outlives the network (it is not removed on stop): ask the PDS itself."""
    url = _peer().get("BSKY_PDS_URL")
    if not url:
        return False
    try:
        return requests.get(f"{url}/xrpc/_health", timeout=2).ok
    except requests.RequestException:
        return False


@pytest.mark.skipif(not _peer_answers(), reason=f"no local AT Protocol network answering (see {ENV_FILE})")
def test_listen_and_reply_on_a_real_pds(peer, agent, django_capture_on_commit_callbacks):
    channel = Channel(
        name="Service desk",
        slug="servicedesk",
        network="bluesky",
        base_url=peer["BSKY_PDS_URL"],
        credentials={"identifier": peer["BSKY_SERVICEDESK_HANDLE"], "password": peer["BSKY_SERVICEDESK_APP_PASSWORD"]},
        config={},
    )
    assert channel_verify(channel=channel) == f"@{peer['BSKY_SERVICEDESK_HANDLE']}"
    assert channel.config["account_id"] == peer["BSKY_SERVICEDESK_DID"]
    channel.save()
    mentions = WatchRuleFactory(channel=channel, name="mentions", kind="mentions", query="")
    marker = uuid.uuid4().hex[:8]
    complaint = _alice_posts(peer, f"the helpdesk portal is down again, cannot log in since this morning {marker}")

    def heard() -> Post | None:
        with django_capture_on_commit_callbacks(execute=True):
            channel_poll(channel=channel)
        return Post.objects.filter(external_id=complaint["uri"]).first()

    post = _eventually(heard)
    assert post is not None, Channel.objects.get(pk=channel.pk).last_error
    assert (post.author.external_id, post.author.handle, post.rule_id) == (
        peer["BSKY_ALICE_DID"],
        f"@{peer['BSKY_ALICE_HANDLE']}",
        mentions.pk,
    )
    assert post.incident is not None

    text = f"@{peer['BSKY_ALICE_HANDLE']} Sorry! The helpdesk portal team is on it {marker}"
    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_queue(incident=post.incident, post=post, text=text, visibility="public", agent=agent)
    reply.refresh_from_db()
    assert (reply.status, reply.error) == (Reply.Status.SENT, "")
    appview = peer["BSKY_APPVIEW_URL"]  # public reads need no token there
    thread = _eventually(
        lambda: _xrpc(peer, "app.bsky.feed.getPostThread", host=appview, uri=complaint["uri"])["thread"]["replies"]
    )
    [ours] = [r["post"] for r in thread]
    assert ours["uri"] == reply.external_id
    assert ours["record"]["reply"]["parent"] == {"uri": complaint["uri"], "cid": complaint["cid"]}
    assert ours["record"]["facets"] == [
        {
            "index": {"byteStart": 0, "byteEnd": len(peer["BSKY_ALICE_HANDLE"]) + 1},
            "features": [{"$type": "app.bsky.richtext.facet#mention", "did": peer["BSKY_ALICE_DID"]}],
        }
    ]

    # Alice answers our reply: it joins the same incident; our own reply is never a new post.
    answer = _alice_posts(
        peer,
        f"still down after lunch {marker}",
        reply_to={
            "root": {"uri": complaint["uri"], "cid": complaint["cid"]},
            "parent": {"uri": ours["uri"], "cid": ours["cid"]},
        },
    )
    # Local search is a case-sensitive substring match: the marker finds all three posts.
    WatchRuleFactory(channel=channel, name="marker", kind="search", query=marker)
    follow_up = _eventually(lambda: heard() and Post.objects.filter(external_id=answer["uri"]).first())
    assert follow_up is not None
    assert (follow_up.incident_id, follow_up.in_reply_to) == (post.incident_id, complaint["uri"])
    assert not Post.objects.filter(external_id=reply.external_id).exists()
    # (The first poll also took earlier mentions on this network: listening starts at the latest page.)
    stored = set(Post.objects.filter(channel=channel, text__contains=marker).values_list("external_id", flat=True))
    assert stored == {complaint["uri"], answer["uri"]}
