"""`flask doctor` against real services: Redis, SQLite, an S3 server (SeaweedFS), an SMTP server
with AUTH."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from minio import Minio
from redis import Redis
from rq import Worker
from rq.cron_scheduler_registry import get_keys as cron_scheduler_keys

from app import create_app
from config import PROJECT_ROOT
from runtime.file_modes import sqlite_path
from services.health_servers import describe_database
from tests.support.smtp_server import SMTPServer, running_smtp_server

SMTP_USER = "mailer@example.com"
SMTP_PASSWORD = "smtp-password-for-doctor"
DB_PASSWORD = "db-password-never-shown"
INBOUND_DOMAIN = "reply.example.com"
FLASK = PROJECT_ROOT / ".venv" / "bin" / "flask"
_LINE = re.compile(r"^(OK|WARN|FAIL)\s+(\S+(?: \S+)*)\s{2,}(.*)$")


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: bound, read, released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse(output: str) -> dict[str, tuple[str, str]]:
    """{check name: (state, detail)} from doctor's report."""
    checks = {}
    for line in output.splitlines():
        match = _LINE.match(line)
        if match:
            checks[match.group(2)] = (match.group(1), match.group(3))
    return checks


def smtp_settings(server: SMTPServer, password: str = SMTP_PASSWORD) -> dict:
    return {
        "SMTP_ADDRESS": server.host,
        "SMTP_PORT": server.port,
        "SMTP_USERNAME": SMTP_USER,
        "SMTP_PASSWORD": password,
        "SMTP_AUTHENTICATION": "plain",
    }


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with running_smtp_server(SMTP_USER, SMTP_PASSWORD) as server:
        yield server


@pytest.fixture
def app_config(app_config, smtp) -> dict:
    """A healthy configuration: real Redis, local storage, SMTP with working AUTH."""
    return {**app_config, **smtp_settings(smtp), "MAILER_INBOUND_EMAIL_DOMAIN": INBOUND_DOMAIN}


def owner_only_database(database_url: str) -> None:
    """The suite's SQLite database is made under pytest's umask; a healthy run expects the
    owner-only files `make run` creates (tests/integration/test_file_modes.py checks those)."""
    path = sqlite_path(database_url)
    for name in (path, f"{path}-wal", f"{path}-shm") if path else ():
        if os.path.exists(name):
            os.chmod(name, 0o600)


