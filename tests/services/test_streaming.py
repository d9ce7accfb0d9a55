from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from socialitsm.connectors import StreamMark
from socialitsm.exceptions import PermanentError, TransientError
from socialitsm.models import Channel, Post
from socialitsm.services import streaming as streaming_module
from socialitsm.services.streaming import ChannelStreamer, StreamSettings

from ..factories import ChannelFactory, WatchRuleFactory, inbound

pytestmark = pytest.mark.django_db

FAST = StreamSettings(flush_seconds=0.05, backoff_min=0.01, backoff_max=0.02, permanent_wait=0.01)


def _run(channel: Channel, fake_network, settings: StreamSettings = FAST) -> ChannelStreamer:
    """Run the streamer in this thread until the scripted connections are used up."""
    stop = threading.Event()
    threading.Thread(target=lambda: fake_network.streams_exhausted.wait(10) and stop.set(), daemon=True).start()
    streamer = ChannelStreamer(channel.pk, stop, settings)
    streamer.run()
    return streamer


def test_stream_stores_posts_and_resumes_from_the_saved_cursor(fake_network):
    channel = ChannelFactory(listen_mode=Channel.ListenMode.STREAM)
    rule = WatchRuleFactory(channel=channel)
    fake_network.streams = [
        [inbound("s1", rule_id=rule.pk), StreamMark(), inbound("s2"), TransientError("connection reset")],
        [inbound("s2"), inbound("s3", author="u-2")],
    ]
    streamer = _run(channel, fake_network)
    assert fake_network.stream_resumed_from == [{}, {"seen": 3}, {"seen": 5}]
    assert list(Post.objects.order_by("external_id").values_list("external_id", "rule_id")) == [
        ("s1", rule.pk),
        ("s2", None),
        ("s3", None),
    ]
    channel.refresh_from_db()
    assert channel.stream_cursor == {"seen": 5}
    assert streamer.connections == 3


def test_dropped_stream_marks_the_channel_degraded(fake_network):
    channel = ChannelFactory(listen_mode=Channel.ListenMode.STREAM)
    fake_network.streams = [[inbound("s1"), TransientError("HTTP 502 from stream.example.com")]]
    streamer = ChannelStreamer(channel.pk, threading.Event(), FAST)
    streamer._connect_once(Channel.objects.get(pk=channel.pk))
    channel.refresh_from_db()
    assert (channel.health, channel.last_error) == (Channel.Health.DEGRADED, "stream: HTTP 502 from stream.example.com")
    # What came before the drop is stored, with the cursor.
    assert (Post.objects.get().external_id, channel.stream_cursor) == ("s1", {"seen": 1})


def test_refused_credentials_mark_the_channel_failing_and_do_not_poll(fake_network):
    channel = ChannelFactory(listen_mode=Channel.ListenMode.STREAM)
    fake_network.streams = [[PermanentError("authentication refused (HTTP 401)")]]
    stop = threading.Event()
    streamer = ChannelStreamer(channel.pk, stop, FAST)
    channel_obj = Channel.objects.get(pk=channel.pk)
    streamer._connect_once(channel_obj)
    channel.refresh_from_db()
    assert (channel.health, channel.last_error) == (Channel.Health.FAILING, "stream: authentication refused (HTTP 401)")
    assert fake_network.inbox == {}


def test_while_the_stream_is_down_the_channel_is_polled(fake_network):
    channel = ChannelFactory(listen_mode=Channel.ListenMode.STREAM, poll_interval=1)
    WatchRuleFactory(channel=channel)
    fake_network.inbox[channel.slug].append(inbound("polled-1"))
    reset = timezone.now() + timedelta(seconds=1.3)
    fake_network.streams = [[TransientError("HTTP 429", retry_at=reset)]]
    _run(channel, fake_network)
    assert list(Post.objects.values_list("external_id", flat=True)) == ["polled-1"]
    channel.refresh_from_db()
    assert channel.last_polled_at is not None


def test_streamer_stops_when_the_channel_stops_streaming(fake_network):
    channel = ChannelFactory(listen_mode=Channel.ListenMode.POLL)
    streamer = ChannelStreamer(channel.pk, threading.Event(), FAST)
    streamer.run()
    assert streamer.connections == 0


def test_a_failed_store_lets_the_reader_go_and_the_stream_resumes_from_the_saved_cursor(fake_network, monkeypatch):
    channel = ChannelFactory(listen_mode=Channel.ListenMode.STREAM)
    fake_network.streams = [[inbound("s1"), StreamMark(), inbound("s2")], [inbound("s2")]]
    real_ingest = streaming_module.posts_ingest
    calls = []

    def flaky_ingest(**kwargs):
        calls.append([p.external_id for p in kwargs["posts"]])
        if len(calls) == 2:
            raise OperationalError("server closed the connection unexpectedly")
        return real_ingest(**kwargs)

    monkeypatch.setattr(streaming_module, "posts_ingest", flaky_ingest)
    _run(channel, fake_network)
    channel.refresh_from_db()
    assert sorted(Post.objects.values_list("external_id", flat=True)) == ["s1", "s2"]
    assert calls[:2] == [["s1"], ["s2"]]
    # s1 and the mark after it were stored; s2 was not, so the stream resumed before it.
    assert fake_network.stream_resumed_from[:2] == [{}, {"seen": 2}]
    assert not [t for t in threading.enumerate() if t.name.startswith("stream-read-")]


def test_a_database_that_stays_down_does_not_end_the_stream(fake_network, monkeypatch):
    channel = ChannelFactory(listen_mode=Channel.ListenMode.STREAM)
    fake_network.streams = [[inbound("s1"), StreamMark(), inbound("s2")], [inbound("s2")]]
    real_ingest, real_down = streaming_module.posts_ingest, streaming_module._channel_stream_down
    outage = {"ingest": 1, "down": 1}

    def ingest(**kwargs):
        if kwargs["posts"] and kwargs["posts"][0].external_id == "s2" and outage["ingest"]:
            outage["ingest"] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return real_ingest(**kwargs)

    def down(*args, **kwargs):
        # Recording why the stream is down fails too: the database is still restarting.
        if outage["down"]:
            outage["down"] -= 1
            raise OperationalError("the database system is starting up")
        return real_down(*args, **kwargs)

    monkeypatch.setattr(streaming_module, "posts_ingest", ingest)
    monkeypatch.setattr(streaming_module, "_channel_stream_down", down)
    streamer = _run(channel, fake_network)
    assert sorted(Post.objects.values_list("external_id", flat=True)) == ["s1", "s2"]
    assert outage == {"ingest": 0, "down": 0}
    assert fake_network.stream_resumed_from[:2] == [{}, {"seen": 2}]
    assert streamer.connections == 3


def test_the_runner_keeps_going_while_it_cannot_list_the_channels(monkeypatch):
    stop = threading.Event()
    calls = []

    def channels(slugs):
        calls.append(list(slugs))
        if len(calls) == 1:
            raise OperationalError("connection refused")
        stop.set()
        return []

    monkeypatch.setattr(streaming_module, "streaming_channels", channels)
    streaming_module.streams_run(stop=stop, settings=StreamSettings(rescan_seconds=0.01))
    assert calls == [[], []]
