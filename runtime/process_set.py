"""`make run`: the Procfile's processes (web, worker, scheduler, idle) started together through
honcho, stopped together on Ctrl-C, after the embedded Redis when there is no REDIS_URL.

Every line but `web` is restarted with backoff when it exits (runtime/restarting.py); the web
or the embedded Redis exiting still ends the whole set, with a non-zero code."""

from __future__ import annotations

import os
import signal
import sys
import sysconfig
import threading
from pathlib import Path

from honcho.environ import parse_procfile

from config import PROJECT_ROOT, Settings
from runtime.embedded_redis import EmbeddedRedis
from runtime.restarting import ProcessSetManager

PROCFILE_NAME = "Procfile"
# What the user talks to: its exit ends the set. The other lines are restarted.
NOT_RESTARTED = ("web",)


def procfile_path() -> Path:
    """The checkout's Procfile; an installed wheel ships it in <venv>/share/threadline/."""
    beside_code = PROJECT_ROOT / PROCFILE_NAME
    if beside_code.is_file():
        return beside_code
    return Path(sysconfig.get_path("data")) / "share" / "threadline" / PROCFILE_NAME


def process_commands(path: Path | None = None) -> dict[str, str]:
    """name -> shell command, as the Procfile says (honcho's parser: comments are skipped)."""
    path = path or procfile_path()
    try:
        text = path.read_text()
    except OSError as exc:
        raise RuntimeError(
            f"cannot read the Procfile at {path} ({exc.strerror}): reinstall Threadline"
        ) from exc
    commands = dict(parse_procfile(text).processes)
    if not commands:
        raise RuntimeError(f"the Procfile at {path} names no process")
    return commands


def process_env(settings: Settings) -> dict[str, str]:
    """What the Procfile's commands expand ($HOST, $PORT...) and run with.

    The values are the validated settings, so a default the env file leaves out is spelled out;
    INSTANCE_PATH is passed resolved, so every process uses the folder serve checked. `python`
    is the interpreter serve runs on: its folder comes first on PATH (a venv always has one).
    """
    env = dict(os.environ)
    env.update(
        HOST=settings.host,
        PORT=str(settings.port),
        WEB_CONCURRENCY=str(settings.web_concurrency),
        INSTANCE_PATH=settings.instance_path,
    )
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH") or os.defpath])
    return env


def run_process_set(settings: Settings) -> int:
    """Start everything in the foreground; return the exit code for the shell."""
    commands = process_commands()  # a missing Procfile stops serve before Redis starts
    env = process_env(settings)
    redis = None
    if settings.embedded_redis:
        data_dir = os.path.join(settings.instance_path, "redis")
        redis = EmbeddedRedis(settings.embedded_redis_socket, data_dir)
        redis.start()
        print(f"system | embedded Redis on {redis.url}", flush=True)
    try:
        manager = ProcessSetManager()
        for name, cmd in commands.items():
            if name in NOT_RESTARTED:
                manager.add_process(name, cmd, env=env, cwd=str(PROJECT_ROOT))
            else:
                manager.add_restarting_process(name, cmd, env=env, cwd=str(PROJECT_ROOT))
        redis_died = threading.Event()
        if redis is not None:
            threading.Thread(
                target=_stop_set_when_redis_exits, args=(redis, manager, redis_died), daemon=True
            ).start()
        url = f"http://{settings.host}:{settings.port}"
        print(f"system | Threadline on {url} (Ctrl-C stops everything)", flush=True)
        manager.loop()
        if redis_died.is_set():
            return 1
        # Ctrl-C or SIGTERM is how a user stops the set: that is a clean stop, not an error.
        return 0 if manager.returncode in (130, 143) else (manager.returncode or 0)
    finally:
        if redis is not None:
            redis.stop()
            print("system | embedded Redis stopped", flush=True)


def _stop_set_when_redis_exits(
    redis: EmbeddedRedis, manager: ProcessSetManager, died: threading.Event
) -> None:
    """Without Redis nothing but the web works, and restarting workers would only spin:
    stop the set as Ctrl-C does (our own SIGTERM, handled by honcho on the main thread)."""
    returncode = redis.process.wait()
    if manager.stopping.is_set():
        return
    died.set()
    print(
        f"system | embedded Redis exited (rc={returncode}; see {redis.data_dir}/redis.log): "
        "stopping everything",
        flush=True,
    )
    os.kill(os.getpid(), signal.SIGTERM)
