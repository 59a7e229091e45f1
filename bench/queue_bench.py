"""Benchmark a job's trip through Redis and a worker: ours (app context per job) vs bare RQ."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from rq import Queue, SimpleWorker

from app import create_app
from runtime.embedded_redis import EmbeddedRedis
from worker import build_worker

JOBS = 200
ROUNDS = 3


def noop() -> int:
    return 1


def _drain(queue: Queue, worker) -> float:
    """Enqueue JOBS no-op jobs, work them in burst mode; return ms per job."""
    started = time.perf_counter()
    for _ in range(JOBS):
        queue.enqueue(noop, result_ttl=0)
    worker.work(burst=True, logging_level="WARNING")
    return (time.perf_counter() - started) * 1000 / JOBS


def run() -> str:
    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
        work = Path(tmp)
        with EmbeddedRedis(str(work / "redis.sock"), str(work / "redis")) as redis_server:
            app = create_app(
                {
                    "SECRET_KEY": "bench-secret-key-0123456789",
                    "INBOUND_EMAIL_PASSWORD": "bench",
                    "REDIS_URL": redis_server.url,
                    "INSTANCE_PATH": str(work / "instance"),
                }
            )
            ours_worker = build_worker(app, ["default"], simple=True)
            connection = ours_worker.connection
            queue = Queue("default", connection=connection)
            bare_worker = SimpleWorker([queue], connection=connection)
            ours, bare = [], []
            for _ in range(ROUNDS):
                ours.append(_drain(queue, ours_worker))
                bare.append(_drain(queue, bare_worker))
    ours_ms, bare_ms = statistics.median(ours), statistics.median(bare)
    return "\n".join(
        [
            "## Job queue",
            "",
            f"{JOBS} no-op jobs enqueued and worked in burst mode against the embedded Redis "
            f"(unix socket), ms per job, median of {ROUNDS} alternating rounds.",
            "",
            "| path | ours (ms/job) | baseline (ms/job) | ratio |",
            "| --- | ---: | ---: | ---: |",
            f"| AppSimpleWorker (app context per job) vs bare rq.SimpleWorker | "
            f"{ours_ms:.2f} | {bare_ms:.2f} | {ours_ms / bare_ms:.2f}x |",
            "",
        ]
    )


if __name__ == "__main__":
    print(run())
