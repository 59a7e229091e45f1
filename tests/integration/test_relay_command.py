"""`flask ingress relay|postfix|exim|qmail` against a live Threadline over HTTP and real stubs.

The live app is the `app` fixture's app served by werkzeug on a real port; stubs are real
HTTP servers answering fixed statuses (tests/support/http_stub.py). Each flavour runs at
least once as a real subprocess, the way an MTA runs it; the status matrix runs in-process.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from base64 import b64decode
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from extensions import db, get_storage
from ingress import relayer
from models import InboundEmail
from tests.conftest import TEST_INGRESS_PASSWORD
from tests.support.http_stub import HttpStub
from tests.support.live_app import closed_port, serve

ROOT = Path(__file__).resolve().parents[2]
FLASK = Path(sys.executable).with_name("flask")
FLAVOURS = ("relay", "postfix", "exim", "qmail")
TEMPORARY = {"relay": 75, "postfix": 75, "exim": 75, "qmail": 111}
EMPTY = {"relay": 75, "postfix": 75, "exim": 64, "qmail": 100}
USAGE = {"relay": 75, "postfix": 75, "exim": 64, "qmail": 111}
SUCCESS_LINE = "2.0.0 Successfully relayed message to Threadline"


def message(tag: str) -> bytes:
    """A message with CRLF lines, an 8-bit ISO-8859-2 HTML part and no final newline."""
    html = "<p>Dobrý den, žluťoučký kůň úpěl ďábelské ódy. Łódź.</p>".encode("iso-8859-2")
    return (
        b"From: Zofia <zofia@example.pl>\r\n"
        b"To: support@example.com\r\n"
        b"Subject: =?iso-8859-2?Q?Zam=F3wienie?= " + tag.encode() + b"\r\n"
        b"Message-ID: <relay-" + tag.encode() + b"@example.pl>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="b1"\r\n'
        b"\r\n"
        b"--b1\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n"
        b"\r\n"
        b"Plain part.\r\n"
        b"--b1\r\n"
        b"Content-Type: text/html; charset=iso-8859-2\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n" + html + b"\r\n\xff\xfe\x00 raw bytes\n"
        b"--b1--"
    )


def stored() -> list[InboundEmail]:
    db.session.expire_all()  # rows written by the live server's threads
    return list(db.session.scalars(select(InboundEmail).order_by(InboundEmail.id)))


def assert_stored_exactly(raw: bytes) -> None:
    [row] = stored()
    assert row.source == "relay"
    assert get_storage().get_bytes(row.storage_key) == raw


@pytest.fixture
def live(app) -> Iterator[str]:
    """Base URL of the `app` fixture's app, served over real HTTP."""
    with serve(app) as base:
        yield base


@pytest.fixture
def stub() -> Iterator[HttpStub]:
    server = HttpStub()
    yield server
    server.stop()


def invoke(app, flavour: str, stdin: bytes, *args: str, env: dict | None = None):
    """In-process run; URL / INGRESS_PASSWORD from the developer's shell never leak in."""
    environment = {"URL": None, "INGRESS_PASSWORD": None, **(env or {})}
    return app.test_cli_runner().invoke(
        args=["ingress", flavour, *args], input=stdin, env=environment
    )


def cli_env(app_config: dict) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("URL", "INGRESS_PASSWORD")}
    env.update({k: str(v) for k, v in app_config.items() if k != "TESTING"})
    env.update(ENV_FILE=os.devnull, FLASK_SKIP_DOTENV="1")
    return env


def run(app_config: dict, flavour: str, stdin: bytes, *args: str, cwd: Path = ROOT):
    """The command as an MTA runs it: its own process, absolute --app, any working directory."""
    return subprocess.run(
        [str(FLASK), "--app", str(ROOT / "app"), "ingress", flavour, *args],
        input=stdin,
        cwd=cwd,
        env=cli_env(app_config),
        capture_output=True,
        timeout=60,
    )


