"""The wheel, installed into a fresh Django project as its own docs say, works there.

Builds the wheel from a copy of the package, makes a project with `django-admin startproject`
and a custom user model (email as the login, no username field), installs the wheel into a
virtualenv that holds only what the wheel declares, migrates (SQLite), and runs a smoke
scenario (tests/package/host/smoke.py) with SocialITSM mounted under /itsm/social/.

The virtualenv's dependencies take minutes to download and unpack, so it is kept between runs
in SOCIALITSM_PACKAGE_CACHE (default ~/.cache/socialitsm/package-test), keyed by the wheel's
declared requirements and the Python version: a changed requirement builds a new one. Each run
reinstalls the freshly built wheel into it and runs `pip check`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOST = Path(__file__).resolve().parent / "host"
PREFIX = "/itsm/social/"

pytestmark = pytest.mark.package


# This repository's own settings and services must not reach the host project.
OURS = ("DJANGO_", "SOCIALITSM_", "DATABASE_URL", "CELERY_", "CACHE_URL", "PYTHONPATH", "SECRET_KEY")


def run(*args: str | Path, cwd: Path | None = None, timeout: int = 300, env: dict[str, str] | None = None) -> str:
    base = {name: value for name, value in os.environ.items() if not name.startswith(OURS)}
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, (
        f"{args} exited {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout


def build_wheel(tmp: Path) -> Path:
    """From a copy holding only what pyproject.toml packages, so the worktree stays clean."""
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "CHANGELOG.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "socialitsm", source / "socialitsm", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp / "dist", source, timeout=600)
    (wheel,) = (tmp / "dist").glob("socialitsm-*.whl")
    return wheel


def requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = (name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    return sorted(line for line in lines if line.startswith("Requires-Dist:") and "extra ==" not in line)


CACHE = Path(os.environ.get("SOCIALITSM_PACKAGE_CACHE", Path.home() / ".cache" / "socialitsm" / "package-test"))


@pytest.fixture
def cache() -> Iterator[Path]:
    """The virtualenvs' folder, held by this test alone: another run (another checkout on the
    same machine) would reinstall the wheel under it."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield CACHE


def host_virtualenv(wheel: Path, cache: Path) -> Path:
    """A virtualenv with the wheel's dependencies and nothing else, then this wheel."""
    key = hashlib.sha256("\n".join([sys.version, *requirements(wheel)]).encode()).hexdigest()[:16]
    venv = cache / f"venv-{key}"
    python = venv / "bin" / "python"
    pip = (sys.executable, "-m", "pip", "--python", python)
    if not (venv / "complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        run(sys.executable, "-m", "venv", "--without-pip", venv)
        run(*pip, "install", "--quiet", wheel, timeout=1500)
        (venv / "complete").write_text("\n".join(requirements(wheel)))
    run(*pip, "install", "--quiet", "--no-deps", "--force-reinstall", wheel, timeout=600)
    run(*pip, "check")
    return venv


def host_project(venv: Path, where: Path) -> Path:
    where.mkdir()
    run(venv / "bin" / "django-admin", "startproject", "hostsite", where)
    shutil.copytree(HOST / "accounts", where / "accounts", ignore=shutil.ignore_patterns("__pycache__"))
    site = where / "hostsite"
    settings = site / "settings.py"
    settings.write_text(settings.read_text() + "\n" + (HOST / "settings_extra.py").read_text())
    shutil.copy2(HOST / "urls.py", site / "urls.py")
    shutil.copy2(HOST / "celery_app.py", site / "celery.py")
    (site / "__init__.py").write_text("from .celery import app as celery_app\n\n__all__ = ['celery_app']\n")
    shutil.copy2(HOST / "smoke.py", where / "smoke.py")
    return where


def test_wheel_runs_in_a_fresh_host_project(tmp_path: Path, cache: Path) -> None:
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {
        "socialitsm/templates/socialitsm/base.html",
        "socialitsm/static/socialitsm/app.css",
        "socialitsm/migrations/0001_initial.py",
        "socialitsm/classify/model.npz",
        "socialitsm/classify/data/minilm_static.npz",
        "socialitsm/demo/posts.jsonl",
    } <= names
    assert not [name for name in names if name.split("/")[0] in {"project", "tests", "bench", "scripts"}]

    venv = host_virtualenv(wheel, cache)
    project = host_project(venv, tmp_path / "host")
    python = venv / "bin" / "python"
    clean = {"DJANGO_SETTINGS_MODULE": "hostsite.settings"}
    run(python, "manage.py", "makemigrations", "accounts", cwd=project, env=clean)
    run(python, "manage.py", "migrate", "--noinput", cwd=project, env=clean)
    output = run(python, "smoke.py", cwd=project, env=clean, timeout=300)
    (line,) = (line for line in output.splitlines() if line.startswith("SMOKE "))
    seen = json.loads(line.removeprefix("SMOKE "))

    assert seen["module"].startswith(str(venv)), "the installed wheel, not this checkout, must be imported"
    assert seen["checks"] == []
    assert seen["ingest_url"] == f"{PREFIX}api/v1/ingest/desk-hook/"
    assert seen["unsigned_status"] == 401
    assert (seen["ingest_status"], seen["ingest_answer"]) == (202, {"received": 1, "created": 1, "duplicates": 0})
    assert len(seen["incidents"]) == 1
    number = seen["incidents"][0]

    # The host sets no REST_FRAMEWORK defaults (DRF's own allow anyone): the API still refuses.
    assert seen["anonymous_api_status"] == 401
    assert seen["anonymous_queue_status"] == 302
    assert seen["agent_login"] is True
    assert (seen["queue_url"], seen["queue_status"], seen["queue_shows_incident"]) == (PREFIX, 200, True)
    own_pages = [link for link in seen["queue_links"] if not link.startswith(("/static/", "/accounts/", "/admin/"))]
    assert own_pages and all(link.startswith(PREFIX) for link in own_pages), seen["queue_links"]
    assert f"{PREFIX}incidents/{number}/" in seen["queue_links"]
    assert "/static/socialitsm/app.css" in seen["queue_links"]
    assert (seen["incident_page_status"], seen["incident_page_offers_agent"]) == (200, True)
    assert (seen["api_status"], seen["api_numbers"]) == (200, [number])
    assert seen["api_incident_url"] == f"http://testserver{PREFIX}incidents/{number}/"
    assert seen["assign_status"] == 200
    assert seen["assignee"]["username"] == "agent@example.com"
    assert (seen["sla_report_status"], seen["sla_dashboard_status"], seen["agent_sla_report_status"]) == (200, 200, 403)

    # Unapplying the shipped defaults looks for the group's members through the host's model.
    run(python, "manage.py", "migrate", "--noinput", "socialitsm", "0010_ingest_quarantine", cwd=project, env=clean)

    assert seen["static_found"] is True
    assert {"socialitsm.tasks.sla_sweep_task", "socialitsm.tasks.reply_send_task"} <= set(seen["tasks"])
    assert set(seen["beat"]) <= set(seen["tasks"]) and "socialitsm.tasks.sla_sweep_task" in seen["beat"]
