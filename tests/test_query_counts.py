"""Pages and API lists run a bounded number of queries, however many rows they show: a list
reads the incidents' stored post counts and breach times, never one query per row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from socialitsm.models import Incident, Post, Service
from socialitsm.services.incidents import incident_open_from_post, post_link

from .factories import AuthorFactory, PostFactory, ReplyFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _incidents(count: int) -> list[Incident]:
    """Incidents as routing opens them: clocks, two posts of two people, a reply."""
    opened = []
    for i in range(count):
        at = NOW - timedelta(hours=i + 1)
        post = PostFactory(posted_at=at, ingested_at=at, author=AuthorFactory())
        incident = incident_open_from_post(
            post=post, rule=post.rule, service=Service.objects.get(slug="vpn"), urgency=2
        )
        post_link(post=PostFactory(posted_at=at, ingested_at=at, author=AuthorFactory()), incident=incident)
        ReplyFactory(post=post, incident=incident)
        opened.append(incident)
    return opened


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


@pytest.fixture
def web(lead) -> Client:
    client = Client()
    client.force_login(lead)
    return client


@pytest.fixture
def api(lead) -> APIClient:
    client = APIClient()
    client.force_authenticate(lead)
    return client


PAGES = [
    ("web", "/", 15),
    ("web", "/?sort=breach", 15),
    ("api", "/api/v1/incidents/", 6),
    ("api", "/api/v1/incidents/?ordering=breach_due_at", 6),
    ("api", "/api/v1/incidents/?state=new&state=in_progress&priority=4", 6),
    ("api", "/api/v1/posts/", 5),
    ("api", "/api/v1/posts/?triage_state=incident&triage_state=queued", 5),
    ("web", "/sla/?from=2026-11-01&to=2026-11-26", 27),
    ("web", "/sla/export.csv?from=2026-11-01&to=2026-11-26", 19),
    ("api", "/api/v1/reports/sla/?from=2026-11-01&to=2026-11-26", 17),
]


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(("client", "url", "most"), PAGES)
def test_lists_and_reports_run_a_bounded_number_of_queries(request, client, url, most, django_assert_max_num_queries):
    client = request.getfixturevalue(client)
    _incidents(1)
    few = _queries(client, url)
    _incidents(3)

    with django_assert_max_num_queries(min(few, most)):
        response = client.get(url)

    assert response.status_code == 200
    assert few <= most


@time_machine.travel(NOW, tick=False)
def test_incident_page_queries_do_not_grow_with_its_posts(web, django_assert_max_num_queries):
    [incident] = _incidents(1)
    url = f"/incidents/{incident.number}/"
    few = _queries(web, url)
    for _ in range(5):
        post_link(post=PostFactory(posted_at=NOW - timedelta(minutes=5)), incident=incident)

    with django_assert_max_num_queries(few):
        response = web.get(url)

    assert response.status_code == 200
    # The page also reads notes, canned replies, the poster's history and the viewer's profile.
    assert few <= 24
    assert Incident.objects.get(pk=incident.pk).post_count == Post.objects.filter(incident=incident).count() == 7


@time_machine.travel(NOW, tick=False)
def test_an_x_incident_page_reads_its_channels_credentials_once(web, django_assert_max_num_queries):
    """What X lets us answer depends on the channel's user keys: the page loads each channel once
    with its credentials, not once for each post shown."""
    from unittest import mock

    from socialitsm import crypto
    from socialitsm.connectors.x.oauth import USER_KEYS

    from .factories import ChannelFactory, WatchRuleFactory

    rule = WatchRuleFactory(
        channel=ChannelFactory(network="x", config={"account_id": "1"}, credentials=dict.fromkeys(USER_KEYS, "k"))
    )
    [incident] = _incidents(1)
    post_link(post=PostFactory(rule=rule, posted_at=NOW - timedelta(minutes=9)), incident=incident)
    url = f"/incidents/{incident.number}/"
    few = _queries(web, url)
    for minutes in range(5):
        post_link(post=PostFactory(rule=rule, posted_at=NOW - timedelta(minutes=minutes)), incident=incident)

    with django_assert_max_num_queries(few), mock.patch.object(crypto, "decrypt", wraps=crypto.decrypt) as decrypt:
        response = web.get(url)
    assert response.status_code == 200
    # One for each channel the posts came through (six posts on X, and the first two's).
    channels = Post.objects.filter(incident=incident).values("channel").distinct().count()
    assert decrypt.call_count == channels == 3


@pytest.mark.parametrize("prefetched", [True, False])
def test_an_incidents_itsm_links_come_with_their_incident_and_connection(prefetched):
    from socialitsm import selectors
    from socialitsm.models import ItsmConnection, ItsmLink

    incident = _incidents(1)[0]
    suite = ItsmConnection.objects.create(name="Suite", slug="suite", kind="fake", base_url="https://s.example")
    ItsmLink.objects.create(connection=suite, incident=incident, external_ref=f"socialitsm:{incident.number}")
    read = (selectors.incident_list() if prefetched else Incident.objects).get(pk=incident.pk)

    with CaptureQueriesContext(connection) as queries:
        links = read.itsm_links_listed
        named = [(link.incident.number, link.connection.slug) for link in links]

    assert named == [(incident.number, "suite")]
    assert len(queries) == (0 if prefetched else 1)
