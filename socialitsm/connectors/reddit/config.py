"""The settings a Reddit channel keeps in its config."""

from __future__ import annotations

from dataclasses import dataclass

from ..base import ChannelConfig


@dataclass(frozen=True, slots=True)
class RedditConfig(ChannelConfig):
    """See the Reddit connector's module docstring for what each key does."""

    subreddits: tuple[str, ...] = ()
    include_comments: bool = True
    user_agent: str = ""
    max_pages: int = 5
    overlap_seconds: int = 600
    dm_subject: str = ""
    # Where a status post about a major incident goes; empty: the account's own profile.
    status_subreddit: str = ""