def run_doctor(config: dict):
    """Build an app of our own (not the `app` fixture) and run doctor through Flask's runner."""
    app = create_app(config)
    with app.app_context():  # so no other active app context is used instead
        result = app.test_cli_runner().invoke(args=["doctor"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result, parse(result.output)


# --- healthy ---------------------------------------------------------------------------------


def test_healthy_configuration_passes(runner, smtp, app_config):
    owner_only_database(app_config["DATABASE_URL"])
    result = runner.invoke(args=["doctor"])
    assert result.exit_code == 0, result.output
    checks = parse(result.output)
    assert {name: state for name, (state, _) in checks.items()} == {
        "configuration": "OK",
        "database": "OK",
        "redis": "OK",
        "workers": "WARN",  # nothing runs `python worker.py` in this test
        "scheduler": "WARN",
        "queues": "OK",
        "inbound mail": "OK",
        "replies": "OK",
        "refused posts": "OK",
        "storage": "OK",
        "file modes": "OK",
        "smtp": "OK",
        "ingress relay": "OK",
        "inbound domain": "OK",
    }
    expected_db = describe_database(app_config["DATABASE_URL"])  # SQLite, or PostgreSQL in CI
    assert expected_db.split()[0] in ("SQLite", "PostgreSQL")
    versions = (PROJECT_ROOT / "migrations" / "versions").glob("0*.py")
    head = max(p.name.split("_")[0] for p in versions)
    assert checks["database"][1] == f"{expected_db}, schema {head}"
    assert checks["storage"][1] == f"local disk {app_config['INSTANCE_PATH']}/storage"
    database = ", database" if expected_db.startswith("SQLite") else ""
    assert checks["file modes"][1] == f"owner-only: instance folder{database}, stored mail"
    assert checks["smtp"][1] == f"{smtp.address}, no TLS, signed in as {SMTP_USER}"
    assert checks["ingress relay"][1] == (
        "http://localhost/rails/action_mailbox/relay/inbound_emails (password set)"
    )
    assert checks["inbound domain"][1] == f"reply+<token>@{INBOUND_DOMAIN}"
    assert "fix: run: python worker.py" in result.output
    assert "Everything Threadline needs is reachable." in result.output
    assert smtp.logins == [SMTP_USER]  # the server really accepted our AUTH
    assert SMTP_PASSWORD not in result.output


def s3_config(app_config: dict, s3: dict, bucket: str | None = None, **changes) -> dict:
    return {
        **app_config,
        "STORAGE_BACKEND": "minio",
        "MINIO_ENDPOINT": s3["endpoint"],
        "MINIO_ACCESS_KEY": s3["access_key"],
        "MINIO_SECRET_KEY": s3["secret_key"],
        "MINIO_BUCKET": bucket or s3["bucket"],
        **changes,
    }


def test_healthy_s3_storage_names_the_endpoint(app_config, s3_server):
    bucket = f"doctor-{uuid.uuid4().hex[:12]}"  # its own: the session's bucket is shared
    result, checks = run_doctor(s3_config(app_config, s3_server, bucket))
    client = Minio(
        s3_server["endpoint"],
        access_key=s3_server["access_key"],
        secret_key=s3_server["secret_key"],
        secure=False,
    )
    leftovers = list(client.list_objects(bucket, recursive=True))
    assert result.exit_code == 0, result.output
    assert checks["storage"] == ("OK", f"S3 bucket {bucket} at http://{s3_server['endpoint']}")
    assert leftovers == []  # the probe object was written, read back and deleted


def test_healthy_subprocess_with_a_real_worker_and_scheduler(
    app, app_config, redis_server, tmp_path
):
    """`flask doctor` as an operator runs it, with `python worker.py` (+ --cron) running.

    `app` is requested for its teardown, which flushes whatever the workers left in Redis.
    """
    env = {k: v for k, v in os.environ.items()}
    env.update({k: str(v) for k, v in app_config.items() if k != "TESTING"})
    env["ENV_FILE"] = os.devnull
    owner_only_database(app_config["DATABASE_URL"])
    connection = Redis.from_url(redis_server)
    log_path = tmp_path / "workers.log"
    procs = []
    with open(log_path, "wb") as log:
        for flags in ([], ["--cron"]):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "worker.py", *flags],
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        deadline = time.monotonic() + 30
        while not (Worker.all(connection=connection) and cron_scheduler_keys(connection)):
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                pytest.fail(f"worker or scheduler did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        result = subprocess.run(
            [str(FLASK), "--app", "app", "doctor"],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        connection.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    checks = parse(result.stdout)
    assert len(checks) == 14, result.stdout
    assert {state for state, _ in checks.values()} == {"OK"}, result.stdout
    assert checks["workers"][1] == "1 worker(s) listening"
    # each live worker on a line of its own: name, host, pid, state, heartbeat age
    host = re.escape(socket.gethostname())
    assert re.search(
        rf"^\s+\w+ on {host} pid {procs[0].pid}: \w+, heartbeat \d+ s ago$",
        result.stdout,
        re.M,
    ), result.stdout
    assert checks["queues"][1] == (
        "waiting: default 0, inbound 0, outbound 0, low 0; failed jobs: 0"
    )
    assert checks["inbound mail"][1] == "none pending"
    assert checks["scheduler"][1] == "1 cron scheduler(s) running"
    assert "Everything Threadline needs is reachable." in result.stdout


# --- broken: each problem names the exact place tried, and doctor exits non-zero -------------


def test_unreachable_postgres_names_host_and_port_but_not_the_password(app_config):
    port = closed_port()
    # The database is down, so the `app` fixture (which cleans tables) cannot be used here.
    result, checks = run_doctor(
        {**app_config, "DATABASE_URL": f"postgresql://threadline:{DB_PASSWORD}@127.0.0.1:{port}/x"}
    )
    assert result.exit_code == 1, result.output
    state, detail = checks["database"]
    assert state == "FAIL"
    assert detail.startswith(f"cannot connect to PostgreSQL 127.0.0.1:{port}/x: ")
    assert "Connection refused" in detail
    assert "fix: check DATABASE_URL" in result.output
    assert DB_PASSWORD not in result.output
    # One broken service does not stop the other checks.
    assert checks["redis"][0] == checks["storage"][0] == checks["smtp"][0] == "OK"
    assert "1 problem(s): database." in result.output


def test_unreachable_redis_names_host_and_port(app_config):
    port = closed_port()
    result, checks = run_doctor({**app_config, "REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    assert result.exit_code == 1, result.output
    state, detail = checks["redis"]
    assert state == "FAIL"
    assert detail.startswith(f"cannot connect to Redis at 127.0.0.1:{port}/0: ")
    assert "Connection refused" in detail
    assert "fix: check REDIS_URL" in result.output
    assert checks["workers"] == ("WARN", "not checked: Redis is unreachable")
    assert "1 problem(s): redis." in result.output


def test_unreachable_s3_names_the_endpoint(app_config):
    port = closed_port()
    result, checks = run_doctor(
        {
            **app_config,
            "MINIO_ENDPOINT": f"127.0.0.1:{port}",
            "MINIO_ACCESS_KEY": "doctor-access",
            "MINIO_SECRET_KEY": "doctor-secret-never-shown",
        }
    )
    assert result.exit_code == 1, result.output
    state, detail = checks["storage"]
    assert state == "FAIL"
    assert f"http://127.0.0.1:{port}" in detail
    assert "Connection refused" in detail
    assert "fix: check STORAGE_BACKEND and the MINIO_* settings" in result.output
    assert "doctor-secret-never-shown" not in result.output
    assert "1 problem(s): storage." in result.output


@pytest.mark.parametrize(
    ("credentials", "servers_words"),
    [
        (
            {"MINIO_SECRET_KEY": "not-the-s3-secret"},
            "SignatureDoesNotMatch: The request signature we calculated does not match",
        ),
        (
            {"MINIO_ACCESS_KEY": "NOT-A-KEY", "MINIO_SECRET_KEY": "not-the-s3-secret"},
            "InvalidAccessKeyId: The access key ID you provided does not exist",
        ),
    ],
    ids=["wrong secret", "wrong access key"],
)
def test_refused_s3_credentials_show_the_servers_words(
    app_config, s3_server, credentials, servers_words
):
    result, checks = run_doctor(s3_config(app_config, s3_server, **credentials))
    assert result.exit_code == 1, result.output
    state, detail = checks["storage"]
    assert state == "FAIL"
    assert f"S3 storage at http://{s3_server['endpoint']} refused the request ({servers_words}" in (
        detail
    )
    assert "fix: check STORAGE_BACKEND and the MINIO_* settings" in result.output
    assert "not-the-s3-secret" not in result.output
    assert "1 problem(s): storage." in result.output


def test_wrong_smtp_password_shows_the_servers_words(app_config, smtp):
    result, checks = run_doctor({**app_config, **smtp_settings(smtp, "not-the-password")})
    assert result.exit_code == 1, result.output
    assert checks["smtp"] == (
        "FAIL",
        f"{smtp.address} refused the login: 535 5.7.8 Authentication credentials invalid",
    )
    assert "fix: check SMTP_USERNAME/SMTP_PASSWORD" in result.output
    assert "not-the-password" not in result.output
    assert smtp.logins == []
    assert [user for _, user in smtp.failed_logins][:1] == [SMTP_USER]
    assert "1 problem(s): smtp." in result.output


def test_closed_smtp_port_names_host_and_port(app_config):
    port = closed_port()
    result, checks = run_doctor({**app_config, "SMTP_ADDRESS": "127.0.0.1", "SMTP_PORT": port})
    assert result.exit_code == 1, result.output
    state, detail = checks["smtp"]
    assert state == "FAIL"
    assert detail.startswith(f"cannot talk to 127.0.0.1:{port}: ")
    assert "Connection refused" in detail
    assert "fix: check SMTP_ADDRESS, SMTP_PORT" in result.output


def test_every_broken_service_is_reported_in_one_run(app_config):
    ports = [closed_port() for _ in range(3)]
    result, checks = run_doctor(
        {
            **app_config,
            "DATABASE_URL": f"postgresql://u:{DB_PASSWORD}@127.0.0.1:{ports[0]}/x",
            "REDIS_URL": f"redis://127.0.0.1:{ports[1]}/0",
            "SMTP_ADDRESS": "127.0.0.1",
            "SMTP_PORT": ports[2],
        }
    )
    assert result.exit_code == 1, result.output
    assert [name for name, (state, _) in checks.items() if state == "FAIL"] == [
        "database",
        "redis",
        "smtp",
    ]
    assert "3 problem(s): database, redis, smtp." in result.output


def test_doctor_subprocess_reports_a_broken_service_without_traceback(app_config, tmp_path):
    port = closed_port()
    env = dict(os.environ)
    env.update({k: str(v) for k, v in app_config.items() if k != "TESTING"})
    env.update(ENV_FILE=os.devnull, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    result = subprocess.run(
        [str(FLASK), "--app", "app", "doctor"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert parse(result.stdout)["redis"][0] == "FAIL"
    assert f"127.0.0.1:{port}" in result.stdout
    assert "1 problem(s): redis." in result.stderr
