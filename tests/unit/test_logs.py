"""Log formatting without an app: JSON and text lines, the ids they carry, RQ's level."""

from __future__ import annotations

import io
import json
import logging

import pytest

from blueprints.request_ids import request_id_from
from runtime.logs import (
    HANDLER_NAME,
    RQ_LOGGERS,
    configure_logging,
    current_request_id,
    job_context,
    rq_log_level,
)


@pytest.fixture
def restore_logging():
    """configure_logging changes process-wide state: put it back for the next test."""
    root, rq = logging.getLogger(), [logging.getLogger(name) for name in RQ_LOGGERS]
    saved = root.level, list(root.handlers), [logger.level for logger in rq]
    yield
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)
    root.setLevel(saved[0])
    for handler in saved[1]:
        if handler not in root.handlers:
            root.addHandler(handler)
    for logger, level in zip(rq, saved[2], strict=True):
        logger.setLevel(level)


def capture(log_format: str, log_level: str = "INFO") -> io.StringIO:
    stream = io.StringIO()
    configure_logging(log_level, log_format, stream)
    return stream


def test_json_lines_have_time_level_logger_message_and_the_ids(restore_logging):
    stream = capture("json")
    log = logging.getLogger("threadline.test")
    log.info('plain line with a "quote" and a\nnewline')
    token = current_request_id.set("req-1")
    try:
        log.warning("during a request: %s", "yes")
    finally:
        current_request_id.reset(token)
    with job_context("job-7"):
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("job failed")

    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # the newline inside the message did not split the record
    plain, request, job = (json.loads(line) for line in lines)
    assert set(plain) == {"time", "level", "logger", "message"}
    assert plain["level"] == "INFO" and plain["logger"] == "threadline.test"
    assert plain["message"] == 'plain line with a "quote" and a\nnewline'
    assert plain["time"].endswith("+00:00") and "T" in plain["time"]
    assert (request["request_id"], request["message"]) == ("req-1", "during a request: yes")
    assert "job_id" not in request
    assert job["job_id"] == "job-7" and "request_id" not in job
    assert job["level"] == "ERROR"
    assert "ValueError: boom" in job["exception"]


def test_text_lines_name_the_request_or_job(restore_logging):
    stream = capture("text")
    log = logging.getLogger("threadline.test")
    log.info("outside")
    with job_context("job-7"):
        log.info("inside")
    outside, inside = stream.getvalue().splitlines()
    assert outside.endswith(" INFO threadline.test: outside")
    assert inside.endswith(" INFO threadline.test [job_id=job-7]: inside")


def test_configuring_again_replaces_the_handler_instead_of_doubling_lines(restore_logging):
    capture("text")
    stream = capture("json")
    logging.getLogger("threadline.test").warning("once")
    ours = [h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME]
    assert len(ours) == 1
    assert len(stream.getvalue().splitlines()) == 1


@pytest.mark.parametrize(
    ("log_level", "rq_level"),
    [("DEBUG", "DEBUG"), ("INFO", "WARNING"), ("WARNING", "WARNING"), ("ERROR", "ERROR")],
)
def test_rq_is_quiet_unless_debugging(restore_logging, log_level, rq_level):
    assert rq_log_level(log_level) == rq_level
    stream = capture("text", log_level)
    for name in RQ_LOGGERS:
        assert logging.getLogger(name).level == logging.getLevelName(rq_level)
    logging.getLogger("rq.worker").info("*** Listening on default...")
    assert ("Listening" in stream.getvalue()) == (log_level == "DEBUG")


@pytest.mark.parametrize(
    "header",
    ["abc", "3f2c0a9e-1b7d-4c55-9a0e-6f1f2b9d8c11", "0a1b2c3d4e5f60718293a4b5c6d7e8", "a.b_c:d-e"],
)
def test_a_sane_incoming_request_id_is_kept(header):
    assert request_id_from(header) == header


@pytest.mark.parametrize(
    "header", [None, "", "has space", 'quote"', "line\nbreak", "x" * 129, "-leading", "ü"]
)
def test_anything_else_gets_a_new_request_id(header):
    new = request_id_from(header)
    assert new != header and len(new) == 32 and int(new, 16) >= 0
