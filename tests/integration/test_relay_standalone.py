"""The relay command on a mail host: only URL and INGRESS_PASSWORD, an empty environment, a
working folder of its own, an unprivileged user, against a live Threadline over HTTP.

An MTA runs its pipe command as an unprivileged user. That user may not execute the venv's
interpreter (here it lives under /root, 0700, like any Python built under a private home),
so `threadline-relay`'s module, which imports only the standard library, runs as a file by
the system's /usr/bin/python3, from a copy in a folder anyone may read (as /srv/threadline).
`flask ingress` runs with the venv, as the current user, and as nobody where it can.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingress import relayer
from tests.conftest import TEST_INGRESS_PASSWORD
from tests.integration.test_relay_command import (
    FLAVOURS,
    SUCCESS_LINE,
    TEMPORARY,
    USAGE,
    assert_stored_exactly,
    closed_port,
    message,
    serve,
    stored,
)

ROOT = Path(__file__).resolve().parents[2]
FLASK = Path(sys.executable).with_name("flask")
SYSTEM_PYTHON = Path("/usr/bin/python3")
PATH = "/usr/local/bin:/usr/bin:/bin"
NOBODY = 65534
# The MTA's process is the unprivileged one that executes the interpreter: env, after setpriv
# dropped every privilege, does that exec (setpriv's own exec could still see private paths).
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "/usr/bin/env"]


def as_mta_user() -> list[str]:
    """The prefix that runs a command as an unprivileged user (we already are one if not root)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to run the relay command as nobody")
    return AS_NOBODY


@pytest.fixture
def live(app) -> Iterator[str]:
    with serve(app) as base:
        yield base + relayer.RELAY_PATH


@pytest.fixture(scope="module")
def relay_copy() -> Iterator[Path]:
    """ingress/__init__.py, relayer.py and relay_cli.py, in a folder anyone may read."""
    if not SYSTEM_PYTHON.is_file():
        pytest.fail(f"{SYSTEM_PYTHON} is missing: the system Python runs the relay command")
    base = Path(tempfile.mkdtemp(prefix="threadline-relay-"))
    try:
        package = base / "ingress"
        package.mkdir()
        for name in ("__init__.py", "relayer.py", "relay_cli.py"):
            shutil.copy(ROOT / "ingress" / name, package / name)
            (package / name).chmod(0o644)
        for folder in (base, package):
            folder.chmod(0o755)
        yield base
    finally:
        shutil.rmtree(base)


