from __future__ import annotations

from collections.abc import Callable

import pytest

FIGURES: list[str] = []


@pytest.fixture
def figures() -> Callable[[str], None]:
    """Lines of counts shown at the end of the run, passed or not."""
    return FIGURES.append


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("fault tests")
        for line in FIGURES:
            terminalreporter.write_line(line)
