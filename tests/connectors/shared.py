"""Accounts and helpers more than one connector test module uses: the Bluesky account of the
recorded fixtures and its channel, the Reddit endpoints and channel, and form bodies read back."""

from __future__ import annotations

from urllib.parse import parse_qs

from socialitsm.models import Channel

from ..factories import ChannelFactory

# -- Bluesky ---------------------------------------------------------------------------------------

ENTRYWAY = "https://bsky.social"
PDS = "https://morel.us-east.host.bsky.network"
OUR_DID = "did:plc:acmesupport7x2k3q4r5s6t"
ACCESS = "eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJFUzI1NksifQ.access-1"
JANE = "did:plc:jane4abcdefghijklmnop"
JANE_POST = f"at://{JANE}/app.bsky.feed.post/3lbc2xkqz7s2a"


def bluesky_channel() -> Channel:
    """Our account of the fixtures, signed in through the entryway with an app password."""
    return ChannelFactory(
        name="Acme on Bluesky",
        slug="acme-bluesky",
        network="bluesky",
        base_url="",
        handle="@acmesupport.bsky.social",
        credentials={"identifier": "acmesupport.bsky.social", "password": "abcd-efgh-ijkl-mnop"},
        config={"account_id": OUR_DID},
    )


# -- Reddit ----------------------------------------------------------------------------------------

API = "https://oauth.reddit.com"
TOKEN = "https://www.reddit.com/api/v1/access_token"
T0 = 1795680603.0  # created_utc of the fixture post, 2026-11-26T08:10:03Z


def reddit_channel(*, include_comments: bool, password: str) -> Channel:
    """u/acme_support listening in r/sysadmin, signed in as a script app."""
    return ChannelFactory(
        network="reddit",
        handle="u/acme_support",
        config={"subreddits": ["sysadmin"], "include_comments": include_comments, "account_id": "acme_support"},
        credentials={
            "client_id": "cl-id",
            "client_secret": "cl-secret",
            "username": "acme_support",
            "password": password,
        },
    )


def form(call) -> dict[str, str]:
    """The form body a mocked call was sent, one value per field."""
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}
