"""LOG_FORMAT=json end to end: web lines carry the request id (and X-Request-ID is echoed),
worker lines carry the job id, and an idle worker and scheduler say nothing at INFO."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from redis import Redis
from rq.registry import FinishedJobRegistry

from extensions import get_queue, get_redis
from runtime.logs import HANDLER_NAME
from tests.support.ingress_requests import RELAY_URL, basic_auth, inbound_rows, load_fixture
from tests.support.s3_server import free_port

ROOT = Path(__file__).resolve().parents[2]
PLAIN = load_fixture("plain-text.eml")
JOB_LINE = "a job says %s"


def log_from_a_job(word: str) -> str:
    """A job that logs, run by the workers below (they import it by name)."""
    logging.getLogger("tests.job").info(JOB_LINE, word)
    return word


@pytest.fixture
def app_config(app_config):
    return {**app_config, "LOG_FORMAT": "json"}


@pytest.fixture
def log_output(app):
    """What the app's log handler writes (to stderr in a real process), as parsed lines."""
    [handler] = [h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME]
    stream = io.StringIO()
    previous = handler.setStream(stream)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield lines
    handler.setStream(previous)


def post_relay(client, raw: bytes, **headers):
    return client.post(
        RELAY_URL, data=raw, content_type="message/rfc822", headers={**basic_auth(), **headers}
    )


# --- web -------------------------------------------------------------------------------------


def test_web_lines_are_json_with_the_incoming_request_id(client, log_output):
    response = post_relay(client, PLAIN, **{"X-Request-ID": "mta-4f2a9c"})

    assert response.status_code == 204
    assert response.headers["X-Request-ID"] == "mta-4f2a9c"
    [row] = inbound_rows()
    [line] = [entry for entry in log_output() if entry["logger"] == "ingress.receive"]
    assert line["message"].startswith(f"inbound {row.message_id} recorded as #{row.id}")
    assert line["level"] == "INFO"
    assert line["request_id"] == "mta-4f2a9c"
    assert "job_id" not in line
    assert set(line) == {"time", "level", "logger", "message", "request_id"}


def test_without_a_sane_header_a_new_id_is_made_logged_and_echoed(client, log_output):
    response = post_relay(client, PLAIN, **{"X-Request-ID": "not a token; DROP TABLE"})

    request_id = response.headers["X-Request-ID"]
    assert len(request_id) == 32 and request_id != "not a token; DROP TABLE"
    [line] = [entry for entry in log_output() if entry["logger"] == "ingress.receive"]
    assert line["request_id"] == request_id
    assert "DROP TABLE" not in json.dumps(log_output())

    again = client.get("/login")
    assert again.headers["X-Request-ID"] not in ("", request_id)  # one id per request


def test_an_unexpected_error_is_one_json_line_with_its_traceback_and_request_id(
    app, client, log_output
):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def explode():
        logging.getLogger("tests.view").warning("about to fail")
        raise RuntimeError("secret internals")

    app.add_url_rule("/explode", "explode", explode)
    response = client.get("/explode", headers={"X-Request-ID": "req-500"})

    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "req-500"
    warning, error = [entry for entry in log_output() if entry["logger"] in ("tests.view", "app")]
    assert (warning["message"], warning["request_id"]) == ("about to fail", "req-500")
    assert error["level"] == "ERROR" and error["request_id"] == "req-500"
    assert error["message"] == "unhandled error on GET /explode"
    assert "RuntimeError: secret internals" in error["exception"]


def test_lines_after_the_request_carry_no_request_id(app, client, log_output):
    client.get("/login", headers={"X-Request-ID": "req-done"})
    logging.getLogger("tests.after").warning("outside any request")
    [line] = [entry for entry in log_output() if entry["logger"] == "tests.after"]
    assert "request_id" not in line


def process_env(app_config: dict, **changes: str) -> dict[str, str]:
    """The test app's settings as a real process gets them: environment, no env file."""
    env = dict(os.environ)
    env.update({k: str(v) for k, v in app_config.items() if k != "TESTING"})
    env.update(ENV_FILE=os.devnull, LOG_LEVEL="INFO", LOG_FORMAT="json", **changes)
    return env


def get(url: str, headers: dict[str, str]):
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


