"""Real `python worker.py` and `python worker.py --cron` processes on a private Redis that the
tests stop and start again: they wait out an outage (one line each way) and go on working, and
a SIGKILLed worker's scheduler process dies with it instead of swallowing the next job."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from rq import Worker
from rq.exceptions import SchedulerNotFound
from rq.scheduler import RQScheduler
from sqlalchemy import func, select

from runtime.embedded_redis import EmbeddedRedis
from tests.support.inbound import post_relay
from tests.support.waiting import wait_for
from tests.support.worker_processes import WorkerProcesses

pytestmark = [pytest.mark.slow, pytest.mark.db, pytest.mark.timeout(300)]

OUTAGE_SECONDS = 20
# The sweep re-enqueues pending mail only some time after it arrived, and runs on an interval.
DELIVERED_WITHIN = 150


@pytest.fixture
def private_redis(tmp_path) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own, stopped and started again at the same URL; its AOF keeps
    the queues across. The socket lives in a short path (unix sockets allow ~107 bytes)."""
    socket_dir = tempfile.mkdtemp(prefix="outage-")
    server = EmbeddedRedis(os.path.join(socket_dir, "redis.sock"), str(tmp_path / "redis"))
    server.start()
    yield server
    server.stop()
    shutil.rmtree(socket_dir, ignore_errors=True)


@pytest.fixture
def app_config(app_config, private_redis) -> dict:
    return {**app_config, "REDIS_URL": private_redis.url}


@pytest.fixture
def processes(app, app_config, private_redis, tmp_path) -> Iterator[WorkerProcesses]:
    """Stopped before `app` empties the database and Redis (which must be running then)."""
    procs = WorkerProcesses(app_config, tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()
        if private_redis.process.poll() is not None:
            private_redis.start()


def raw_message(n: int) -> bytes:
    return (
        "From: Cora Customer <cora@example.net>\r\n"
        "To: support@example.com\r\n"
        f"Subject: Outage test {n}\r\n"
        f"Message-ID: <outage-{n}-{uuid.uuid4().hex}@example.net>\r\n"
        "Date: Mon, 30 Nov 2026 08:00:00 +0000\r\n"
        "\r\n"
        f"Message {n}: is anyone there?\r\n"
    ).encode()


def statuses() -> dict[str, int]:
    from extensions import db
    from models import InboundEmail

    db.session.remove()  # a fresh snapshot: the workers write from other processes
    rows = db.session.execute(
        select(InboundEmail.status, func.count()).group_by(InboundEmail.status)
    ).all()
    return dict(rows)


def messages_per_inbound_email() -> list[int]:
    from extensions import db
    from models import Message

    db.session.remove()
    return list(
        db.session.scalars(
            select(func.count())
            .select_from(Message)
            .where(Message.inbound_email_id.is_not(None))
            .group_by(Message.inbound_email_id)
        )
    )


def all_delivered(count: int) -> bool:
    return statuses() == {"delivered": count}


def unreachable_lines(procs: WorkerProcesses, name: str) -> list[str]:
    return [e["message"] for e in procs.lines(name) if "unreachable" in e["message"]]


def pid_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not yet reaped by its parent, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except FileNotFoundError:
        return None


def scheduling_worker(connection: Redis) -> int | None:
    """The pid of the worker whose scheduler process holds RQ's scheduler lock, if any."""
    name = connection.get(RQScheduler.get_locking_key("default"))
    if name is None:
        return None
    try:
        return parent_of(RQScheduler.fetch(name.decode(), connection).pid)
    except SchedulerNotFound:  # locked, not yet registered
        return None


def idle_workers(connection: Redis) -> dict[int, str]:
    return {w.pid: w.name for w in Worker.all(connection=connection) if w.get_state() == "idle"}


def test_worker_and_cron_wait_out_a_redis_outage_and_deliver_everything_once(
    app, client, inbox, private_redis, processes
):
    connection = Redis.from_url(private_redis.url)
    worker = processes.start("worker")
    cron = processes.start("cron", "--cron")
    assert wait_for(lambda: worker.pid in idle_workers(connection), timeout=30), processes.logs()

    private_redis.stop()
    stopped = time.monotonic()
    for n in range(5):
        post_relay(client, raw_message(n))  # accepted: stored and recorded, enqueue failed
    assert statuses() == {"pending": 5}
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
    assert worker.poll() is None and cron.poll() is None, processes.logs()
    private_redis.start()

    delivered = wait_for(lambda: all_delivered(5), timeout=DELIVERED_WITHIN, interval=1)
    assert delivered, (statuses(), processes.logs())
    assert messages_per_inbound_email() == [1] * 5, processes.logs()
    assert worker.poll() is None and cron.poll() is None, processes.logs()
    for name in ("worker", "cron"):
        warnings = unreachable_lines(processes, name)
        assert len(warnings) == 1, processes.logs()
        assert "waits and reconnects" in warnings[0] and private_redis.url in warnings[0]
        back = [e for e in processes.lines(name) if "answers again" in e["message"]]
        assert [e["level"] for e in back] == ["INFO"], processes.logs()
        assert not [e for e in processes.lines(name) if "exception" in e], processes.logs()

    # A stop during the next outage is still a clean, prompt one.
    private_redis.stop()
    assert wait_for(lambda: len(unreachable_lines(processes, "worker")) == 2, timeout=30), (
        processes.logs()
    )
    for proc in (worker, cron):
        proc.terminate()
    assert worker.wait(timeout=10) == 0 and cron.wait(timeout=10) == 0, processes.logs()


def test_a_killed_workers_scheduler_process_dies_with_it_and_no_job_is_swallowed(
    app, client, inbox, private_redis, processes
):
    connection = Redis.from_url(private_redis.url)
    first = processes.start("worker-a")  # alone, so its scheduler process takes RQ's lock
    assert wait_for(lambda: first.pid in idle_workers(connection), timeout=30), processes.logs()
    assert wait_for(lambda: scheduling_worker(connection) == first.pid, timeout=10)
    name = connection.get(RQScheduler.get_locking_key("default")).decode()
    scheduler = RQScheduler.fetch(name, connection).pid
    second = processes.start("worker-b")
    assert wait_for(lambda: second.pid in idle_workers(connection), timeout=30), processes.logs()
    processes.start("cron", "--cron")

    os.kill(first.pid, signal.SIGKILL)  # the main process only, as the OOM killer does
    first.wait()
    assert wait_for(lambda: not pid_alive(scheduler), timeout=10), (
        f"scheduler process {scheduler} outlived its worker",
        processes.logs(),
    )

    for n in range(5):
        post_relay(client, raw_message(n))
    delivered = wait_for(lambda: all_delivered(5), timeout=90, interval=1)
    assert delivered, (statuses(), processes.logs())
    assert messages_per_inbound_email() == [1] * 5, processes.logs()
    assert second.poll() is None, processes.logs()
    # The dead worker's scheduler released RQ's lock: the other one schedules within a minute.
    took_over = wait_for(lambda: scheduling_worker(connection) == second.pid, timeout=75)
    assert took_over, processes.logs()
