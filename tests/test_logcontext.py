from __future__ import annotations

import json
import logging

import pytest

from socialitsm.logcontext import ContextFilter, JsonFormatter, log_context


def _line(message: str, **extra) -> dict:
    record = logging.LogRecord("socialitsm.x", logging.INFO, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    ContextFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


def test_json_line_carries_the_context():
    with log_context(request_id="req-1", channel="masto", incident="INC0001001"):
        line = _line("stored 3 posts")
    assert line["message"] == "stored 3 posts"
    assert (line["level"], line["logger"]) == ("INFO", "socialitsm.x")
    assert (line["request_id"], line["channel"], line["incident"]) == ("req-1", "masto", "INC0001001")
    assert "task_id" not in line


def test_context_ends_with_its_block():
    with log_context(channel="masto"):
        pass
    assert "channel" not in _line("later")


@pytest.mark.django_db
@pytest.mark.parametrize(("given", "kept"), [("abc-123", True), ("bad\nid", False), ("x" * 200, False), ("", False)])
def test_request_id_is_honoured_when_well_formed(client, given, kept):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=given)
    returned = response["X-Request-ID"]
    assert (returned == given) is kept
    assert returned and "\n" not in returned


@pytest.mark.django_db
def test_request_log_lines_carry_the_request_id(client, caplog, monkeypatch):
    from project import health

    def noisy():
        logging.getLogger("socialitsm.test").warning("checking")
        return True

    monkeypatch.setattr(health, "_database_up", noisy)
    with caplog.at_level(logging.WARNING):
        client.get("/healthz", HTTP_X_REQUEST_ID="trace-42")
    record = next(r for r in caplog.records if r.getMessage() == "checking")
    ContextFilter().filter(record)
    assert getattr(record, "request_id", None) == "trace-42"


def test_plain_text_lists_the_known_context():
    record = logging.LogRecord("socialitsm.x", logging.INFO, __file__, 1, "polled", None, None)
    with log_context(task_id="t-1", channel="masto"):
        ContextFilter().filter(record)
    formatted = logging.Formatter("%(levelname)s %(name)s%(context)s: %(message)s").format(record)
    assert formatted == "INFO socialitsm.x [task_id=t-1 channel=masto]: polled"


def test_json_line_has_no_plain_context_field():
    with log_context(channel="masto"):
        line = _line("x")
    assert "context" not in line


@pytest.mark.parametrize(
    ("error", "summary"),
    [
        (
            'value too long for type character varying(255)\nDETAIL:  Failing row contains (1, "my VPN is...")',
            "value too long for type character varying(255)",
        ),
        ("", "str"),
        ("x" * 300, "x" * 200),
    ],
)
def test_error_summary_keeps_the_first_line_only(error, summary):
    from socialitsm.logcontext import error_summary

    assert error_summary(error) == summary
