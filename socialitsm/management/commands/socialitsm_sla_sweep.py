"""Run the SLA sweep now (beat runs it every minute), optionally re-evaluating open incidents first."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from socialitsm.services.sla import sla_recompute_open, sla_sweep


class Command(BaseCommand):
    help = "Announce SLA warnings and breaches that are due. --recompute replays every open incident's clocks first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--recompute",
            action="store_true",
            help="Replay the open incidents' clocks first, e.g. after changing SOCIALITSM_SLA_WARN_RATIO.",
        )

    def handle(self, *args: Any, recompute: bool, **options: Any) -> None:
        if recompute:
            self.stdout.write(f"re-evaluated {sla_recompute_open()} open incidents")
        outcome = sla_sweep()
        self.stdout.write(f"{outcome['warned']} warnings, {outcome['breached']} breaches announced")
