"""/healthz and /readyz as a load balancer sees them: the real database, Redis and storage,
then each of them down (a closed port, an unusable folder, a server that never answers)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from extensions import db
from services import readiness

# Seconds: no answer below, failures included, waits for a driver's own timeout (30 s a try
# for the S3 SDK, minutes for a silent database). Not a speed figure: what each answer says
# (refused at once, or "no answer within" the deadline) is asserted by the tests themselves;
# a loaded CI machine took 2.8 s for a refused PostgreSQL connection (the driver's import).
FAST = 10.0


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: bound, read, released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def silent_server() -> Iterator[int]:
    """A port whose connections complete (the kernel's backlog) but never get a byte back."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


@pytest.fixture
def make_app(app_config):
    """An app of its own with some settings changed (the `app` fixture's clean-up needs a
    working database and Redis; these apps may have neither)."""
    from app import create_app

    built = []

    def build(**changes):
        app = create_app({**app_config, **changes})
        built.append(app)
        return app

    yield build
    for app in built:
        with app.app_context():
            db.engine.dispose()


def get(app, path: str):
    started = time.monotonic()
    response = app.test_client().get(path)
    elapsed = time.monotonic() - started
    assert elapsed < FAST, f"{path} took {elapsed:.1f} s"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/json"
    return response


@contextmanager
def statements_on(app) -> Iterator[list[str]]:
    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_healthz_answers_without_touching_database_redis_or_storage(make_app, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the storage folder should be")
    app = make_app(
        REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0", STORAGE_LOCAL_PATH=str(blocked)
    )
    with statements_on(app) as statements:
        response = get(app, "/healthz")
        assert response.status_code == 200 and response.get_json() == {"status": "ok"}
        assert statements == []
        # The same app's /readyz does reach all three: the counting above would have seen it.
        ready = get(app, "/readyz")
    assert ready.status_code == 503 and ready.get_json()["failed"] == ["redis", "storage"]
    assert any("SELECT" in sql for sql in statements)


def test_health_needs_no_sign_in_and_is_get_only(client):
    assert client.get("/healthz").status_code == 200
    assert client.head("/healthz").status_code == 200
    for path in ("/healthz", "/readyz"):
        refused = client.post(path)  # no CSRF error either: nothing to protect
        assert refused.status_code == 405 and "GET" in refused.headers["Allow"]


def test_readyz_is_200_when_everything_answers(app, client):
    response = get(app, "/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "status": "ok",
        "failed": [],
        "checks": {"database": {"ok": True}, "redis": {"ok": True}, "storage": {"ok": True}},
    }


@pytest.mark.parametrize("where", ["postgresql", "sqlite"])
def test_readyz_names_the_database_when_it_is_unreachable(make_app, where):
    url = {
        "postgresql": f"postgresql+psycopg://threadline:pw@127.0.0.1:{closed_port()}/threadline",
        "sqlite": "sqlite:////nonexistent-folder/threadline.db",
    }[where]
    response = get(make_app(DATABASE_URL=url), "/readyz")
    body = response.get_json()
    assert response.status_code == 503 and body["status"] == "unavailable"
    assert body["failed"] == ["database"]
    error = body["checks"]["database"]["error"]
    expected = "Connection refused" if where == "postgresql" else "unable to open database file"
    assert error.startswith("cannot connect to ") and expected in error, error
    assert body["checks"]["database"]["fix"].startswith("check DATABASE_URL")
    assert body["checks"]["redis"] == {"ok": True} and body["checks"]["storage"] == {"ok": True}


def test_readyz_names_redis_when_it_is_unreachable(make_app):
    port = closed_port()
    response = get(make_app(REDIS_URL=f"redis://127.0.0.1:{port}/0"), "/readyz")
    body = response.get_json()
    assert response.status_code == 503 and body["failed"] == ["redis"]
    error = body["checks"]["redis"]["error"]
    assert f"cannot connect to Redis at 127.0.0.1:{port}/0" in error
    assert "Connection refused" in error, error


def test_readyz_names_local_storage_that_cannot_be_written(make_app, tmp_path):
    blocked = tmp_path / "storage"
    blocked.write_text("a file where the storage folder should be")  # root ignores chmod
    response = get(make_app(STORAGE_LOCAL_PATH=str(blocked)), "/readyz")
    body = response.get_json()
    assert response.status_code == 503 and body["failed"] == ["storage"]
    error = body["checks"]["storage"]["error"]
    assert f"could not create local storage directory {blocked}" in error, error


def test_readyz_names_s3_storage_on_a_closed_port(make_app):
    port = closed_port()
    app = make_app(
        STORAGE_BACKEND="minio",
        MINIO_ENDPOINT=f"127.0.0.1:{port}",
        MINIO_ACCESS_KEY="threadline",
        MINIO_SECRET_KEY="threadline-secret",
        MINIO_BUCKET="threadline",
    )
    body = get(app, "/readyz").get_json()
    assert body["failed"] == ["storage"]
    assert f"127.0.0.1:{port}" in body["checks"]["storage"]["error"]


def test_readyz_gives_up_on_a_server_that_never_answers(make_app, monkeypatch):
    """S3 that accepts the connection and stays silent (the SDK would wait 30 s a try):
    the answer comes at the deadline, and later probes do not pile up more waiting threads."""
    monkeypatch.setattr(readiness, "TIMEOUT", 0.5)
    with silent_server() as port:
        app = make_app(
            STORAGE_BACKEND="minio",
            MINIO_ENDPOINT=f"127.0.0.1:{port}",
            MINIO_ACCESS_KEY="threadline",
            MINIO_SECRET_KEY="threadline-secret",
            MINIO_BUCKET="threadline",
        )
        for _ in range(3):
            body = get(app, "/readyz").get_json()
            assert body["failed"] == ["storage"]
            assert body["checks"]["storage"]["error"].startswith("no answer within 0.5 s")
        waiting = [t for t in threading.enumerate() if t.name == "readyz-storage"]
        assert len(waiting) == 1
        assert body["checks"]["database"] == {"ok": True} and body["checks"]["redis"]["ok"]
