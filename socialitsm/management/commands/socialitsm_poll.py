"""Poll channels now, in this process, and say what came in (beat does this on a schedule)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from socialitsm.models import Channel, Post
from socialitsm.services.ingest import channel_poll
from socialitsm.services.routing import posts_process


class Command(BaseCommand):
    help = "Poll the named channels (default: every enabled polling channel) once and route what came."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slugs", nargs="*", help="channel slugs")

    def handle(self, *args: Any, slugs: list[str], **options: Any) -> None:
        channels = Channel.objects.filter(enabled=True)
        if slugs:
            channels = channels.filter(slug__in=slugs)
            missing = set(slugs) - set(channels.values_list("slug", flat=True))
            if missing:
                raise CommandError(f"no enabled channel named {', '.join(sorted(missing))}")
        else:
            channels = channels.filter(listen_mode=Channel.ListenMode.POLL)
        for channel in channels:
            created = channel_poll(channel=channel)
            pending = list(Post.objects.routable().filter(channel=channel).values_list("pk", flat=True))
            outcome = posts_process(post_ids=pending) if pending else {}
            channel.refresh_from_db()
            routed = ", ".join(f"{state} {count}" for state, count in sorted(outcome.items())) or "nothing to route"
            line = f"{channel.slug}: {created} new posts; {routed}; health {channel.health}"
            if channel.last_error:
                line += f" ({channel.last_error})"
            self.stdout.write(line)
