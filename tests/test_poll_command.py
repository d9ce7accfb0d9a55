from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from socialitsm.exceptions import PermanentError
from socialitsm.models import Incident, Post

from .factories import WatchRuleFactory, inbound

pytestmark = pytest.mark.django_db


def poll(*slugs: str) -> str:
    out = StringIO()
    call_command("socialitsm_poll", *slugs, stdout=out)
    return out.getvalue()


def test_poll_command_ingests_and_routes(fake_network):
    rule = WatchRuleFactory(channel__slug="desk")
    fake_network.inbox["desk"] = [inbound("p1"), inbound("p2", "Anyone up for lunch?", author="u-2")]
    assert poll("desk") == "desk: 2 new posts; ignored 1, incident 1; health ok\n"
    assert Post.objects.filter(channel=rule.channel).count() == 2
    assert Incident.objects.count() == 1
    assert poll("desk") == "desk: 0 new posts; nothing to route; health ok\n"


def test_poll_command_reports_channel_errors(fake_network):
    WatchRuleFactory(channel__slug="desk")
    fake_network.errors.append(PermanentError("authentication refused (HTTP 401)", status=401))
    assert poll() == "desk: 0 new posts; nothing to route; health failing (authentication refused (HTTP 401))\n"


def test_poll_command_refuses_unknown_channels():
    with pytest.raises(CommandError, match="no enabled channel named nope"):
        poll("nope")
