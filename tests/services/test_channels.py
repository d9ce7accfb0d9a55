import threading
from decimal import Decimal

import pytest
from django.db import connection

from socialitsm.connectors import Quota
from socialitsm.exceptions import ApplicationError
from socialitsm.http import CREDENTIALS_FOR_NEW_HOST
from socialitsm.models import BilledResource
from socialitsm.services.channels import channel_quota_record, credentials_host_check

from ..factories import ChannelFactory

STORED = "https://rt.example.com/REST/2.0"


@pytest.mark.parametrize(
    ("new_url", "stored", "replaced"),
    [
        (None, True, False),  # base URL not changed
        ("https://rt.example.com:443/other", True, False),  # same host and port
        ("https://evil.example.net", False, False),  # nothing stored to leak
        ("https://evil.example.net", True, True),  # new credentials come with the change
    ],
)
def test_credentials_host_check_passes(new_url, stored, replaced):
    try:
        credentials_host_check(stored_url=STORED, new_url=new_url, stored=stored, replaced=replaced)
    except ApplicationError as exc:
        pytest.fail(f"refused a change that cannot leak the stored credentials: {exc.message}")


@pytest.mark.parametrize(
    "new_url", ["https://evil.example.net", "https://rt.example.com:8443", "http://rt.example.com"]
)
def test_credentials_host_check_refuses_another_host(new_url):
    with pytest.raises(ApplicationError) as caught:
        credentials_host_check(stored_url=STORED, new_url=new_url, stored=True, replaced=False)
    assert caught.value.message == CREDENTIALS_FOR_NEW_HOST
    assert caught.value.field == "credentials"


def _read(*resources: tuple[str, str, str], price: float = 0.005) -> Quota:
    quota = Quota(requests=1)
    quota.billed.update({resource: price for resource in resources})
    return quota


@pytest.mark.django_db
def test_a_resource_billed_by_two_workers_on_one_day_costs_once():
    channel = ChannelFactory(network="x", config={"account_id": "1"})
    post = ("2026-11-26", "post_read", "2125864646345653272")
    # Two connectors (two workers, or one restarted) each read the post, one also a second post.
    channel_quota_record(channel=channel, quota=_read(post))
    channel_quota_record(channel=channel, quota=_read(post, ("2026-11-26", "post_read", "2125864646345653273")))
    # The same post as an owned read is another price item, and on the next day another charge.
    channel_quota_record(channel=channel, quota=_read(("2026-11-26", "owned_read", post[2]), price=0.001))
    channel_quota_record(channel=channel, quota=_read(("2026-11-27", "post_read", post[2])))
    channel.refresh_from_db()
    assert (channel.requests_made, channel.cost_used) == (4, Decimal("0.0160"))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_records_of_the_same_resources_count_each_once():
    channel = ChannelFactory(network="x", config={"account_id": "1"})
    posts = [("2026-11-26", "post_read", str(2125864646345653000 + n)) for n in range(50)]
    start = threading.Barrier(4)
    errors: list[Exception] = []

    def record(order: list[tuple[str, str, str]]) -> None:
        try:
            start.wait()
            channel_quota_record(channel=channel, quota=_read(*order))
        except Exception as exc:  # a deadlock between the workers would land here
            errors.append(exc)
        finally:
            connection.close()

    # Four workers read the same 50 posts, two of them in the opposite order.
    orders = [posts, posts[::-1], posts, posts[::-1]]
    workers = [threading.Thread(target=record, args=(order,)) for order in orders]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    channel.refresh_from_db()
    assert (channel.requests_made, channel.cost_used) == (4, Decimal("0.2500"))
    assert BilledResource.objects.filter(channel=channel).count() == 50
