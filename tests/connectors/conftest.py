from __future__ import annotations

import pytest

from socialitsm.connectors import bluesky, reddit


@pytest.fixture
def bluesky_sessions():
    """No Bluesky session is known before the test, and none is kept after it."""
    bluesky.sessions_forget()
    yield
    bluesky.sessions_forget()


@pytest.fixture
def reddit_tokens(public_dns):
    """No Reddit token is known before the test, and none is kept after it."""
    reddit._tokens.clear()
    yield
    reddit._tokens.clear()
