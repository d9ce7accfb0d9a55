from __future__ import annotations

import os
import signal
import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from socialitsm.models import Channel, Post

from .factories import ChannelFactory, inbound

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