# --- real subprocesses against the live app -------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_subprocess_relays_byte_for_byte_to_the_live_app(flavour, app_config, live, tmp_path):
    raw = message(flavour)
    url = live + relayer.RELAY_PATH
    result = run(
        app_config, flavour, raw, "--url", url, "--password", TEST_INGRESS_PASSWORD, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.decode() == SUCCESS_LINE + "\n"
    assert_stored_exactly(raw)


def test_subprocess_closed_port_is_temporary_for_exim(app_config):
    url = f"http://127.0.0.1:{closed_port()}{relayer.RELAY_PATH}"
    result = run(app_config, "exim", message("closed"), "--url", url, "--password", "x")
    assert result.returncode == 75
    assert result.stdout.decode() == f"4.4.2 Network error talking to {url}: Connection refused\n"


def test_subprocess_401_is_temporary_for_qmail(app_config, stub):
    stub.status = 401
    stub.start()
    result = run(app_config, "qmail", message("q"), "--url", stub.url(), "--password", "nope")
    assert (result.returncode, result.stdout.decode()) == (111, "4.7.0 Invalid credentials\n")


def test_subprocess_empty_stdin_for_postfix(app_config):
    # No --url / --password: the app's own APP_URL and INBOUND_EMAIL_PASSWORD are used, and
    # an empty message is refused before anything is sent.
    result = run(app_config, "postfix", b"")
    assert result.returncode == 75
    assert result.stdout.decode() == "5.6.0 No message on standard input (it was empty)\n"


# --- in-process: live app -------------------------------------------------------------------


def test_defaults_come_from_the_apps_settings(app_config, live):
    other = create_app({**app_config, "APP_URL": live + "/"})
    with other.app_context():
        result = invoke(other, "relay", message("defaults"))
    assert (result.exit_code, result.output) == (0, SUCCESS_LINE + "\n")
    assert_stored_exactly(message("defaults"))


def test_env_url_and_ingress_password_win_over_settings(app, live):
    env = {"URL": live + relayer.RELAY_PATH, "INGRESS_PASSWORD": TEST_INGRESS_PASSWORD}
    result = invoke(app, "exim", message("env"), env=env)  # APP_URL is http://localhost
    assert (result.exit_code, result.output) == (0, SUCCESS_LINE + "\n")
    assert_stored_exactly(message("env"))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_wrong_password_against_the_live_app(flavour, app, live):
    url = live + relayer.RELAY_PATH
    result = invoke(app, flavour, message("pw"), "--url", url, "--password", "wrong-password")
    assert result.output == "4.7.0 Invalid credentials\n"
    assert result.exit_code == TEMPORARY[flavour]
    assert stored() == []


def test_the_live_apps_413_is_temporary(app_config, tmp_path):
    # Over INBOUND_EMAIL_MAX_BYTES: not permanent, an operator may raise the limit (or a
    # proxy's); the MTA keeps the message meanwhile.
    small = create_app({**app_config, "INBOUND_EMAIL_MAX_BYTES": 1024})
    with small.app_context(), serve(small) as base:
        args = ("--url", base + relayer.RELAY_PATH, "--password", TEST_INGRESS_PASSWORD)
        result = invoke(small, "exim", message("big") + b"x" * 4096, *args)
    reason = "the message is larger than INBOUND_EMAIL_MAX_BYTES (1024 bytes)"
    assert (result.exit_code, result.output) == (75, f"4.0.0 HTTP 413: {reason}\n")


# --- in-process: stubs answering fixed statuses ---------------------------------------------


def test_request_carries_the_documented_headers_and_the_exact_bytes(app, stub):
    stub.start()
    raw = message("headers")
    result = invoke(app, "relay", raw, "--url", stub.url() + "?x=1", "--password", "p@ss:wörd")
    assert (result.exit_code, result.output) == (0, SUCCESS_LINE + "\n")
    [request] = stub.requests
    assert request.method == "POST"
    assert request.path == relayer.RELAY_PATH + "?x=1"
    assert request.headers["Content-Type"] == "message/rfc822"
    assert request.headers["User-Agent"] == "Threadline relayer/0.1.0"
    assert request.headers["Content-Length"] == str(len(raw))
    scheme, encoded = request.headers["Authorization"].split(" ")
    assert (scheme, b64decode(encoded).decode()) == ("Basic", "actionmailbox:p@ss:wörd")
    assert request.body == raw


def test_the_smtp_connection_options_become_request_headers(app, stub):
    """Postfix's pipe expands ${client_address} ${client_helo} ${sender}; a null sender is
    an empty --sender, kept; an empty client address (local submission) is left out."""
    stub.start()
    connection = ("--client-address", "192.0.2.25", "--helo", "mx.example.pl", "--sender", "")
    result = invoke(app, "postfix", message("conn"), "--url", stub.url(), "--password", "p",
                    *connection)  # fmt: skip
    assert (result.exit_code, result.output) == (0, SUCCESS_LINE + "\n")
    local = invoke(app, "postfix", message("local"), "--url", stub.url(), "--password", "p",
                   "--client-address", "", "--sender", "a@example.pl")  # fmt: skip
    assert local.exit_code == 0
    remote, submitted = stub.requests
    assert remote.headers["X-Threadline-Client-Address"] == "192.0.2.25"
    assert remote.headers["X-Threadline-Helo"] == "mx.example.pl"
    assert remote.headers["X-Threadline-Mail-From"] == ""
    assert "X-Threadline-Client-Address" not in submitted.headers
    assert "X-Threadline-Helo" not in submitted.headers
    assert submitted.headers["X-Threadline-Mail-From"] == "a@example.pl"


def test_threadline_relay_records_the_connection_on_the_live_app(app, live, tmp_path):
    raw = message("relay-cli-conn")
    result = subprocess.run(
        [sys.executable, "-m", "ingress.relay_cli", "--flavour", "exim",
         "--client-address", "2001:db8::7", "--helo", "mail.example.pl",
         "--sender", "zofia@example.pl"],
        input=raw,
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT),
             "URL": live + relayer.RELAY_PATH, "INGRESS_PASSWORD": TEST_INGRESS_PASSWORD},
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stdout.decode()) == (0, SUCCESS_LINE + "\n")
    [row] = stored()
    assert (row.client_address, row.helo, row.mail_from) == (
        "2001:db8::7",
        "mail.example.pl",
        "zofia@example.pl",
    )


