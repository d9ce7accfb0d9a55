"""Add a channel from the shell, or test one; secrets come from the environment or a prompt."""

from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from socialitsm.connectors import RuleKind
from socialitsm.exceptions import ExternalError
from socialitsm.models import Channel, Network
from socialitsm.services.channels import channel_add, channel_test

ENV_PREFIX = "SOCIALITSM_CREDENTIAL_"


def _pairs(values: list[str], what: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise CommandError(f"{what} {value!r}: expected KEY=VALUE")
        pairs.append((key.strip(), rest))
    return pairs


class Command(BaseCommand):
    help = (
        "add: create a channel once the network accepts its credentials. "
        "test: check a channel's credentials (and, with --search, its rules) against the network. "
        f"Secrets are never arguments: each --credential NAME is read from ${ENV_PREFIX}<NAME> or prompted for."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="add a channel")
        add.add_argument("slug")
        add.add_argument("--network", required=True, choices=Network.values)
        add.add_argument("--name", default="")
        add.add_argument("--base-url", default="", help="the server, e.g. https://mastodon.example")
        add.add_argument("--handle", default="", help="filled from the network when it accepts the credentials")
        add.add_argument(
            "--credential",
            action="append",
            default=[],
            metavar="NAME",
            help=f"a secret the connector needs, e.g. access_token; read from ${ENV_PREFIX}NAME or prompted",
        )
        add.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="non-secret option")
        add.add_argument(
            "--rule",
            action="append",
            default=[],
            metavar="KIND=QUERY",
            help=f"a watch rule; KIND is one of {', '.join(RuleKind.values)}",
        )
        add.add_argument("--stream", action="store_true", help="listen with the streaming API instead of polling")
        add.add_argument("--no-verify", action="store_true", help="save without asking the network")
        test = actions.add_parser("test", help="test a channel")
        test.add_argument("slug")
        test.add_argument("--search", action="store_true", help="also run each rule's search once (X bills this)")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            if action == "add":
                self._add(**options)
            else:
                self._test(**options)
        except ExternalError as exc:
            raise CommandError(f"the network refused: {exc.message}") from exc

    def _add(self, *, slug: str, network: str, credential: list[str], rule: list[str], **options: Any) -> None:
        rules = _pairs(rule, "--rule")
        for kind, _query in rules:
            if kind not in RuleKind.values:
                raise CommandError(f"--rule kind {kind!r}: expected one of {', '.join(RuleKind.values)}")
        if Channel.objects.filter(slug=slug).exists():
            raise CommandError(f"a channel {slug!r} exists already; use the admin to change it")
        credentials = {name: self._secret(name) for name in credential}
        try:
            channel = channel_add(
                slug=slug,
                name=options["name"] or slug,
                network=network,
                base_url=options["base_url"],
                handle=options["handle"],
                credentials=credentials,
                config=dict(_pairs(options["config"], "--config")),
                listen_mode=Channel.ListenMode.STREAM if options["stream"] else Channel.ListenMode.POLL,
                rules=rules,
                verify=not options["no_verify"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        self.stdout.write(
            f"added {channel.slug} ({channel.get_network_display()}) as {channel.handle or '(unverified)'}"
            f" with {len(rules)} rules, listening by {channel.get_listen_mode_display().lower()}"
        )

    def _test(self, *, slug: str, search: bool, **options: Any) -> None:
        channel = Channel.objects.filter(slug=slug).first()
        if channel is None:
            raise CommandError(f"no channel named {slug!r}")
        check = channel_test(channel=channel, search=search)
        account = check.account_id or "?"
        self.stdout.write(f"{channel.slug}: credentials accepted for {check.handle} (account id {account})")
        for name, count in check.found.items():
            self.stdout.write(f"  rule {name!r}: {count} posts now")
        channel.refresh_from_db()
        if channel.quota_remaining is not None:
            self.stdout.write(f"  quota left: {channel.quota_remaining} of {channel.quota_limit or '?'}")

    def _secret(self, name: str) -> str:
        value = os.environ.get(f"{ENV_PREFIX}{name.upper()}")
        if value:
            return value
        if not sys.stdin.isatty():
            raise CommandError(f"set ${ENV_PREFIX}{name.upper()}; there is no terminal to ask for {name}")
        value = getpass.getpass(f"{name}: ")
        if not value:
            raise CommandError(f"{name} is empty")
        return value
