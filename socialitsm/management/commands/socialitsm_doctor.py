"""Check that this installation can work, and print what to fix: settings, encryption keys, the
channels' credentials, the networks and ITSM suites (reachable?), the broker and the worker."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from socialitsm.services.doctor import Finding, doctor_run


class Command(BaseCommand):
    help = "Check settings, keys, channels' credentials, networks, ITSM suites and the worker; exit 1 on problems."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--offline", action="store_true", help="Skip the calls to networks and ITSM suites.")

    def handle(self, *args: Any, offline: bool, **options: Any) -> None:
        findings = doctor_run(offline=offline, debug=settings.DEBUG, secret_key=settings.SECRET_KEY)
        for finding in findings:
            self.stdout.write(self._line(finding))
        problems = [f for f in findings if not f.ok]
        if problems:
            self.stderr.write(f"{len(problems)} problem(s) to fix")
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS("all checks passed"))

    def _line(self, finding: Finding) -> str:
        if finding.ok:
            return f"ok    {finding.what}: {finding.detail}"
        return self.style.ERROR(f"FIX   {finding.what}: {finding.detail}")