def test_relayer_version_is_the_project_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert relayer.VERSION == project["version"]
    assert relayer.USER_AGENT == f"Threadline relayer/{relayer.VERSION}"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_401_is_invalid_credentials_and_temporary(flavour, app, stub):
    stub.status = 401
    stub.start()
    result = invoke(app, flavour, message("401"), "--url", stub.url(), "--password", "s3cret-pw")
    assert result.output == "4.7.0 Invalid credentials\n"
    assert result.exit_code == TEMPORARY[flavour]
    assert "s3cret-pw" not in result.output


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_500_is_temporary(flavour, app, stub):
    stub.status = 500
    stub.start()
    result = invoke(app, flavour, message("500"), "--url", stub.url(), "--password", "x")
    assert result.output == "4.0.0 HTTP 500\n"
    assert result.exit_code == TEMPORARY[flavour]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (503, "the message could not be stored; retry later"),
        (413, "the message is larger than INBOUND_EMAIL_MAX_BYTES"),
        (415, "Content-Type must be message/rfc822"),
        (404, "the relay ingress is not enabled"),
        (301, "Moved Permanently"),
    ],
)
def test_other_statuses_are_temporary_with_the_servers_reason(status, reason, app, stub):
    # No HTTP answer is permanent, not even 413: exim and qmail keep the message too.
    stub.status = status
    stub.body = reason.encode() + b"\nsecond line ignored\n"
    stub.start()
    for flavour in FLAVOURS:
        result = invoke(app, flavour, message("other"), "--url", stub.url(), "--password", "x")
        line = f"4.0.0 HTTP {status}: {reason}\n"
        assert (result.exit_code, result.output) == (TEMPORARY[flavour], line)


def test_html_error_bodies_are_not_echoed(app, stub):
    stub.status, stub.content_type, stub.body = 502, "text/html", b"<h1>Bad gateway</h1>"
    stub.start()
    result = invoke(app, "exim", message("html"), "--url", stub.url(), "--password", "x")
    assert (result.exit_code, result.output) == (75, "4.0.0 HTTP 502\n")


def test_a_413_sent_before_the_body_is_read_is_still_reported(app, stub):
    # The server answers and closes while we are still sending: its status, not the broken
    # pipe, is what the operator needs to see.
    stub.status, stub.body, stub.read_body = 413, b"too large\n", False
    stub.start()
    big = message("early") + b"y" * (8 * 1024 * 1024)
    result = invoke(app, "exim", big, "--url", stub.url(), "--password", "x")
    assert (result.exit_code, result.output) == (75, "4.0.0 HTTP 413: too large\n")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_closed_port_is_temporary(flavour, app):
    url = f"http://127.0.0.1:{closed_port()}{relayer.RELAY_PATH}"
    result = invoke(app, flavour, message("closed"), "--url", url, "--password", "x")
    assert result.output == f"4.4.2 Network error talking to {url}: Connection refused\n"
    assert result.exit_code == TEMPORARY[flavour]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_server_that_never_answers_times_out_temporarily(flavour, app, stub):
    stub.hang = True
    stub.start()
    args = ("--url", stub.url(), "--password", "x", "--timeout", "0.3")
    result = invoke(app, flavour, message("hang"), *args)
    assert result.output == f"4.4.2 Timed out talking to {stub.url()}\n"
    assert result.exit_code == TEMPORARY[flavour]
    assert len(stub.requests) == 1  # it got the whole request, then said nothing


