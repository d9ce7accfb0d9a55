from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent


def test_socialitsm_and_project_pass_mypy() -> None:
    # About 17 s from a cold cache on two cores, under 2 s warm (.mypy_cache).
    stdout, stderr, status = api.run(
        ["--config-file", str(ROOT / "mypy.ini"), str(ROOT / "socialitsm"), str(ROOT / "project")]
    )

    assert (status, stderr) == (0, ""), stdout
