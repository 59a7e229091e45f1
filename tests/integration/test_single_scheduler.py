"""Two cron schedulers on one Redis (`python worker.py --cron`, as on two machines): one
enqueues the periodic jobs, the other waits, and takes over within the lock's TTL when the
first is SIGKILLed."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from redis import Redis

from extensions import get_queue
from runtime.single_scheduler import LOCK_KEY
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
LOCK_SECONDS = 3
ROUND = 5  # the interval jobs of jobs/schedule.py on the default queue, enqueued at start
# ...but this one, every 5 s, which the holder itself enqueues again within the test's waits.
FAST = "jobs.sweeps.send_due_replies"


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_one_of_two_schedulers_acts_and_the_other_takes_over_when_it_dies(
    app, app_config, redis_server, tmp_path
):
    env = dict(os.environ)
    env.update({k: str(v) for k, v in app_config.items() if k != "TESTING"})
    env.update(
        ENV_FILE=os.devnull,
        LOG_LEVEL="INFO",
        LOG_FORMAT="json",
        SCHEDULER_LOCK_SECONDS=str(LOCK_SECONDS),
    )
    connection = Redis.from_url(redis_server)
    queue = get_queue("default")
    outputs = [tmp_path / "first.log", tmp_path / "second.log"]
    procs: list[subprocess.Popen] = []
    try:
        for output in outputs:
            with open(output, "wb") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "worker.py", "--cron"],
                        cwd=ROOT,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )

        def logs() -> str:
            return "\n".join(p.read_text() for p in outputs)

        def holder_pid() -> int | None:
            name = connection.get(LOCK_KEY)
            return int(name.decode().split(":")[1]) if name else None

        def round_jobs() -> int:
            return sum(1 for job in queue.get_jobs() if job.func_name != FAST)

        def waiting() -> list[int]:
            return [
                i for i, p in enumerate(outputs) if any("waits" in e["message"] for e in lines(p))
            ]

        assert wait_for(lambda: round_jobs() >= ROUND and waiting(), timeout=30), logs()
        time.sleep(LOCK_SECONDS)  # a few renewals: the waiting one must still not enqueue
        assert round_jobs() == ROUND, (round_jobs(), logs())
        [waiter] = waiting()
        holder = procs[1 - waiter]
        assert holder_pid() == holder.pid, logs()
        assert lines(outputs[1 - waiter]) == []  # holding the lock alone is quiet at INFO

        holder.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        assert wait_for(lambda: holder_pid() == procs[waiter].pid, timeout=LOCK_SECONDS * 3)
        took_over = time.monotonic() - killed
        assert took_over <= LOCK_SECONDS + LOCK_SECONDS / 3 + 1, took_over
        assert wait_for(lambda: round_jobs() >= 2 * ROUND, timeout=5), (round_jobs(), logs())
        messages = [e["message"] for e in lines(outputs[waiter])]
        assert len(messages) == 2 and "took over" in messages[1], messages
        assert procs[waiter].poll() is None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        connection.close()
    # A clean stop hands the lock back at once.
    assert Redis.from_url(redis_server).get(LOCK_KEY) is None


def test_roles_change_only_through_the_lock_and_each_change_is_one_line(app, redis_server, caplog):
    from runtime.single_scheduler import SingleCronScheduler

    caplog.set_level(logging.INFO, logger="runtime.single_scheduler")
    connection = Redis.from_url(redis_server)
    first = SingleCronScheduler(connection, lock_seconds=LOCK_SECONDS, name="first")
    second = SingleCronScheduler(connection, lock_seconds=LOCK_SECONDS, name="second")
    assert first.hold_lock() and first.hold_lock()  # taken, then renewed
    assert not second.hold_lock() and not second.hold_lock()
    assert [r.getMessage() for r in caplog.records] == [
        "Another scheduler (first) runs the periodic jobs; scheduler second waits and takes "
        f"over within {LOCK_SECONDS} s of it stopping"
    ]
    assert second.calculate_sleep_interval() <= LOCK_SECONDS / 3

    caplog.clear()
    connection.delete(LOCK_KEY)  # as if first had paused past the TTL
    assert second.hold_lock()
    assert not first.hold_lock()  # it notices it lost the lock and steps back
    assert [(r.levelname, r.getMessage().split(" (")[0]) for r in caplog.records] == [
        ("INFO", "Scheduler second took over the periodic jobs"),
        ("WARNING", "Scheduler first lost the scheduler lock"),
        ("INFO", "Another scheduler"),
    ]

    second.release_lock()  # what a clean stop does: the lock is handed over at once
    assert connection.get(LOCK_KEY) is None
    assert first.hold_lock()
    first.release_lock()
