"""`make run`: web (gunicorn), worker and scheduler together, stopped together on Ctrl-C."""

from __future__ import annotations

import os
import shlex
import sys

from honcho.manager import Manager

from config import PROJECT_ROOT, Settings
from runtime.embedded_redis import EmbeddedRedis


def process_commands(settings: Settings) -> dict[str, str]:
    python = shlex.quote(sys.executable)
    bind = shlex.quote(f"{settings.host}:{settings.port}")
    return {
        "web": (
            f"{python} -m gunicorn --bind {bind} --workers {settings.web_concurrency} "
            "--threads 4 --graceful-timeout 10 --access-logfile - "
            # --preload: a bad config stops the master with our message instead of respawning
            # workers; no control socket: gunicorn's default in ~/.gunicorn is shared by runs.
            "--preload --no-control-socket wsgi:app"
        ),
        "worker": f"{python} worker.py",
        "scheduler": f"{python} worker.py --cron",
    }


def run_process_set(settings: Settings) -> int:
    """Start everything in the foreground; return the exit code for the shell."""
    env = dict(os.environ)
    redis = None
    if settings.embedded_redis:
        data_dir = os.path.join(settings.instance_path, "redis")
        redis = EmbeddedRedis(settings.embedded_redis_socket, data_dir)
        redis.start()
        print(f"system | embedded Redis on {redis.url}", flush=True)
    try:
        manager = Manager()
        for name, cmd in process_commands(settings).items():
            manager.add_process(name, cmd, env=env, cwd=str(PROJECT_ROOT))
        url = f"http://{settings.host}:{settings.port}"
        print(f"system | Threadline on {url} (Ctrl-C stops everything)", flush=True)
        manager.loop()
        # Ctrl-C or SIGTERM is how a user stops the set: that is a clean stop, not an error.
        return 0 if manager.returncode in (130, 143) else (manager.returncode or 0)
    finally:
        if redis is not None:
            redis.stop()
            print("system | embedded Redis stopped", flush=True)
