"""Start a real S3 server (minio if installed, else s3rver from npm) for tests and benchmarks."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
S3RVER_BIN = REPO_ROOT / ".cache" / "s3rver" / "node_modules" / ".bin" / "s3rver"
# s3rver verifies request signatures against this fixed key pair.
S3RVER_KEY = "S3RVER"
MINIO_KEY = "threadline-test"
MINIO_SECRET = "threadline-test-secret"
DEFAULT_BUCKET = "threadline-test"
START_TIMEOUT = 30.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _command(objects_dir: Path, port: int, bucket: str) -> tuple[list[str], dict[str, str], str]:
    """Return (argv, env, access key) for the best available server."""
    env = dict(os.environ)
    minio = shutil.which("minio")
    if minio:
        env.update(MINIO_ROOT_USER=MINIO_KEY, MINIO_ROOT_PASSWORD=MINIO_SECRET)
        argv = [minio, "server", str(objects_dir), "--address", f"127.0.0.1:{port}", "--quiet"]
        return argv, env, MINIO_KEY
    if not S3RVER_BIN.exists():
        raise RuntimeError(
            f"no S3 server for tests: 'minio' is not on PATH and {S3RVER_BIN} is missing; "
            "run `make test-deps` (npm install --prefix .cache/s3rver s3rver@3.7.1)"
        )
    argv = [
        str(S3RVER_BIN),
        "-d",
        str(objects_dir),
        "-a",
        "127.0.0.1",
        "-p",
        str(port),
        "--configure-bucket",
        bucket,
    ]
    return argv, env, S3RVER_KEY


def _make_bucket_when_ready(
    endpoint: str, access_key: str, secret_key: str, bucket: str, deadline: float
) -> None:
    from minio import Minio

    client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=False)
    while True:
        try:
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@contextmanager
def running_s3_server(
    data_dir: str | os.PathLike[str], bucket: str = DEFAULT_BUCKET
) -> Iterator[dict[str, str]]:
    """Run an S3 server storing objects under data_dir; yield its endpoint and credentials."""
    data_dir = Path(data_dir)
    objects_dir = data_dir / "objects"
    objects_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "s3-server.log"
    port = free_port()
    argv, env, access_key = _command(objects_dir, port, bucket)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _accepts_connections(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                state = (
                    f"exited with code {proc.returncode}"
                    if proc.poll() is not None
                    else f"did not accept connections within {START_TIMEOUT:.0f}s"
                )
                log_text = log_path.read_text(errors="replace")[-4000:]
                raise RuntimeError(
                    f"S3 test server {' '.join(argv)} {state} on 127.0.0.1:{port}; "
                    f"its log ({log_path}):\n{log_text}"
                )
            time.sleep(0.1)
        secret = MINIO_SECRET if access_key == MINIO_KEY else S3RVER_KEY
        if access_key == MINIO_KEY:
            # minio has no flag to pre-create a bucket, and may accept TCP before it is ready.
            _make_bucket_when_ready(f"127.0.0.1:{port}", access_key, secret, bucket, deadline)
        yield {
            "endpoint": f"127.0.0.1:{port}",
            "access_key": access_key,
            "secret_key": secret,
            "bucket": bucket,
        }
    finally:
        _stop(proc)