def test_gunicorn_lines_are_json_and_its_access_log_names_the_request(app, app_config, tmp_path):
    """The Procfile's web command: gunicorn's own lines and its access log (written after the
    request ended, to stdout) are JSON too, the access line with the request id."""
    port = free_port()
    output = tmp_path / "web.log"
    with open(output, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
            + ["--access-logfile", "-", "--preload", "--no-control-socket", "wsgi:app"],
            cwd=ROOT,
            env=process_env(app_config),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, headers = get(f"http://127.0.0.1:{port}/login", {"X-Request-ID": "lb-7f3e"})
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not answer:\n{output.read_text()}")
                time.sleep(0.2)
        missing, missing_headers = get(f"http://127.0.0.1:{port}/no-such-page", {})
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    assert (status, headers["X-Request-ID"]) == (200, "lb-7f3e")
    assert missing == 404
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    login, not_found = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert '"GET /login HTTP/1.1" 200' in login["message"]
    assert login["request_id"] == "lb-7f3e"
    assert '"GET /no-such-page HTTP/1.1" 404' in not_found["message"]
    assert not_found["request_id"] == missing_headers["X-Request-ID"]
    assert any(line["logger"] == "gunicorn.error" for line in lines)  # "Booting worker"...


# --- worker ----------------------------------------------------------------------------------


def test_worker_lines_carry_the_job_id(app, log_output):
    from worker import build_worker, rq_logging_level

    job = get_queue("default").enqueue(log_from_a_job, "hello")
    worker = build_worker(app, simple=True)
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        contextvars.Context().run(
            worker.work, burst=True, logging_level=rq_logging_level(app), with_scheduler=False
        )
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])

    lines = log_output()
    [line] = [entry for entry in lines if entry["logger"] == "tests.job"]
    assert (line["message"], line["job_id"]) == ("a job says hello", job.id)
    assert "request_id" not in line
    assert [entry for entry in lines if entry["logger"].startswith("rq")] == []  # RQ: quiet


def test_the_periodic_jobs_log_nothing_at_info_when_there_is_nothing_to_do(app, caplog):
    """Every job of jobs/schedule.py once, hourly ones included, on an idle installation."""
    from worker import build_cron_scheduler

    caplog.set_level(logging.INFO)
    scheduler = build_cron_scheduler(app)  # loading the schedule is quiet too
    for cron_job in scheduler.get_jobs():
        cron_job.func(*(cron_job.args or ()), **(cron_job.kwargs or {}))

    assert len(scheduler.get_jobs()) == 9
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []


def test_an_idle_worker_and_scheduler_say_nothing_at_info(app, app_config, redis_server, tmp_path):
    """`python worker.py` and `python worker.py --cron` as `make run` starts them, LOG_LEVEL=INFO:
    the scheduler enqueues its interval jobs at once, the worker runs them (and one job of
    ours, in a forked work horse) and goes back to waiting. One round is a minute's worth: the
    same jobs come again every 30/60 s. Only our job's line may appear, with its job id."""
    env = process_env(app_config)
    ours = get_queue("default").enqueue(log_from_a_job, "from a work horse")
    connection = Redis.from_url(redis_server)
    finished = FinishedJobRegistry("default", connection=connection)
    outputs = [tmp_path / "worker.log", tmp_path / "scheduler.log"]
    procs = []
    for flags, output in zip(([], ["--cron"]), outputs, strict=True):
        with open(output, "wb") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "worker.py", *flags],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        deadline = time.monotonic() + 60
        # Ours + recover_inbound, recover_outgoing, wake_snoozed,
        # enqueue_due_imap_polls: the scheduler's first round.
        while finished.count < 5:
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                logs = "\n".join(path.read_text() for path in outputs)
                pytest.fail(f"the jobs did not run ({finished.count} finished):\n{logs}")
            time.sleep(0.1)
        time.sleep(2)  # back in the idle loop: listening, heartbeats, the scheduler's ticks
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        connection.close()

    worker_lines, scheduler_lines = (
        [json.loads(line) for line in path.read_text().splitlines()] for path in outputs
    )
    assert scheduler_lines == []
    [job_line] = worker_lines
    assert job_line["message"] == "a job says from a work horse"
    assert job_line["job_id"] == ours.id
    assert get_redis().ping()
