from __future__ import annotations

import re
import stat
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from socialitsm.management.commands import socialitsm_demo

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _quick_setup(monkeypatch):
    """The full demo set-up (covered by test_demo.py) takes half a minute; the printout is what
    these tests look at."""
    monkeypatch.setattr(
        socialitsm_demo,
        "demo_setup",
        lambda **kwargs: socialitsm_demo.DemoLogin("demo.agent", "pw-Zx81", "whsec-1", 30),
    )


def test_demo_writes_its_login_to_a_file_only_its_owner_can_read(tmp_path):
    login_file = tmp_path / "var" / "demo-login.txt"
    out = StringIO()

    with override_settings(SOCIALITSM_DEMO=True):
        call_command("socialitsm_demo", "--login-file", str(login_file), stdout=out)

    written = login_file.read_text()
    assert re.search(r"^  Password:\s+pw-Zx81$", written, re.MULTILINE)
    assert written.strip() == out.getvalue().strip()
    assert "API token:        python manage.py drf_create_token demo.agent" in written
    assert stat.S_IMODE(login_file.stat().st_mode) == 0o600


def test_demo_writes_no_file_unless_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with override_settings(SOCIALITSM_DEMO=True):
        call_command("socialitsm_demo", stdout=StringIO())

    assert list(tmp_path.iterdir()) == []


def test_make_run_prints_the_login_again_after_the_processes_start():
    makefile = (ROOT / "Makefile").read_text()
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)

    assert "socialitsm_demo --url http://127.0.0.1:$(PORT)/ --login-file var/demo-login.txt" in makefile
    assert procfile["login"].startswith("sleep 8; test -f var/demo-login.txt && cat var/demo-login.txt")
    # honcho stops every process when one exits: the printer must stay up.
    assert procfile["login"].endswith("exec tail -f /dev/null")
