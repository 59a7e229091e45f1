"""deploy/cloudflare/email-worker.js under Node against a live Threadline (the relay ingress).

The worker runs unchanged in /usr/bin/node through tests/support/cloudflare_worker_runner.mjs,
which calls its `email()` with a stand-in of Cloudflare's ForwardableEmailMessage (raw as a
ReadableStream) and reports what the worker did: returned, setReject(reason), or threw. The app
is the `app` fixture's, served by werkzeug on a real port; statuses Threadline never answers on
its own (429, 408) come from a stand-in HTTP server, which also shows the exact request sent.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_INGRESS_PASSWORD
from tests.support.http_stub import HttpStub
from tests.support.ingress_requests import (
    FIXTURES,
    RELAY_URL,
    assert_received_once,
    inbound_job_ids,
    inbound_rows,
    load_fixture,
    stored_keys,
)
from tests.support.live_app import closed_port, serve

ROOT = Path(__file__).resolve().parents[2]
NODE = "/usr/bin/node"
WORKER = ROOT / "deploy" / "cloudflare" / "email-worker.js"
RUNNER = ROOT / "tests" / "support" / "cloudflare_worker_runner.mjs"
TO = "support@threadline.test"
PLAIN = load_fixture("plain-text.eml")
PLAIN_ID = "plain-text.1@customer.example.com"


@pytest.fixture
def app_config(app_config, extra_settings):
    return {**app_config, "INBOUND_EMAIL_SERVICE": "relay", **extra_settings}


@pytest.fixture
def live(app) -> Iterator[str]:
    with serve(app) as base:
        yield base


def run_worker(url: str, raw: Path, password=TEST_INGRESS_PASSWORD, to=TO, env=None) -> dict:
    spec = {
        "worker": str(WORKER),
        "raw": str(raw),
        "from": "sam@customer.example.com",
        "to": to,
        "env": {"THREADLINE_URL": url, "INBOUND_EMAIL_PASSWORD": password} if env is None else env,
    }
    done = subprocess.run(
        [NODE, str(RUNNER), json.dumps(spec)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_nothing_received():
    assert inbound_rows() == []
    assert stored_keys() == []
    assert inbound_job_ids() == []


# ---------------------------------------------------------------- delivered


def test_the_message_is_received_once_with_its_envelope_recipient(live):
    result = run_worker(live + "/", FIXTURES / "plain-text.eml")  # a trailing slash is fine

    assert result == {"outcome": "ok", "rejections": [], "error": None, "forwarded": []}
    assert_received_once(PLAIN, "relay", PLAIN_ID, [TO])


def test_8bit_bytes_and_line_endings_arrive_unchanged(live):
    raw = load_fixture("iso-8859-2-html.eml")

    assert run_worker(live, FIXTURES / "iso-8859-2-html.eml")["outcome"] == "ok"
    assert_received_once(raw, "relay", "iso-8859-2-html.20250114091244@example.pl", [TO])


def test_the_exact_request_the_worker_sends(tmp_path):
    raw = b"From: a@example.com\r\nSubject: \xe9t\xe9\r\n\r\nbody \xff\x00 bytes\r\n" * 400
    (tmp_path / "m.eml").write_bytes(raw)
    password = "p\u00e4ss:w\u00f6rd"  # non-ASCII and a colon: encoded as UTF-8 before base64
    with HttpStub(status=204) as stub:
        result = run_worker(stub.url(""), tmp_path / "m.eml", password=password)

    assert result["outcome"] == "ok"
    [request] = stub.requests
    assert (request.method, request.path) == ("POST", RELAY_URL)
    assert request.headers["Content-Type"] == "message/rfc822"
    credentials = base64.b64encode(f"actionmailbox:{password}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {credentials}"
    assert request.body == f"X-Original-To: {TO}\n".encode() + raw
    assert request.headers["Content-Length"] == str(len(request.body))


def test_a_recipient_with_a_line_break_is_not_prepended(tmp_path):
    with HttpStub(status=204) as stub:
        result = run_worker(stub.url(""), FIXTURES / "plain-text.eml", to=f"{TO}\r\nBcc: x@y")

    assert result["outcome"] == "ok"
    assert [r.body for r in stub.requests] == [PLAIN]


# ---------------------------------------------------------------- permanent: setReject


def test_a_wrong_password_rejects_the_message_with_the_reason(live):
    result = run_worker(live, FIXTURES / "plain-text.eml", password="not-the-password")

    assert result["outcome"] == "rejected"
    assert result["rejections"] == ["Threadline refused the message: 401 invalid credentials"]
    assert result["error"] is None
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_MAX_BYTES": "4096"}], indirect=True, ids=["4096-bytes"]
)
def test_a_message_over_the_size_limit_is_rejected_with_413(live, tmp_path):
    (tmp_path / "big.eml").write_bytes(PLAIN + b"x" * 5000)

    result = run_worker(live, tmp_path / "big.eml")

    assert result["outcome"] == "rejected"
    [reason] = result["rejections"]
    assert reason.startswith("Threadline refused the message: 413")
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_SERVICE": "postmark"}], indirect=True, ids=["postmark"]
)
def test_relay_not_enabled_rejects_with_404(live):
    result = run_worker(live, FIXTURES / "plain-text.eml")

    assert result["outcome"] == "rejected"
    assert result["rejections"][0].startswith("Threadline refused the message: 404")
    assert_nothing_received()


@pytest.mark.parametrize("status", [400, 403, 415, 422])
def test_other_permanent_answers_reject(tmp_path, status):
    with HttpStub(status=status, body=b"no thanks\nsecond line") as stub:
        result = run_worker(stub.url(""), FIXTURES / "plain-text.eml")

    assert result["outcome"] == "rejected"
    assert result["rejections"] == [f"Threadline refused the message: {status} no thanks"]
    assert len(stub.requests) == 1


# ---------------------------------------------------------------- temporary: throw, no reject


def test_threadline_answering_503_makes_the_worker_throw_without_rejecting(
    app, app_config, tmp_path
):
    from app import create_app

    storage_down = create_app(
        {
            **app_config,
            "STORAGE_BACKEND": "minio",
            "MINIO_ENDPOINT": f"127.0.0.1:{closed_port()}",
            "MINIO_ACCESS_KEY": "threadline",
            "MINIO_SECRET_KEY": "threadline-secret",
            "INSTANCE_PATH": str(tmp_path / "storage-down"),
        }
    )
    with serve(storage_down) as base:
        result = run_worker(base, FIXTURES / "plain-text.eml")

    assert result["outcome"] == "threw"
    assert result["rejections"] == []
    assert result["error"].startswith("Threadline is unavailable, retry later: 503")
    assert_nothing_received()


def test_threadline_unreachable_makes_the_worker_throw(app):
    result = run_worker(f"http://127.0.0.1:{closed_port()}", FIXTURES / "plain-text.eml")

    assert result["outcome"] == "threw"
    assert result["rejections"] == []
    assert result["error"].startswith("Threadline is unreachable")


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_temporary_answers_make_the_worker_throw(tmp_path, status):
    with HttpStub(status=status, body=b"busy") as stub:
        result = run_worker(stub.url(""), FIXTURES / "plain-text.eml")

    assert result["outcome"] == "threw"
    assert result["rejections"] == []
    assert result["error"] == f"Threadline is unavailable, retry later: {status} busy"
    assert len(stub.requests) == 1


@pytest.mark.parametrize(
    "env",
    [{"INBOUND_EMAIL_PASSWORD": "x"}, {"THREADLINE_URL": "http://127.0.0.1:9"}],
    ids=["url-missing", "password-missing"],
)
def test_a_half_configured_worker_throws_instead_of_bouncing(env):
    result = run_worker("", FIXTURES / "plain-text.eml", env=env)

    assert result["outcome"] == "threw"
    assert result["rejections"] == []
    assert "must both be set" in result["error"]
