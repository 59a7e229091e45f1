"""deploy/: the systemd units pass `systemd-analyze verify`, run the Procfile's commands with
the hardening the README promises, and the nginx site passes `nginx -t` with the body limit
the app applies."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from config import Settings
from runtime.process_set import process_commands
from tests.support.tls import make_self_signed

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "deploy" / "systemd"
NGINX_SITE = ROOT / "deploy" / "nginx" / "threadline.conf"
VENV_BIN = "/opt/threadline/venv/bin"
SERVICES = (
    "threadline-web.service",
    "threadline-worker@.service",
    "threadline-scheduler.service",
    "threadline-idle.service",
)


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not found:
        pytest.fail(f"{name} is not installed: run `make test-deps` (it installs it from Debian)")
    return found


def directives(unit: Path) -> dict[str, list[str]]:
    """Key -> every value it is given, in order (systemd allows a key several times)."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_systemd_analyze_verify_accepts_every_unit(tmp_path):
    # verify checks that ExecStart's program exists: give it stand-ins at a temporary path.
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for program in ("gunicorn", "threadline-worker"):
        (bin_dir / program).write_text("#!/bin/sh\n")
        (bin_dir / program).chmod(0o755)
    for unit in SYSTEMD.iterdir():
        (tmp_path / unit.name).write_text(unit.read_text().replace(VENV_BIN, str(bin_dir)))
    assert not (SYSTEMD / "threadline-worker@.service").read_text().count(str(tmp_path))

    units = ["threadline.target", "threadline-web.service", "threadline-scheduler.service"]
    units += ["threadline-idle.service"]
    units += ["threadline-worker@1.service", "threadline-worker@2.service"]  # the template
    result = subprocess.run(
        [tool("systemd-analyze"), "verify", *units],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Unknown keys and bad values are only warnings (exit 0): any line about our units fails.
    ours = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "threadline" in line or str(tmp_path) in line
    ]
    assert result.returncode == 0, result.stdout + result.stderr
    assert not ours, "\n".join(ours)


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_runs_as_threadline_with_the_env_file_and_hardening(name):
    unit = directives(SYSTEMD / name)
    expected = {
        "User": "threadline",
        "Group": "threadline",
        "WorkingDirectory": "/var/lib/threadline",
        "EnvironmentFile": "/etc/threadline/threadline.env",
        "UMask": "0077",
        "NoNewPrivileges": "true",
        "PrivateTmp": "true",
        "ProtectSystem": "strict",
        "ProtectHome": "true",
        "ReadWritePaths": "/var/lib/threadline",
        "RestartPreventExitStatus": "2",  # a configuration error: restarting cannot fix it
        "WantedBy": "threadline.target",
        "PartOf": "threadline.target",
    }
    for key, value in expected.items():
        assert unit.get(key) == [value], f"{name}: {key}={unit.get(key)}, expected {value}"
    assert "ENV_FILE=/etc/threadline/threadline.env" in unit["Environment"]
    # The background services run always (any exit is a fault); the web stops on a clean exit.
    restart = "on-failure" if name == "threadline-web.service" else "always"
    assert unit.get("Restart") == [restart], f"{name}: Restart={unit.get('Restart')}"
    seconds = re.fullmatch(r"(\d+)s?", unit["RestartSec"][0])
    assert seconds and 1 <= int(seconds.group(1)) <= 60, unit["RestartSec"]


def _arguments(command: str, program: str) -> list[str]:
    words = shlex.split(re.sub(r"\$\{(\w+)\}", r"$\1", command))
    return words[[i for i, w in enumerate(words) if w.endswith(program)][0] + 1 :]


@pytest.mark.parametrize(
    ("name", "process", "program", "procfile_program"),
    [
        ("threadline-web.service", "web", "gunicorn", "gunicorn"),
        ("threadline-worker@.service", "worker", "threadline-worker", "worker.py"),
        ("threadline-scheduler.service", "scheduler", "threadline-worker", "worker.py"),
        ("threadline-idle.service", "idle", "threadline-worker", "worker.py"),
    ],
)
def test_services_run_what_the_procfile_runs(name, process, program, procfile_program):
    (exec_start,) = directives(SYSTEMD / name)["ExecStart"]
    assert exec_start.startswith(f"{VENV_BIN}/{program}")
    procfile = process_commands(ROOT / "Procfile")[process]
    assert _arguments(exec_start, program) == _arguments(procfile, procfile_program)


def test_web_service_defaults_match_the_settings_defaults():
    env = dict(
        pair.split("=", 1)
        for line in directives(SYSTEMD / "threadline-web.service")["Environment"]
        for pair in line.split()
    )
    defaults = Settings()
    assert env["HOST"] == defaults.host
    assert env["PORT"] == str(defaults.port)
    assert env["WEB_CONCURRENCY"] == str(defaults.web_concurrency)


def test_nginx_site_passes_nginx_t_and_allows_the_largest_email(tmp_path):
    site = NGINX_SITE.read_text()
    # The app refuses bodies over INBOUND_EMAIL_MAX_BYTES + 1 MiB; nginx must let those through.
    limit = re.search(r"^\s*client_max_body_size (\d+)m;", site, re.M)
    assert limit, "client_max_body_size missing"
    assert int(limit.group(1)) * 1024 * 1024 == Settings().inbound_max_bytes + 1024 * 1024
    for header in (
        "Host $host",
        "X-Forwarded-For $proxy_add_x_forwarded_for",
        "X-Forwarded-Proto $scheme",
        "X-Forwarded-Host $host",
    ):
        assert f"proxy_set_header {header};" in site, header
    assert "location = /healthz" in site
    assert "proxy_pass http://threadline_web;" in site
    upstream = re.search(r"server (127\.0\.0\.1):(\d+);", site)
    assert upstream and upstream.groups() == (Settings().host, str(Settings().port))

    cert, key = make_self_signed(tmp_path, "support.example.com")
    site = site.replace("/etc/letsencrypt/live/support.example.com/fullchain.pem", str(cert))
    site = site.replace("/etc/letsencrypt/live/support.example.com/privkey.pem", str(key))
    (tmp_path / "threadline.conf").write_text(site)
    (tmp_path / "logs").mkdir()
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/logs/error.log;\n"
        "events {}\n"
        "http {\n"
        f"    access_log {tmp_path}/logs/access.log;\n"
        f"    include {tmp_path}/threadline.conf;\n"
        "}\n"
    )
    result = subprocess.run(
        [
            tool("nginx"),
            "-t",
            "-p",
            str(tmp_path),
            "-e",
            str(tmp_path / "logs" / "error.log"),
            "-c",
            str(main),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr, result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr, result.stderr
