"""Reddit: one module per concern; `RedditConnector` is what the registry loads."""

from .connector import RedditConnector, _tokens
from .markdown import markdown_escape, markdown_to_text
from .parse import matches, query_terms, thing_to_inbound

__all__ = [
    "RedditConnector",
    "_tokens",
    "markdown_escape",
    "markdown_to_text",
    "matches",
    "query_terms",
    "thing_to_inbound",
]