def test_unresolvable_host_is_a_temporary_network_error(app):
    url = "http://threadline.invalid/rails/action_mailbox/relay/inbound_emails"
    result = invoke(app, "qmail", message("dns"), "--url", url, "--password", "x")
    assert result.exit_code == 111
    assert result.output.startswith(f"4.4.2 Network error talking to {url}: ")


def test_a_password_inside_the_url_is_never_printed(app):
    port = closed_port()
    url = f"http://actionmailbox:hunter2@127.0.0.1:{port}{relayer.RELAY_PATH}"
    result = invoke(app, "postfix", message("redact"), "--url", url, "--password", "x")
    assert result.exit_code == 75
    assert "hunter2" not in result.output
    assert f"http://127.0.0.1:{port}{relayer.RELAY_PATH}" in result.output


# --- usage errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_empty_stdin_is_refused_without_a_request(flavour, app, stub):
    stub.start()
    result = invoke(app, flavour, b"", "--url", stub.url(), "--password", "x")
    assert result.output == "5.6.0 No message on standard input (it was empty)\n"
    assert result.exit_code == EMPTY[flavour]
    assert stub.requests == []


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_no_password_anywhere_is_a_usage_error(flavour, app_config):
    # Mailgun only: the app needs no INBOUND_EMAIL_PASSWORD, so there is no default.
    settings = {"INBOUND_EMAIL_SERVICE": "mailgun", "MAILGUN_INGRESS_SIGNING_KEY": "k" * 20}
    other = create_app({**app_config, **settings, "INBOUND_EMAIL_PASSWORD": ""})
    with other.app_context():
        result = invoke(other, flavour, message("nopw"))
    assert result.output.startswith("4.3.5 No ingress password: ")
    assert result.exit_code == USAGE[flavour]


@pytest.mark.parametrize("url", ["ftp://example.com/x", "localhost:5000", "http://h:99999/"])
def test_a_malformed_url_is_a_usage_error(url, app):
    result = invoke(app, "exim", message("url"), "--url", url, "--password", "x")
    assert result.exit_code == 64
    assert re.match(r"4\.3\.5 .* pass --url or set URL or APP_URL\n$", result.output)


# --- the curl script from the README --------------------------------------------------------


def readme_curl_script() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Receiving email", 1)[1]
    [script] = [
        block
        for block in re.findall(r"```sh\n(.*?)```", section, re.S)
        if block.startswith("#!/bin/sh") and "curl" in block
    ]
    return script


@pytest.fixture
def curl_script(tmp_path) -> Path:
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed: the README's curl script cannot be checked")
    path = tmp_path / "import_mail_to_threadline"
    path.write_text(readme_curl_script())
    path.chmod(0o755)
    return path


def test_readme_curl_script_delivers_to_the_live_app(curl_script, live):
    raw = message("curl")
    env = {
        **os.environ,
        "URL": live + relayer.RELAY_PATH,
        "INGRESS_PASSWORD": TEST_INGRESS_PASSWORD,
    }
    result = subprocess.run([str(curl_script)], input=raw, env=env, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert_stored_exactly(raw)


def test_readme_curl_script_fails_loudly_on_a_refusal(curl_script, live):
    # getmail only treats a delivery as failed (and retries it) on a non-zero exit.
    env = {**os.environ, "URL": live + relayer.RELAY_PATH, "INGRESS_PASSWORD": "wrong"}
    result = subprocess.run(
        [str(curl_script)], input=message("curl"), env=env, capture_output=True, timeout=30
    )
    assert result.returncode != 0
    assert b"401" in result.stderr
    assert stored() == []


@pytest.mark.parametrize(("flavour", "code"), [("exim", 75), ("qmail", 111), ("postfix", 75)])
def test_a_broken_server_configuration_does_not_stop_the_relay(app_config, flavour, code):
    # No SECRET_KEY, mailgun without its key: relaying needs neither, only the URL and the
    # password (INBOUND_EMAIL_PASSWORD here); the closed port is what makes it temporary.
    broken = {**app_config, "SECRET_KEY": "", "INBOUND_EMAIL_SERVICE": "mailgun"}
    url = f"http://127.0.0.1:{closed_port()}/x"
    result = run(broken, flavour, message("broken-config"), "--url", url)
    assert result.returncode == code
    assert result.stdout.decode() == f"4.4.2 Network error talking to {url}: Connection refused\n"
    assert result.stderr == b""


def test_other_commands_keep_exit_code_2_for_a_broken_configuration(app_config):
    broken = {**app_config, "SECRET_KEY": ""}
    result = subprocess.run(
        [str(FLASK), "--app", str(ROOT / "app"), "inbound", "list"],
        cwd=ROOT,
        env=cli_env(broken),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
