"""Reddit: one module per concern; `RedditConnector` is what the registry loads."""

from .connector import RedditConnector, _tokens, markdown_escape, markdown_to_text

__all__ = ["RedditConnector", "_tokens", "markdown_escape", "markdown_to_text"]
