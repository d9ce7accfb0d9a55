from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
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


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What a production site is started with, plus `extra`."""
    return {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "itsm.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        **extra,
    }


def test_production_settings_pass_the_deploy_checks(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env=production_env(tmp_path, SOCIALITSM_ENCRYPTION_KEYS=Fernet.generate_key().decode()),
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


def test_deploy_checks_fail_without_an_encryption_key(tmp_path):
    result = manage(
        "check",
        "--deploy",
        env=production_env(tmp_path),
        cwd=tmp_path,
    )

    assert result.returncode == 1
    assert (
        "?: (socialitsm.E001) SOCIALITSM_ENCRYPTION_KEYS is empty: channel credentials and webhook secrets "
        "cannot be stored." in result.stderr
    )


def test_deploy_checks_fail_with_an_unusable_encryption_key(tmp_path):
    result = manage(
        "check",
        "--deploy",
        env=production_env(tmp_path, SOCIALITSM_ENCRYPTION_KEYS="not-a-fernet-key"),
        cwd=tmp_path,
    )

    assert result.returncode == 1
    assert "(socialitsm.E002) SOCIALITSM_ENCRYPTION_KEYS holds an invalid key" in result.stderr


def test_plain_check_does_not_ask_for_an_encryption_key(tmp_path):
    result = manage(
        "check",
        env={"SECRET_KEY": secrets.token_urlsafe(48), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"},
        cwd=tmp_path,
    )

    assert (result.returncode, result.stdout.strip()) == (0, "System check identified no issues (0 silenced).")


def test_beat_starts_on_a_fresh_checkout_without_var(tmp_path):
    """With PostgreSQL and Redis configured nothing else creates var/; beat's schedule lives there."""
    var = tmp_path / "var"
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "project", "beat", "--loglevel", "INFO"],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "SOCIALITSM_ENV_FILE": "",
            "SOCIALITSM_VAR_DIR": str(var),
            "SECRET_KEY": secrets.token_urlsafe(48),
            "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
            "CELERY_BROKER_URL": "memory://",
        },
        cwd=MANAGE.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and beat.poll() is None and not list(var.glob("celerybeat-schedule*")):
            time.sleep(0.2)
        time.sleep(1)
        running = beat.poll() is None
    finally:
        beat.terminate()
        output, _ = beat.communicate(timeout=30)

    assert running, output
    assert [path.name for path in var.glob("celerybeat-schedule*")], output
    assert "Errno" not in output