def standalone(copy: Path, stdin: bytes, *args: str, **env: str) -> subprocess.CompletedProcess:
    """/usr/bin/python3 .../ingress/relay_cli.py as nobody, in an empty environment."""
    return subprocess.run(
        [*as_mta_user(), str(SYSTEM_PYTHON), str(copy / "ingress" / "relay_cli.py"), *args],
        input=stdin,
        cwd=copy,
        env={"PATH": PATH, **env},
        capture_output=True,
        timeout=60,
    )


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_standalone_relay_as_nobody_with_only_url_and_password(flavour, relay_copy, live):
    raw = message(f"standalone-{flavour}")
    result = standalone(
        relay_copy, raw, "--flavour", flavour, URL=live, INGRESS_PASSWORD=TEST_INGRESS_PASSWORD
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.decode() == SUCCESS_LINE + "\n"
    assert result.stderr == b""
    assert_stored_exactly(raw)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_standalone_without_a_password_is_a_usage_error(flavour, relay_copy, live):
    result = standalone(relay_copy, message("nopw"), "--flavor", flavour, URL=live)
    assert result.stdout.decode() == (
        "4.3.5 No ingress password: pass --password or set INGRESS_PASSWORD\n"
    )
    assert result.returncode == USAGE[flavour]
    assert stored() == []


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_standalone_without_a_url_is_a_usage_error(flavour, relay_copy):
    result = standalone(relay_copy, message("nourl"), "--flavour", flavour, INGRESS_PASSWORD="x")
    assert result.stdout.decode() == "4.3.5 No ingress URL: pass --url or set URL\n"
    assert result.returncode == USAGE[flavour]


@pytest.mark.parametrize("url", ["localhost:5000", "ftp://example.com/x", "http://h:99999/"])
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_standalone_malformed_url_is_a_usage_error(flavour, url, relay_copy):
    result = standalone(
        relay_copy, message("url"), "--flavour", flavour, URL=url, INGRESS_PASSWORD="x"
    )
    assert result.stdout.decode().startswith("4.3.5 ")
    assert result.stdout.decode().endswith(": pass --url or set URL\n")
    assert result.returncode == USAGE[flavour]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_standalone_unreachable_is_temporary(flavour, relay_copy):
    url = f"http://127.0.0.1:{closed_port()}{relayer.RELAY_PATH}"
    result = standalone(relay_copy, message("closed"), f"--flavour={flavour}", "--url", url)
    assert result.returncode == USAGE[flavour]  # no password yet: the call is checked first
    result = standalone(
        relay_copy, message("closed"), f"--flavour={flavour}", URL=url, INGRESS_PASSWORD="x"
    )
    assert result.stdout.decode() == f"4.4.2 Network error talking to {url}: Connection refused\n"
    assert result.returncode == TEMPORARY[flavour]


@pytest.mark.parametrize(("flavour", "code"), [("exim", 64), ("qmail", 111), ("postfix", 75)])
def test_standalone_unknown_option_is_the_flavours_usage_code(flavour, code, relay_copy):
    result = standalone(relay_copy, message("opt"), "--flavour", flavour, "--bogus")
    assert result.returncode == code
    assert result.stdout.decode().startswith("4.3.5 unrecognized arguments: --bogus")


def test_relay_cli_imports_nothing_but_the_standard_library():
    script = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import ingress.relay_cli\n"
        "added = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(added - set(sys.stdlib_module_names)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["['ingress']"], result.stderr


def test_relay_cli_as_a_module_is_the_console_script(live, tmp_path):
    # threadline-relay = "ingress.relay_cli:main": the venv's interpreter, run as a module.
    raw = message("module")
    result = subprocess.run(
        [sys.executable, "-m", "ingress.relay_cli", "--flavour", "exim"],
        input=raw,
        cwd=tmp_path,
        env={"PATH": PATH, "PYTHONPATH": str(ROOT), "URL": live, "INGRESS_PASSWORD": "wrong"},
        capture_output=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (75, b"4.7.0 Invalid credentials\n")
    assert stored() == []


# --- flask ingress: the same contract ------------------------------------------------------


def flask_ingress(flavour: str, stdin: bytes, cwd: Path, prefix=(), **env: str):
    return subprocess.run(
        [*prefix, str(FLASK), "--app", str(ROOT / "app"), "ingress", flavour],
        input=stdin,
        cwd=cwd,
        env={"PATH": PATH, **env},
        capture_output=True,
        timeout=60,
    )


def test_flask_ingress_with_only_url_and_password_in_an_empty_environment(live, tmp_path):
    # No ENV_FILE, no SECRET_KEY, no database: and a .env in the working folder that flask
    # would have copied, whose password would be refused.
    (tmp_path / ".env").write_text("INGRESS_PASSWORD=wrong\nINBOUND_EMAIL_PASSWORD=wrong\n")
    raw = message("flask-empty-env")
    result = flask_ingress("postfix", raw, tmp_path, URL=live)
    assert result.returncode == 75  # the .env's password was not used, and there is no other
    assert result.stdout.decode().startswith("4.3.5 No ingress password: ")
    result = flask_ingress(
        "postfix", raw, tmp_path, URL=live, INGRESS_PASSWORD=TEST_INGRESS_PASSWORD
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.decode() == SUCCESS_LINE + "\n"
    assert_stored_exactly(raw)


def test_flask_ingress_as_nobody_needs_an_interpreter_it_can_execute(live, relay_copy):
    """What the README tells MTA admins: either the MTA's user can execute the venv's
    interpreter (then flask ingress relays as that user), or it cannot (a venv made from a
    Python under a private home, as on this machine) and fails before reading the message,
    which is why the README sends such hosts to /usr/bin/python3 and relay_cli.py."""
    probe = subprocess.run(
        [*as_mta_user(), sys.executable, "-c", "import flask"],
        env={"PATH": PATH},
        capture_output=True,
        timeout=60,
    )
    if probe.returncode != 0:
        assert b"Permission denied" in probe.stderr, probe.stderr
        return
    raw = message("flask-nobody")
    env = {"URL": live, "INGRESS_PASSWORD": TEST_INGRESS_PASSWORD}
    result = flask_ingress("exim", raw, relay_copy, prefix=as_mta_user(), **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_stored_exactly(raw)


def test_flask_ingress_ignores_unrelated_broken_settings(live, tmp_path):
    # The server's configuration is broken (no SECRET_KEY, mailgun without its key): relaying
    # needs none of it, the password comes from the same env file.
    env_file = tmp_path / "threadline.env"
    env_file.write_text(
        f"SECRET_KEY=\nINBOUND_EMAIL_SERVICE=mailgun\nINBOUND_EMAIL_PASSWORD={TEST_INGRESS_PASSWORD}\n"
    )
    raw = message("broken-config")
    result = flask_ingress("exim", raw, tmp_path, URL=live, ENV_FILE=str(env_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert_stored_exactly(raw)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_flask_ingress_with_neither_answers_no_password(flavour, tmp_path):
    result = flask_ingress(flavour, message("neither"), tmp_path, ENV_FILE=os.devnull)
    assert result.stdout.decode().startswith("4.3.5 No ingress password: ")
    assert result.returncode == USAGE[flavour]
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_flask_ingress_with_an_unreadable_env_file_is_temporary(flavour, tmp_path):
    env_file = tmp_path / "threadline.env"
    env_file.write_bytes(b"INBOUND_EMAIL_PASSWORD=\xff\xfe\n")
    result = flask_ingress(flavour, message("unreadable"), tmp_path, ENV_FILE=str(env_file))
    assert result.stdout.decode() == (
        f"4.3.5 Cannot read the settings: ENV_FILE: {env_file} cannot be read (it is not UTF-8 "
        "text). Fix: make it readable by the user running Threadline (e.g. the MTA's user for "
        "flask ingress)\n"
    )
    assert result.returncode == TEMPORARY[flavour]
