"""Hold the streaming connections of every streaming channel in this one process."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from socialitsm.services.streaming import StreamSettings, streaming_channels, streams_run


class Command(BaseCommand):
    help = (
        "Connect every enabled channel whose listen mode is 'stream' (or the named ones) and store what "
        "they push; reconnects with backoff and polls while a stream is down. Stops on SIGTERM or Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slugs", nargs="*", help="channel slugs (default: all streaming channels)")
        parser.add_argument("--batch-size", type=int, default=StreamSettings.batch_size)
        parser.add_argument("--rescan", type=float, default=StreamSettings.rescan_seconds, help="seconds")

    def handle(self, *args: Any, slugs: list[str], batch_size: int, rescan: float, **options: Any) -> None:
        if slugs:
            found = set(streaming_channels(slugs))
            if len(found) != len(set(slugs)):
                raise CommandError("every named channel must exist, be enabled and have listen mode 'stream'")
        stop = threading.Event()

        def request_stop(signum: int, frame: Any) -> None:
            self.stdout.write(f"{signal.Signals(signum).name}: storing what came and stopping")
            stop.set()

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.stdout.write(f"streaming {len(streaming_channels(slugs))} channels; Ctrl-C stops")
            streams_run(stop=stop, slugs=slugs, settings=StreamSettings(batch_size=batch_size, rescan_seconds=rescan))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("stopped")
