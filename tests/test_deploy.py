from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

MANAGE = Path(__file__).resolve().parent.parent / "manage.py"


def manage(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run manage.py with only `env` (plus PATH), never the developer's .env or test settings."""
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "SOCIALITSM_ENV_FILE": "",
        "SOCIALITSM_VAR_DIR": str(cwd / "var"),
    }
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        check=False,
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_checks(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "ALLOWED_HOSTS": "itsm.example.com",
            "SOCIALITSM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        },
        cwd=tmp_path,
    )

    assert (result.returncode, result.stdout.strip()) == (0, "System check identified no issues (0 silenced).")


def test_deploy_checks_fail_with_debug_on(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={
            "DEBUG": "1",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        },
        cwd=tmp_path,
    )

    assert result.returncode == 1
    assert "security.W018" in result.stderr


def test_check_without_secret_key_fails_naming_it(tmp_path):
    result = manage("check", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}, cwd=tmp_path)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: Set the SECRET_KEY environment variable"
    )
    assert not (tmp_path / "db.sqlite3").exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SOCIALITSM_REPLY_RETRY_HOURS", "-1"), ("SOCIALITSM_REPLY_MAX_BACKOFF", "0")],
)
def test_a_reply_retry_setting_out_of_range_fails_naming_it(tmp_path, variable, value):
    result = manage(
        "check",
        env={
            "SECRET_KEY": secrets.token_urlsafe(48),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            variable: value,
        },
        cwd=tmp_path,
    )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: SOCIALITSM_REPLY_RETRY_HOURS must be 0 or more, "
        "SOCIALITSM_REPLY_MAX_BACKOFF 1 or more"
    )
