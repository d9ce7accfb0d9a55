from __future__ import annotations

import json

import pytest
import responses

from socialitsm.connectors import connector_for
from socialitsm.connectors.webhook import SIGNATURE_HEADER, sign, signature_valid
from socialitsm.exceptions import PermanentError, TransientError

from ..factories import ChannelFactory, PostFactory, WatchRuleFactory

pytestmark = pytest.mark.django_db

REPLY_URL = "https://hooks.example.com/replies"


@pytest.fixture
def webhook_post(public_dns):
    channel = ChannelFactory(network="webhook", config={"reply_url": REPLY_URL}, credentials={"secret": "topsecret"})
    return PostFactory(rule=WatchRuleFactory(channel=channel), external_id="ext-1")


def test_signature_round_trip():
    body = b'{"id": "1"}'
    assert sign("k", body) == "sha256=4ad8808ee9ce2ff554617a668f66b4827bfbc92e6173822e737c0e0512dd0875"
    assert signature_valid("k", body, sign("k", body))
    assert not signature_valid("k", body + b" ", sign("k", body))
    assert not signature_valid("other", body, sign("k", body))
    assert not signature_valid("", body, sign("", body))
    assert not signature_valid("k", body, None)


@responses.activate
def test_reply_posts_signed_body(webhook_post):
    responses.post(REPLY_URL, json={"id": "remote-42"})
    external_id = connector_for(webhook_post.channel).reply(webhook_post, "On it", "direct", idempotency_key="key-1")
    assert external_id == "remote-42"
    call = responses.calls[0].request
    assert json.loads(call.body) == {
        "idempotency_key": "key-1",
        "in_reply_to": "ext-1",
        "to": webhook_post.author.external_id,
        "visibility": "direct",
        "text": "On it",
    }
    assert call.headers[SIGNATURE_HEADER] == sign("topsecret", call.body)
    assert call.headers["Idempotency-Key"] == "key-1"


@pytest.mark.parametrize(
    ("status", "error"), [(429, TransientError), (503, TransientError), (401, PermanentError), (422, PermanentError)]
)
@responses.activate
def test_reply_errors_are_classified(webhook_post, status, error):
    responses.post(REPLY_URL, status=status, headers={"Retry-After": "30"})
    with pytest.raises(error):
        connector_for(webhook_post.channel).reply(webhook_post, "On it", "public", idempotency_key="k")


@responses.activate
def test_reply_without_id_is_permanent(webhook_post):
    responses.post(REPLY_URL, body="ok")
    with pytest.raises(PermanentError, match="without a JSON"):
        connector_for(webhook_post.channel).reply(webhook_post, "On it", "public", idempotency_key="k")


def test_reply_without_reply_url_is_permanent():
    channel = ChannelFactory(network="webhook", config={})
    post = PostFactory(rule=WatchRuleFactory(channel=channel))
    with pytest.raises(PermanentError, match="no reply_url"):
        connector_for(channel).reply(post, "On it", "public", idempotency_key="k")


def test_webhook_channels_refuse_status_posts():
    channel = ChannelFactory.build(network="webhook", config={})
    connector = connector_for(channel)
    assert connector.status_refusal() == "Webhook channels cannot publish a status post"
    with pytest.raises(PermanentError, match="Webhook channels cannot publish a status post"):
        connector.post_status("We know", idempotency_key="k")
