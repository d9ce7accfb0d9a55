from __future__ import annotations

import os
import signal
import threading
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from socialitsm.models import Channel, Post
from socialitsm.services.streaming import ChannelStreamer, StreamSettings

from .factories import ChannelFactory, WatchRuleFactory, inbound

# The streamers run in threads with their own database connections.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_stream_command_stores_what_streams_push_and_stops_on_sigterm(fake_network):
    streaming = ChannelFactory(slug="live", listen_mode=Channel.ListenMode.STREAM)
    ChannelFactory(slug="polled", listen_mode=Channel.ListenMode.POLL)
    fake_network.streams = [[inbound("live-1"), inbound("live-2", author="u-2")]]

    def terminate_when_done() -> None:
        if fake_network.streams_exhausted.wait(20):
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate_when_done, daemon=True).start()
    out = StringIO()
    previous = signal.getsignal(signal.SIGTERM)
    call_command("socialitsm_stream", "--rescan=0.2", stdout=out)
    assert out.getvalue() == ("streaming 1 channels; Ctrl-C stops\nSIGTERM: storing what came and stopping\nstopped\n")
    assert sorted(Post.objects.values_list("external_id", flat=True)) == ["live-1", "live-2"]
    assert Channel.objects.get(pk=streaming.pk).stream_cursor == {"seen": 2}
    assert signal.getsignal(signal.SIGTERM) is previous


def test_stream_command_refuses_a_channel_that_does_not_stream():
    ChannelFactory(slug="polled", listen_mode=Channel.ListenMode.POLL)
    with pytest.raises(CommandError, match="must exist, be enabled and have listen mode 'stream'"):
        call_command("socialitsm_stream", "polled")


def _wait_for_post(external_id: str) -> None:
    deadline = time.monotonic() + 10
    while not Post.objects.filter(external_id=external_id).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.postgres  # two threads writing at once: SQLite's shared in-memory test database locks
def test_a_stream_reconnects_when_its_rules_change(fake_network):
    channel = ChannelFactory(slug="live", listen_mode=Channel.ListenMode.STREAM)
    WatchRuleFactory(channel=channel, name="vpn", kind="search", query="vpn")
    first_open, second_open = threading.Event(), threading.Event()
    fake_network.streams = [[inbound("live-1"), first_open], [inbound("live-2"), second_open]]
    stop = threading.Event()
    streamer = ChannelStreamer(
        channel.pk, stop, StreamSettings(flush_seconds=0.05, rescan_seconds=0.1), own_connection=True
    )
    thread = threading.Thread(target=streamer.run, daemon=True)
    thread.start()
    try:
        _wait_for_post("live-1")
        WatchRuleFactory(channel=channel, name="mail", kind="hashtag", query="acmemail")
        _wait_for_post("live-2")
    finally:
        stop.set()
        thread.join(timeout=10)
        first_open.set()
        second_open.set()
    channel.refresh_from_db()
    assert sorted(Post.objects.values_list("external_id", flat=True)) == ["live-1", "live-2"]
    # Reopened at once for the new rule, not as a failure: no error, no backoff.
    assert fake_network.stream_resumed_from == [{}, {"seen": 1}]
    assert (streamer.connections, streamer.failures, channel.health, channel.last_error) == (2, 0, "ok", "")
