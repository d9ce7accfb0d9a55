from __future__ import annotations

import pytest

from socialitsm.models import ItsmConnection


@pytest.fixture
def connection() -> ItsmConnection:
    """A connection to the in-memory ITSM suite."""
    return ItsmConnection.objects.create(name="Suite", slug="suite", kind="fake", base_url="https://suite.example.com")
