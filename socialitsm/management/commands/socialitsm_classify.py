"""Classify posts from the shell: one post per input line, one JSON object per output line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from itertools import islice
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from socialitsm import classify
from socialitsm.services.routing import catalogue_load

BATCH = 500


class Command(BaseCommand):
    help = (
        "Read one post per line on stdin and write one JSON object per line on stdout: is_complaint, score, "
        "sentiment, service (a catalogue slug or null), urgency (1 high .. 3 low) and reasons. "
        "Write '\\n' inside a post as a backslash and n."
    )
    # call_command(..., stdin=StringIO(...)) reads from that instead of sys.stdin.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lang", default=None, help="language of the posts, e.g. en or fr (default: unknown)")
        parser.add_argument("--threshold", type=float, default=0.5, help="score from which a post is a complaint")
        parser.add_argument(
            "--no-catalogue", action="store_true", help="do not read the service catalogue (service is always null)"
        )

    def handle(self, *args: Any, lang: str | None, threshold: float, no_catalogue: bool, **options: Any) -> None:
        stdin: IO[str] = options.get("stdin") or sys.stdin
        catalogue: tuple[classify.ServiceEntry, ...] = ()
        if not no_catalogue:
            try:
                _, catalogue = catalogue_load()
            except DatabaseError as exc:
                message = f"cannot read the service catalogue ({exc}); migrate, or pass --no-catalogue"
                raise CommandError(message) from exc
        lines = (line.rstrip("\r\n").replace("\\n", "\n") for line in stdin)
        for chunk in _chunks(lines, BATCH):
            verdicts = classify.verdict_many(((text, lang) for text in chunk), catalogue=catalogue, threshold=threshold)
            for verdict in verdicts:
                self.stdout.write(json.dumps(_record(verdict), ensure_ascii=False))
            self.stdout.flush()


def _chunks(lines: Iterator[str], size: int) -> Iterator[list[str]]:
    while chunk := list(islice(lines, size)):
        yield chunk


def _record(verdict: classify.Verdict) -> dict[str, Any]:
    return {
        "is_complaint": verdict.is_complaint,
        "score": round(verdict.score, 4),
        "sentiment": round(verdict.sentiment, 4),
        "service": verdict.service,
        "urgency": verdict.urgency,
        "reasons": list(verdict.reasons),
    }
