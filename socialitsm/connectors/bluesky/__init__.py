"""Bluesky (AT Protocol): one module per concern; `BlueskyConnector` is what the registry loads."""

from .connector import REWIND_US, BlueskyConnector
from .richtext import graphemes
from .session import sessions_forget

__all__ = ["REWIND_US", "BlueskyConnector", "graphemes", "sessions_forget"]
