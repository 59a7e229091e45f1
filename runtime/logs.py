"""Log lines of every process: text for a terminal, or one JSON object per line
(LOG_FORMAT=json) for a log collector, each stamped with the request id (web) or the RQ job
id (worker) it was written under.

RQ logs its start-up, every job it runs and every job the cron scheduler enqueues at INFO:
about 30 lines a minute from a worker and a scheduler with nothing to do. Its loggers stay at
WARNING (failures still show) unless LOG_LEVEL=DEBUG.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"
HANDLER_NAME = "threadline"
CONTEXT_FIELDS = ("request_id", "job_id")
# "rq" for its children; the others get a level of their own from RQ (rq.worker on import,
# rq.worker/rq.job/rq.scheduler again from Worker.work's logging_level, which worker.py sets).
RQ_LOGGERS = ("rq", "rq.worker", "rq.job", "rq.scheduler", "rq.cron")
# gunicorn's own loggers do not propagate to the root; under LOG_FORMAT=json their
# handlers get our formatter too, so the access log is JSON like everything else.
GUNICORN_LOGGERS = ("gunicorn.error", "gunicorn.access")

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
current_job_id: ContextVar[str | None] = ContextVar("current_job_id", default=None)


class ContextFilter(logging.Filter):
    """Stamps each record with the request id and job id it was written under."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id.get() or _access_log_request_id(record)
        if getattr(record, "job_id", None) is None:
            record.job_id = current_job_id.get()
        return True


def _access_log_request_id(record: logging.LogRecord) -> str | None:
    """gunicorn writes its access line after the request ended; the id is in its atoms, as
    the response header we echoed."""
    if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
        value = record.args.get("{x-request-id}o")
        return value if isinstance(value, str) and value != "-" else None
    return None


class TextFormatter(logging.Formatter):
    """The classic line, with `[request_id=…]` or `[job_id=…]` after the logger's name."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        ids = [f"{name}={value}" for name in CONTEXT_FIELDS if (value := _field(record, name))]
        record.context = f" [{' '.join(ids)}]" if ids else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id / job_id when there
    is one, and the traceback as `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            if value := _field(record, name):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)  # escapes newlines: one line per record


def _field(record: logging.LogRecord, name: str) -> str | None:
    value = getattr(record, name, None)
    return str(value) if value else None


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def rq_log_level(log_level: str) -> str:
    """RQ's loggers: as chatty as asked for with DEBUG, otherwise warnings and worse."""
    if log_level == "DEBUG":
        return "DEBUG"
    return log_level if logging.getLevelName(log_level) > logging.WARNING else "WARNING"


def configure_logging(
    log_level: str, log_format: str, stream: TextIO | None = None
) -> logging.Handler:
    """Send every logger's records through one handler on the root logger (replacing the one
    an earlier call installed, so building apps again does not double the lines)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(log_level)
    for name in RQ_LOGGERS:
        logging.getLogger(name).setLevel(rq_log_level(log_level))
    if log_format == "json":
        for name in GUNICORN_LOGGERS:
            for gunicorn_handler in logging.getLogger(name).handlers:
                gunicorn_handler.setFormatter(handler.formatter)
                if not any(isinstance(f, ContextFilter) for f in gunicorn_handler.filters):
                    gunicorn_handler.addFilter(ContextFilter())
    return handler


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Every line logged while the job runs (in the worker and its work horse) names it."""
    token = current_job_id.set(job_id)
    try:
        yield
    finally:
        current_job_id.reset(token)
