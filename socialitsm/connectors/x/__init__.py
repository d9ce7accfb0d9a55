"""X (API v2): one module per concern; `XConnector` is what the registry loads."""

from .connector import XConnector, bounded_lines
from .oauth import oauth1_header
from .parse import dm_to_inbound, plain_text, tweet_to_inbound
from .text import contains_url, weighted_length

__all__ = [
    "XConnector",
    "bounded_lines",
    "contains_url",
    "dm_to_inbound",
    "oauth1_header",
    "plain_text",
    "tweet_to_inbound",
    "weighted_length",
]
