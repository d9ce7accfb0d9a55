from __future__ import annotations

import json

import pytest

from socialitsm.connectors import connector_for
from socialitsm.connectors.replay import DEMO_FILE
from socialitsm.exceptions import PermanentError

from ..factories import ChannelFactory, PostFactory, WatchRuleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def replay_dir(tmp_path, settings):
    settings.SOCIALITSM_REPLAY_ROOTS = [str(tmp_path)]
    return tmp_path


def write_lines(path, *records) -> None:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")


def replay_rule(path, **config):
    channel = ChannelFactory(network="replay", config={"path": str(path), **config})
    return WatchRuleFactory(channel=channel)


def record(n: int, **extra) -> dict:
    return {"id": f"r-{n}", "author": {"id": "u-1", "handle": "@maria"}, "text": f"post {n}", **extra}


def test_replay_hands_out_batches_and_moves_cursor(replay_dir):
    source = replay_dir / "posts.jsonl"
    write_lines(source, *(record(n) for n in range(1, 6)))
    rule = replay_rule(source, batch=2)
    connector = connector_for(rule.channel)
    posts, cursor = connector.search(rule, {})
    assert [p.external_id for p in posts] == ["r-1", "r-2"]
    assert cursor == {"line": 2, "round": 0}
    posts, cursor = connector.search(rule, cursor)
    posts, cursor = connector.search(rule, cursor)
    assert [p.external_id for p in posts] == ["r-5"]
    assert connector.search(rule, cursor) == ([], {"line": 5, "round": 0})


def test_replay_keeps_given_timestamps_and_stamps_missing_ones(replay_dir):
    source = replay_dir / "posts.jsonl"
    write_lines(source, record(1, created_at="2026-11-20T09:30:00+01:00"), record(2))
    rule = replay_rule(source)
    posts, _ = connector_for(rule.channel).search(rule, {})
    assert posts[0].posted_at.isoformat() == "2026-11-20T09:30:00+01:00"
    assert posts[1].posted_at.tzinfo is not None


def test_replay_loop_gives_fresh_ids(replay_dir):
    source = replay_dir / "posts.jsonl"
    write_lines(source, record(1, in_reply_to="r-0", conversation_id="c-1"))
    rule = replay_rule(source, loop=True)
    connector = connector_for(rule.channel)
    _, cursor = connector.search(rule, {})
    posts, cursor = connector.search(rule, cursor)
    assert [(p.external_id, p.in_reply_to, p.conversation_id) for p in posts] == [("r-1~1", "r-0~1", "c-1~1")]
    assert cursor == {"line": 1, "round": 1}


@pytest.mark.parametrize(
    ("line", "message"),
    [("{not json", "line 1: not JSON"), (json.dumps({"id": "x", "author": {"id": "u"}}), "line 1: text:")],
)
def test_bad_replay_line_is_a_permanent_error(replay_dir, line, message):
    source = replay_dir / "posts.jsonl"
    write_lines(source, line)
    rule = replay_rule(source)
    with pytest.raises(PermanentError, match=message):
        connector_for(rule.channel).search(rule, {})


def test_replay_refuses_files_outside_its_roots(replay_dir):
    rule = replay_rule("/etc/passwd")
    with pytest.raises(PermanentError, match="outside SOCIALITSM_REPLAY_ROOTS"):
        connector_for(rule.channel).search(rule, {})


def test_reply_goes_to_outbox_once_per_key(replay_dir):
    outbox = replay_dir / "outbox.jsonl"
    channel = ChannelFactory(network="replay", config={"path": str(DEMO_FILE), "outbox": str(outbox)})
    post = PostFactory(rule=WatchRuleFactory(channel=channel), external_id="demo-0001")
    connector = connector_for(channel)
    first = connector.reply(post, "We're on it", "direct", idempotency_key="k-1")
    again = connector.reply(post, "We're on it", "direct", idempotency_key="k-1")
    other = connector.reply(post, "Fixed", "public", idempotency_key="k-2")
    assert first == again != other
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [(r["in_reply_to"], r["visibility"], r["text"], r["to"]) for r in lines] == [
        ("demo-0001", "direct", "We're on it", post.author.handle),
        ("demo-0001", "public", "Fixed", post.author.handle),
    ]


def test_demo_file_is_valid_and_threads_point_backwards(settings):
    seen: set[str] = set()
    lines = DEMO_FILE.read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 40
    for line in lines:
        data = json.loads(line)
        assert data["id"] not in seen
        if data.get("in_reply_to"):
            assert data["in_reply_to"] in seen
        seen.add(data["id"])
    channel = ChannelFactory(network="replay", config={"path": str(DEMO_FILE), "batch": 1000})
    rule = WatchRuleFactory(channel=channel)
    posts, cursor = connector_for(channel).search(rule, {})
    assert len(posts) == len(lines)
    assert cursor == {"line": len(lines), "round": 0}
