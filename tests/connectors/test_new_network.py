"""A fifth network is one connector class and one registry line: the transport, quota recording,
error mapping and config checking come from connectors/base.py. The connector below speaks a
Discourse-like forum API and is defined here, registered, and polled through the real services."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
import requests
import responses
import time_machine
from responses import matchers

from socialitsm.connectors import CONNECTORS, config_parse, connector_for
from socialitsm.connectors.base import (
    ChannelConfig,
    Connector,
    Cursor,
    InboundAuthor,
    InboundPost,
    Limits,
    RuleKind,
    aware_time,
)
from socialitsm.exceptions import PermanentError
from socialitsm.models import Channel, Post, WatchRule
from socialitsm.services.ingest import channel_poll

from ..factories import ChannelFactory, PostFactory, WatchRuleFactory

pytestmark = pytest.mark.django_db

BASE = "https://forum.example.com"
NOW = datetime(2026, 9, 14, 10, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ForumConfig(ChannelConfig):
    category: str = ""
    page_size: int = 50


class ForumConnector(Connector):
    """Forum search in, topic replies out."""

    network = "forum"
    label = "Forum"
    config_class: ClassVar[type[ChannelConfig]] = ForumConfig

    def _headers(self) -> dict[str, str]:
        return {"Api-Key": str(self.channel.credentials.get("api_key", "")), "Api-Username": "support"}

    def search(self, rule: WatchRule, cursor: Cursor) -> tuple[Sequence[InboundPost], Cursor]:
        if rule.kind != RuleKind.SEARCH:
            return [], cursor
        found = self.request_object(
            "GET",
            f"{self.channel.base_url}/search.json",
            what="search",
            params={"q": rule.query},
            headers=self._headers(),
        )
        after = int(cursor.get("after", 0))
        posts = [self._post(item) for item in found.get("posts") or [] if int(item["id"]) > after]
        newest = max([after, *(int(p.external_id) for p in posts)])
        return sorted(posts, key=lambda p: int(p.external_id)), {"after": newest} if newest else cursor

    def _post(self, item: dict[str, Any]) -> InboundPost:
        return InboundPost(
            external_id=str(item["id"]),
            author=InboundAuthor(external_id=str(item["user_id"]), handle=f"@{item['username']}"),
            text=str(item["blurb"]),
            posted_at=aware_time(item["created_at"]) or NOW,
            url=f"{BASE}/t/{item['topic_id']}/{item['post_number']}",
            conversation_id=str(item["topic_id"]),
        )

    def reply(self, post: Post, text: str, visibility: str, *, idempotency_key: str) -> str:
        body = {"raw": text, "topic_id": int(post.conversation_id), "reply_to_post_number": 1}
        sent = self.request_object(
            "POST", f"{self.channel.base_url}/posts.json", what="the reply", json=body, headers=self._headers()
        )
        return str(sent["id"])

    def limits(self) -> Limits:
        return Limits(max_reply_chars=32000, supports_direct=False)


SEARCH = {
    "posts": [
        {
            "id": 812,
            "user_id": 44,
            "username": "jane",
            "created_at": "2026-09-14T09:50:00.000Z",
            "blurb": "VPN down again since the update",
            "topic_id": 301,
            "post_number": 3,
        },
        {
            "id": 809,
            "user_id": 45,
            "username": "omar",
            "created_at": "2026-09-14T09:40:00.000Z",
            "blurb": "Is the VPN slow for anyone else?",
            "topic_id": 300,
            "post_number": 1,
        },
    ]
}
LIMIT_HEADERS = {"X-RateLimit-Remaining": "58", "X-RateLimit-Limit": "60", "X-RateLimit-Reset": "1789380000"}


@pytest.fixture(autouse=True)
def forum_registered(monkeypatch, public_dns):
    monkeypatch.setitem(CONNECTORS, "forum", f"{__name__}.ForumConnector")


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def channel() -> Channel:
    return ChannelFactory(network="forum", base_url=BASE, config={}, credentials={"api_key": "k3y"})


def _search_rule(channel: Channel, **extra: Any) -> WatchRule:
    return WatchRuleFactory(channel=channel, name="VPN", kind=RuleKind.SEARCH, query="vpn", **extra)


def test_the_registry_line_is_all_it_takes_to_reach_the_connector(channel):
    assert type(connector_for(channel)) is ForumConnector


@responses.activate
def test_a_poll_stores_the_posts_moves_the_cursor_and_records_the_quota(channel):
    rule = _search_rule(channel)
    responses.get(
        f"{BASE}/search.json",
        json=SEARCH,
        headers=LIMIT_HEADERS,
        match=[matchers.query_param_matcher({"q": "vpn"}), matchers.header_matcher({"Api-Key": "k3y"})],
    )
    assert channel_poll(channel=channel) == 2
    assert sorted(Post.objects.values_list("network", "external_id", "text", "author__handle")) == [
        ("forum", "809", "Is the VPN slow for anyone else?", "@omar"),
        ("forum", "812", "VPN down again since the update", "@jane"),
    ]
    rule.refresh_from_db()
    channel.refresh_from_db()
    assert rule.cursor == {"after": 812}
    assert (channel.health, channel.last_error, channel.requests_made) == ("ok", "", 1)
    assert (channel.quota_remaining, channel.quota_limit, channel.quota_reset_at) == (
        58,
        60,
        datetime(2026, 9, 14, 10, 0, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("response", "health", "error", "limited_until"),
    [
        (
            {"status": 401, "json": {"error": "invalid_api_key", "message": "You are not permitted"}},
            "failing",
            "Forum refused the channel's credentials (HTTP 401): invalid_api_key: You are not permitted",
            None,
        ),
        (
            {"status": 403, "json": {"error": "forbidden"}},
            "failing",
            "Forum does not allow this (HTTP 403): forbidden",
            None,
        ),
        (
            {"status": 422, "json": {"message": "query too short"}},
            "failing",
            "Forum refused the request (HTTP 422): query too short",
            None,
        ),
        (
            {"status": 429, "json": {"error": "rate_limit"}, "headers": {"Retry-After": "90"}},
            "degraded",
            "Forum rate limit reached (rate_limit); it resets at 10:01:30 UTC",
            NOW + timedelta(seconds=90),
        ),
        (
            {"status": 429, "json": {"error": "rate_limit"}, "headers": {**LIMIT_HEADERS, "Retry-After": "5"}},
            "degraded",
            "Forum rate limit reached (rate_limit); it resets at 10:00:00 UTC",
            None,
        ),
        (
            {"status": 502, "body": "<html>Bad gateway</html>"},
            "degraded",
            "Forum is failing (HTTP 502): ",
            None,
        ),
        (
            {"status": 200, "body": "<html>maintenance</html>"},
            "degraded",
            "Forum answered search with something that is not JSON: '<html>maintenance</html>'",
            None,
        ),
        (
            {"status": 200, "json": ["not", "an", "object"]},
            "degraded",
            "Forum answered search with unexpected JSON: ['not', 'an', 'object']",
            None,
        ),
        (
            {"body": requests.ConnectTimeout("connect timed out")},
            "degraded",
            "timed out calling forum.example.com",
            None,
        ),
    ],
    ids=["401", "403", "422", "429-retry-after", "429-reset-now", "502", "not-json", "not-an-object", "timeout"],
)
@responses.activate
def test_errors_are_mapped_and_worded_without_code_of_its_own(channel, response, health, error, limited_until):
    rule = _search_rule(channel, cursor={"after": 800})
    responses.get(f"{BASE}/search.json", **response)
    assert channel_poll(channel=channel) == 0
    rule.refresh_from_db()
    channel.refresh_from_db()
    assert rule.cursor == {"after": 800}
    assert Post.objects.count() == 0
    assert (channel.health, channel.last_error, channel.rate_limited_until) == (health, error, limited_until)


@responses.activate
def test_the_quota_of_a_refused_call_is_recorded_too(channel):
    _search_rule(channel)
    responses.get(f"{BASE}/search.json", status=503, json={"error": "busy"}, headers={**LIMIT_HEADERS})
    channel_poll(channel=channel)
    channel.refresh_from_db()
    assert (channel.requests_made, channel.quota_remaining, channel.quota_limit) == (1, 58, 60)


@responses.activate
def test_a_reply_goes_out_through_the_same_transport(channel):
    post = PostFactory(channel=channel, network="forum", external_id="812", conversation_id="301")
    responses.post(
        f"{BASE}/posts.json",
        json={"id": 813},
        match=[matchers.json_params_matcher({"raw": "We are on it.", "topic_id": 301, "reply_to_post_number": 1})],
    )
    assert connector_for(channel).reply(post, "We are on it.", "public", idempotency_key="k") == "813"
    responses.post(f"{BASE}/posts.json", status=404, json={"error": "not_found", "message": "Topic is gone"})
    with pytest.raises(PermanentError) as refused:
        connector_for(channel).reply(post, "We are on it.", "public", idempotency_key="k")
    assert (refused.value.message, refused.value.status) == (
        "Forum has no such resource (HTTP 404): not_found: Topic is gone",
        404,
    )


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"page_size": "fifty"}, "config page_size: expected a number, got 'fifty'"),
        ({"category": ["a"]}, "config category: expected text, got ['a']"),
    ],
)
def test_its_config_class_is_what_the_doors_check(config, error):
    assert config_parse("forum", {"category": "support", "page_size": "20"}) == ForumConfig(
        category="support", page_size=20
    )
    with pytest.raises(ValueError, match=f"^{error}$".replace("[", r"\[").replace("]", r"\]")):
        config_parse("forum", config)
