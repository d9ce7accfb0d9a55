"""pyproject.toml's ranges admit the exact versions requirements.txt pins, and the version is
written once."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import socialitsm

REPO = Path(__file__).resolve().parents[2]


def pins() -> dict[str, str]:
    found = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            found[canonicalize_name(requirement.name)] = spec.version
    return found


def test_declared_ranges_admit_the_pinned_versions():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pinned = pins()
    declared = list(project["dependencies"]) + [
        line for extra in project["optional-dependencies"].values() for line in extra
    ]
    assert len(declared) > 15
    for line in declared:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is declared but requirements.txt does not pin it"
        assert requirement.specifier.contains(pinned[name]), f"{line} refuses the pinned {pinned[name]}"


def test_version_is_read_from_the_package():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "socialitsm.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", socialitsm.__version__)
    assert f"## {socialitsm.__version__} " in (REPO / "CHANGELOG.md").read_text()
