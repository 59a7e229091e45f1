"""The shipped worker runs jobs in its own process (issue 20), and is still bounded: a job's
timeout is enforced, a job that raises or outlives its timeout leaves the worker working,
one that ignores the timeout ends the process for its supervisor to restart, and a long job's
heartbeat is kept, so nothing takes it for a dead worker's. `python worker.py --fork` still
forks a work horse per job.

A worker killed mid-job (SIGKILL) with its message recovered by another is
tests/integration/test_recovery.py: it starts `python worker.py` as the Procfile does, which
is this in-process worker.
"""

from __future__ import annotations

import contextvars
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from rq import get_current_job
from rq.job import Job, JobStatus
from rq.timeouts import JobTimeoutException

from extensions import get_queue, get_redis
from jobs.diagnostics import worker_ping
from tests.integration.test_worker import worker_env

ROOT = Path(__file__).resolve().parents[2]


# --- jobs (importable by a worker process) ---------------------------------------------------


def sleep_for(seconds: float) -> str:
    time.sleep(seconds)
    return "woke up"


def raise_an_error() -> None:
    raise RuntimeError("this job fails on purpose")


def ignore_the_timeout(seconds: float) -> None:
    """A job that swallows RQ's timeout and sleeps on: only the hard deadline ends it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(deadline - time.monotonic())
        except JobTimeoutException:
            print("timeout swallowed", flush=True)


def still_waiting_after(seconds: float) -> dict:
    """Sleep, then ask what the sweeps would ask about this very job."""
    from services.background import job_is_waiting

    time.sleep(seconds)
    job = get_current_job()
    return {"waiting": job_is_waiting(job.id), "pid": os.getpid()}


# --- helpers ---------------------------------------------------------------------------------


def run_worker_process(app_config: dict, *args: str, code: str | None = None, timeout=60):
    """`python worker.py --burst *args` (or `python -c code`) as its own process."""
    command = [sys.executable, "-c", code] if code else [sys.executable, "worker.py"]
    return subprocess.run(
        [*command, "--burst", *args],
        cwd=ROOT,
        env=worker_env(app_config),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def work_here(worker) -> None:
    """Work in burst mode in this process, in an empty context (no app context leaks in)."""
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        contextvars.Context().run(worker.work, burst=True)
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])


def status_of(job: Job) -> str:
    job.refresh()
    return job.get_status()


# --- tests -----------------------------------------------------------------------------------


def test_the_shipped_worker_runs_every_job_in_its_own_process_without_forking(app, app_config):
    from worker import AppSimpleWorker, build_worker

    assert isinstance(build_worker(app), AppSimpleWorker)  # what `python worker.py` builds
    pings = [get_queue("default").enqueue(worker_ping) for _ in range(3)]

    result = run_worker_process(app_config)

    assert result.returncode == 0, result.stderr
    pids = {ping.return_value()["pid"] for ping in pings}
    assert len(pids) == 1 and os.getpid() not in pids  # one process ran all three


def test_fork_runs_each_job_in_a_work_horse_of_its_own(app, app_config):
    pings = [get_queue("default").enqueue(worker_ping) for _ in range(2)]

    result = run_worker_process(app_config, "--fork")

    assert result.returncode == 0, result.stderr
    assert len({ping.return_value()["pid"] for ping in pings}) == 2


def test_a_job_past_its_timeout_fails_and_the_worker_goes_on_with_the_next(app, app_config):
    queue = get_queue("default")
    slow = queue.enqueue(sleep_for, 30, job_timeout=1)
    after = queue.enqueue(worker_ping)

    started = time.monotonic()
    result = run_worker_process(app_config)

    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 25  # interrupted, not slept through
    assert status_of(slow) == JobStatus.FAILED
    assert "JobTimeoutException" in slow.latest_result().exc_string
    assert status_of(after) == JobStatus.FINISHED


def test_a_job_that_raises_fails_alone(app, app_config):
    queue = get_queue("default")
    broken = queue.enqueue(raise_an_error)
    after = queue.enqueue(worker_ping)

    result = run_worker_process(app_config)

    assert result.returncode == 0, result.stderr
    assert status_of(broken) == JobStatus.FAILED
    assert "this job fails on purpose" in broken.latest_result().exc_string
    assert status_of(after) == JobStatus.FINISHED


def test_a_job_that_ignores_its_timeout_ends_the_process_and_the_next_worker_goes_on(
    app, app_config
):
    """The hard deadline (timeout + HARD_DEADLINE_GRACE, here 1 + 1 s): the process exits
    with every thread's traceback; the job behind it waits for the restarted worker."""
    queue = get_queue("default")
    stubborn = queue.enqueue(ignore_the_timeout, 40, job_timeout=1)
    after = queue.enqueue(worker_ping)
    code = (
        "import sys, worker; worker.AppSimpleWorker.hard_deadline_grace = 1; "
        "sys.exit(worker.main(sys.argv[1:]))"
    )

    started = time.monotonic()
    result = run_worker_process(app_config, code=code)

    assert time.monotonic() - started < 30  # not the 40 s the job wanted
    assert result.returncode == 1, result.stdout + result.stderr
    assert "timeout swallowed" in result.stdout  # RQ's SIGALRM came first
    assert "Timeout (0:00:02)!" in result.stderr  # then faulthandler's watchdog
    assert "ignore_the_timeout" in result.stderr  # the traceback says where it hung
    assert status_of(stubborn) == JobStatus.STARTED  # left for the leases and sweeps
    assert status_of(after) == JobStatus.QUEUED

    restarted = run_worker_process(app_config)  # what honcho or systemd does next

    assert restarted.returncode == 0, restarted.stderr
    assert status_of(after) == JobStatus.FINISHED


def test_a_long_job_keeps_its_heartbeat_so_it_is_not_taken_for_a_dead_workers(app, monkeypatch):
    """Every second a stamp (the interval shortened from JOB_HEARTBEAT_SECONDS); a job
    silent for 2 s would count as dead. Each of two jobs in a row runs 3.5 s and still counts
    as waiting: the worker's one heartbeat thread moves on to the second."""
    import services.background
    from worker import build_worker

    monkeypatch.setattr(services.background, "JOB_SILENT_AFTER", timedelta(seconds=2))
    queue = get_queue("default")
    long_jobs = [queue.enqueue(still_waiting_after, 3.5) for _ in range(2)]
    worker = build_worker(app, ["default"])
    worker.job_monitoring_interval = 1

    work_here(worker)

    for long_job in long_jobs:
        assert status_of(long_job) == JobStatus.FINISHED, long_job.latest_result().exc_string
        assert long_job.return_value() == {"waiting": True, "pid": os.getpid()}
        # No stamp after it finished put it back among the running ones.
        assert long_job.id not in queue.started_job_registry.get_job_ids()
        assert Job.fetch(long_job.id, connection=get_redis()).get_status() == JobStatus.FINISHED


def test_one_heartbeat_thread_serves_every_job_of_a_worker(app, monkeypatch):
    """A thread per job cost ~5 % of a short job (Thread.start waits for it to run)."""
    from worker import build_worker

    started = []

    class Counted(threading.Thread):
        def start(self):
            started.append(self.name)
            super().start()

    monkeypatch.setattr(threading, "Thread", Counted)
    for _ in range(5):
        get_queue("default").enqueue(worker_ping)
    worker = build_worker(app, ["default"])

    work_here(worker)

    assert get_queue("default").count == 0
    assert started.count("job-heartbeat") == 1


def test_without_the_heartbeat_the_same_job_would_count_as_dead(app, monkeypatch):
    """The check above can fail: the same job, its heartbeat thread never started."""
    import services.background
    from worker import JobHeartbeat, build_worker

    monkeypatch.setattr(services.background, "JOB_SILENT_AFTER", timedelta(seconds=2))
    monkeypatch.setattr(JobHeartbeat, "start", lambda self, job, execution: None)
    long_job = get_queue("default").enqueue(still_waiting_after, 3.5)
    worker = build_worker(app, ["default"])
    worker.job_monitoring_interval = 1

    work_here(worker)

    assert long_job.return_value()["waiting"] is False


def test_under_a_stream_of_jobs_the_worker_stamps_its_own_heartbeat_at_most_once_a_second(
    app, monkeypatch
):
    """RQ stamps the worker's key three times per job (three Redis round trips each); the
    plain stamps are spaced out, while the pipelined ones that set a job's expiry still go."""
    import worker as worker_module
    from worker import build_worker

    def stamps_for(every: float) -> int:
        monkeypatch.setattr(worker_module, "WORKER_HEARTBEAT_EVERY", every)
        for _ in range(10):
            get_queue("default").enqueue(worker_ping)
        worker = build_worker(app, ["default"])
        stamped, plain_hset = [], worker.connection.hset

        def hset(name, key=None, value=None, *args, **kwargs):
            if name == worker.key and key == "last_heartbeat":
                stamped.append(name)
            return plain_hset(name, key, value, *args, **kwargs)

        monkeypatch.setattr(worker.connection, "hset", hset)
        work_here(worker)
        assert get_queue("default").count == 0
        return len(stamped)

    assert stamps_for(0) >= 3 * 10  # before and after each dequeue, and after each job
    assert stamps_for(3600) == 1  # the first; the rest within the hour are skipped


def succeeded(job, connection, result) -> None:
    """A success callback: RQ stamps the job's heartbeat once more before running it."""


def test_under_a_stream_of_jobs_the_worker_asks_about_suspension_at_most_once_a_second(
    app, monkeypatch
):
    """RQ asks Redis whether workers are suspended (`rq suspend`) before every dequeue, a
    round trip per job: spaced out, and a suspended worker still stops at its first look."""
    import rq.worker.base
    from rq.suspension import resume, suspend

    import worker as worker_module
    from worker import build_worker

    real = rq.worker.base.is_suspended

    def looks_for(every: float) -> int:
        monkeypatch.setattr(worker_module, "SUSPENSION_CHECK_EVERY", every)
        looked = []

        def is_suspended(connection, worker=None):
            looked.append(1)
            return real(connection, worker)

        monkeypatch.setattr(rq.worker.base, "is_suspended", is_suspended)
        for _ in range(10):
            get_queue("default").enqueue(worker_ping)
        work_here(build_worker(app, ["default"]))
        assert get_queue("default").count == 0
        return len(looked)

    assert looks_for(0) >= 10  # before each dequeue
    assert looks_for(3600) == 1  # the first; the rest within the hour are skipped
    suspend(get_redis())
    try:
        get_queue("default").enqueue(worker_ping)
        work_here(build_worker(app, ["default"]))  # burst: a suspended worker leaves
        assert get_queue("default").count == 1
    finally:
        resume(get_redis())


def test_a_job_is_stamped_once_more_when_it_ends_only_for_its_callback(app, monkeypatch):
    """RQ stamps a job's heartbeat when it returns, to cover its success or failure callback;
    without one, its outcome is recorded at once and that stamp is a round trip saved."""
    from rq import Callback

    from worker import build_worker

    def stamps_of(**callbacks) -> int:
        job = get_queue("default").enqueue(worker_ping, **callbacks)
        worker = build_worker(app, ["default"])
        stamped, plain_hset = [], worker.connection.hset

        def hset(name, key=None, value=None, *args, **kwargs):
            if name == job.key and (
                key == "last_heartbeat" or "last_heartbeat" in (kwargs.get("mapping") or {})
            ):
                stamped.append(name)
            return plain_hset(name, key, value, *args, **kwargs)

        monkeypatch.setattr(worker.connection, "hset", hset)
        work_here(worker)
        job.refresh()
        assert job.get_status() == JobStatus.FINISHED
        assert job.ended_at is not None and job.ended_at >= job.started_at
        return len(stamped)

    assert stamps_of(on_success=Callback(succeeded)) == 1
    assert stamps_of() == 0
