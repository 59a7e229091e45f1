"""RQ worker and cron scheduler: the app is built once, every job runs in an app context.

python worker.py            work on every queue (with RQ's scheduler for retries/delays),
                            each job in this process (AppSimpleWorker)
python worker.py --fork     the same, each job in a forked work horse (RQ's Worker; slower)
python worker.py --burst    work until the queues are empty, then exit
python worker.py --cron     run RQ's cron scheduler for jobs/schedule.py (one acts; others wait)
python worker.py --idle     hold an IMAP IDLE connection per IMAP inbox (jobs/imap_idle.py)

Both outlive a Redis outage: they log it once, wait for Redis and carry on
(runtime/redis_outage.py).

Why jobs run in-process by default: RQ's forking Worker starts a work horse per job, which
rebuilds the database connection and SQLAlchemy's caches every time and cost the inbound
job ~5x its CPU (BENCHMARKS.md, "Inbound processing", times both as shipped). What the fork
gave is kept: a job's timeout is still enforced (RQ's SIGALRM death penalty, then a hard
deadline that ends the process), its heartbeat is stamped while it runs (a thread, as the
forking parent did), and a job that kills the process (os._exit, SIGKILL, out of memory)
takes one worker down until its supervisor starts it again (honcho in runtime/restarting.py,
systemd's Restart=always); its message is recovered by the leases and the sweeps as for any
dead worker. A fresh app context per job keeps its database session from the next job.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import faulthandler
import importlib
import logging
import pkgutil
import signal
import sys
import time
from collections.abc import Iterator

from flask import Flask
from rq import Queue, SimpleWorker, Worker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import StopRequested
from rq.utils import now as rq_now

from config import ConfigError
from extensions import QUEUE_NAMES, db, get_redis, get_settings
from runtime.beats import Beats
from runtime.logs import job_context, rq_log_level
from runtime.redis_outage import REDIS_DOWN, RedisOutage
from runtime.single_scheduler import SingleCronScheduler
from runtime.worker_scheduler import WorkerScheduler
from services.background import JOB_HEARTBEAT_SECONDS

# How often a worker checks whether RQ's scheduler lock is free (RQ: every 10 minutes), so
# another worker's scheduler takes over within about a minute of the holder dying.
MAINTENANCE_SECONDS = 60
# An in-process job still running this long after its timeout ignored RQ's SIGALRM (it
# swallowed the exception, or is stuck in C code that never returns to Python): the process
# ends itself, as RQ's forking worker kills a horse at timeout + 60 s, and is started again.
HARD_DEADLINE_GRACE = 60
STOP_WAIT_SECONDS = 10  # a job's end waits at most this for a heartbeat stamp under way
# RQ stamps the worker's own heartbeat (three Redis round trips) before and after each dequeue
# and after each job: under a stream of short jobs, at most once this often is enough for a
# key that lives for minutes. Stamps with their own expiry or in a pipeline always go out.
WORKER_HEARTBEAT_EVERY = 1.0
# RQ asks Redis whether workers are suspended (`rq suspend`, a round trip with the worker's
# heartbeat) before every dequeue: under a stream of jobs, once this often is enough.
SUSPENSION_CHECK_EVERY = 1.0

log = logging.getLogger("worker")  # not __main__ when run as `python worker.py`


class LostRedis(Exception):
    """Redis went away under the blocking pop: RQ would catch a ConnectionError there and
    retry forever, logging an error each time."""


class AppQueue(Queue):
    """The worker's queues: a lost connection under the blocking pop leaves the work loop."""

    @classmethod
    def dequeue_any(cls, *args, **kwargs):
        try:
            return super().dequeue_any(*args, **kwargs)
        except REDIS_DOWN as exc:
            raise LostRedis(str(exc)) from exc


class AppContextMixin:
    """Wrap each job in a fresh app context, so the DB session is clean and torn down per job;
    every line logged about the job, here and in its forked work horse, carries its id."""

    flask_app: Flask

    def execute_job(self, job, queue):
        with job_context(job.id):
            return super().execute_job(job, queue)

    def perform_job(self, *args, **kwargs):
        with self.flask_app.app_context():
            return super().perform_job(*args, **kwargs)


class RedisOutageMixin:
    """Leave RQ's work loop as a stop does when Redis goes away, so run_worker can wait for it
    and start a fresh worker. RQ itself logs an error per retry while idle, and quits with a
    traceback when Redis is lost anywhere else. Its scheduler process dies with the worker."""

    outage: RedisOutage
    redis_lost = False
    stop_requested = False

    @contextlib.contextmanager
    def _leave_if_redis_is_lost(self) -> Iterator[None]:
        try:
            yield
        except (LostRedis, *REDIS_DOWN) as exc:
            if self.is_horse:  # a job's own failure: RQ records it
                raise
            self._lose_redis(exc)
            raise StopRequested from exc  # RQ breaks out of its loop and tears down

    def _lose_redis(self, exc: BaseException) -> None:
        self.redis_lost = True
        if not self.stop_requested:
            self.outage.begin(exc)

    _suspension_checked_at = float("-inf")

    def check_for_suspension(self, burst):
        if time.monotonic() - self._suspension_checked_at < SUSPENSION_CHECK_EVERY:
            return
        with self._leave_if_redis_is_lost():
            super().check_for_suspension(burst)
        self._suspension_checked_at = time.monotonic()

    def run_maintenance_tasks(self):
        with self._leave_if_redis_is_lost():
            return super().run_maintenance_tasks()

    _plain_heartbeat_at = float("-inf")

    def heartbeat(self, timeout=None, pipeline=None):
        if timeout is None and pipeline is None:
            if time.monotonic() - self._plain_heartbeat_at < WORKER_HEARTBEAT_EVERY:
                return
            self._plain_heartbeat_at = time.monotonic()
        with self._leave_if_redis_is_lost():
            return super().heartbeat(timeout, pipeline)

    def set_state(self, state, pipeline=None):
        # RQ writes "idle" twice between two jobs (after one, before the next dequeue): the
        # second, unchanged, is a round trip per job that says nothing new.
        if pipeline is None and state == self._state:
            return
        with self._leave_if_redis_is_lost():
            return super().set_state(state, pipeline)

    def dequeue_job_and_maintain_ttl(self, *args, **kwargs):
        with self._leave_if_redis_is_lost():
            return super().dequeue_job_and_maintain_ttl(*args, **kwargs)

    def execute_job(self, job, queue):
        with self._leave_if_redis_is_lost():
            return super().execute_job(job, queue)

    def work(self, *args, **kwargs) -> bool:
        try:
            return super().work(*args, **kwargs)
        except REDIS_DOWN as exc:  # lost while starting up, before RQ's work loop
            self._lose_redis(exc)
            self.teardown()
            return False

    def request_stop(self, signum, frame):
        self.stop_requested = True  # a stop while Redis is away still ends the process
        super().request_stop(signum, frame)

    def teardown(self):
        """Without Redis there is nothing to unregister (the worker's key expires): only stop
        the scheduler process and the pubsub thread."""
        if not self.redis_lost:
            try:
                return super().teardown()
            except REDIS_DOWN as exc:  # stopped just as Redis went away
                self._lose_redis(exc)
        if self.scheduler:
            self.stop_scheduler()
        if self.pubsub_thread:
            self.pubsub_thread.stop()

    def _pubsub_exception_handler(self, exc, pubsub, pubsub_thread):
        """Quiet while Redis is away (the work loop reports it once); RQ logs every retry."""
        if isinstance(exc, REDIS_DOWN):
            time.sleep(2)
        else:
            super()._pubsub_exception_handler(exc, pubsub, pubsub_thread)

    def _start_scheduler(
        self,
        burst=False,
        logging_level="INFO",
        date_format=DEFAULT_LOGGING_DATE_FORMAT,
        log_format=DEFAULT_LOGGING_FORMAT,
    ):
        """RQ's own, but with a scheduler process that dies with this worker."""
        if burst:  # no process: RQ enqueues the due jobs once, in this one
            return super()._start_scheduler(burst, logging_level, date_format, log_format)
        self.scheduler = WorkerScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()
        if self.scheduler.acquired_locks:
            self.scheduler.start()


class AppWorker(AppContextMixin, RedisOutageMixin, Worker):
    """`python worker.py --fork`: a work horse per job, so a crashing job never takes the
    worker down, at ~5x the CPU per job (see the module's docstring)."""

    def perform_job(self, *args, **kwargs):
        # A forked horse must not reuse the parent's pooled database sockets.
        with self.flask_app.app_context():
            db.engine.dispose(close=False)
        return super().perform_job(*args, **kwargs)


class JobHeartbeat:
    """Stamps the running job's heartbeat from a thread while the job runs in the main one, as
    RQ's forking worker does from its parent while the horse works: job_is_waiting
    (services/background.py) takes a started job without a recent stamp for a dead worker's,
    and the sweeps would hand a long job's work to another worker.

    One thread per worker (runtime/beats.py), told which job to stamp. The stamp stops before
    the job's outcome is recorded (stop() waits for a stamp under way), so a late one never
    puts a finished job back in RQ's started registry."""

    def __init__(self, worker: SimpleWorker):
        self.worker = worker
        self._beats = Beats("job-heartbeat")

    def start(self, job, execution) -> None:
        context = contextvars.copy_context()  # its log lines carry the job id too
        warned = False

        def stamp() -> bool:
            nonlocal warned
            try:
                context.run(self.worker.maintain_heartbeats, job, execution)
            except Exception as exc:  # noqa: BLE001 - Redis away: the job's own calls say so
                if not warned:  # once per job: an outage is reported by the worker
                    log.warning("job heartbeat not stamped: %s", exc)
                    warned = True
            return True

        self._beats.keep("job", stamp, self.worker.job_monitoring_interval)

    def stop(self) -> None:
        # Bounded: a stamp hanging on a Redis that stopped answering must not hang the job.
        self._beats.drop("job", wait=STOP_WAIT_SECONDS)


class AppSimpleWorker(AppContextMixin, RedisOutageMixin, SimpleWorker):
    """Runs jobs in this process, the app and its database pool built once: what
    `python worker.py` runs (see the module's docstring for what replaces the fork).

    Around each job: the heartbeat thread, and a hard deadline at timeout +
    HARD_DEADLINE_GRACE. The deadline is faulthandler's watchdog: a C thread that needs no
    GIL, so a job stuck in C code holding it is ended too; it dumps every thread's traceback
    to stderr and exits with status 1, and the job's lease runs out for the sweep. SIGALRM
    (RQ's UnixSignalDeathPenalty, the main thread's) stays the ordinary timeout."""

    hard_deadline_grace: int | None = HARD_DEADLINE_GRACE  # None: no hard deadline
    _job_heartbeat: JobHeartbeat | None = None  # made at the first job
    _watching = False

    def perform_job(self, job, queue, execution):
        self._arm_hard_deadline(job)
        if self._job_heartbeat is None:
            self._job_heartbeat = JobHeartbeat(self)
        self._watching = True
        self._job_heartbeat.start(job, execution)  # first stamp after RQ marks it started
        return super().perform_job(job, queue, execution)

    def handle_execution_ended(self, job, queue, heartbeat_ttl):
        """The job returned or raised: stop its heartbeat and deadline before RQ records how.
        RQ's last stamp of the job's heartbeat covers its success or failure callback; with
        none, the outcome is recorded next and the stamp is a round trip that says nothing."""
        self._end_job_watch()
        if job.success_callback is None and job.failure_callback is None:
            job.ended_at = rq_now()
            return None
        return super().handle_execution_ended(job, queue, heartbeat_ttl)

    def execute_job(self, job, queue):
        try:
            return super().execute_job(job, queue)
        finally:
            self._end_job_watch()  # whatever path left the job (a cold shutdown, Redis lost)

    def _arm_hard_deadline(self, job) -> None:
        timeout = job.timeout or self.queue_class.DEFAULT_TIMEOUT
        if self.hard_deadline_grace is None or timeout is None or timeout < 0:
            return
        try:
            faulthandler.dump_traceback_later(
                timeout + self.hard_deadline_grace, exit=True, file=sys.__stderr__
            )
        except (AttributeError, ValueError, RuntimeError, OSError) as exc:  # no usable stderr
            log.warning("no hard deadline for job %s: %s", job.id, exc)

    def _end_job_watch(self) -> None:
        if self.hard_deadline_grace is not None:
            faulthandler.cancel_dump_traceback_later()
        if self._watching and self._job_heartbeat is not None:
            self._job_heartbeat.stop()
        self._watching = False


def import_jobs() -> None:
    """Every job module (and what it imports: dkimpy and dnspython for the sender check,
    ~85 ms) imported once in the parent, so a forked work horse inherits them instead of
    importing them again for each job (it doubled `--fork`'s CPU per message)."""
    import jobs

    for module in pkgutil.iter_modules(jobs.__path__):
        importlib.import_module(f"jobs.{module.name}")


def build_worker(app: Flask, queues=QUEUE_NAMES, simple: bool = True, fork: bool = False) -> Worker:
    """The shipped worker runs jobs in-process (AppSimpleWorker); `fork` opts into RQ's
    forking Worker. `simple` is kept for callers that ask for in-process by name."""
    cls = AppWorker if fork or not simple else AppSimpleWorker
    if cls is AppWorker:
        import_jobs()
    with app.app_context():
        connection = get_redis()
        url = get_settings().effective_redis_url
    worker = cls(
        list(queues),
        connection=connection,
        queue_class=AppQueue,
        maintenance_interval=MAINTENANCE_SECONDS,
        # A running job's heartbeat this often: job_is_waiting (services/background.py)
        # tells a live job by it.
        job_monitoring_interval=JOB_HEARTBEAT_SECONDS,
    )
    worker.flask_app = app
    worker.outage = RedisOutage(url, "worker")
    return worker


def run_worker(app: Flask, queues: list[str], burst: bool = False, fork: bool = False) -> None:
    """Work until stopped. When Redis goes away, wait for it and go on with a fresh worker: RQ's
    cannot resume a work loop it left."""
    while True:
        worker = build_worker(app, queues, fork=fork)
        # RQ sets its loggers' level from this; ours keeps an idle worker quiet below DEBUG.
        worker.work(burst=burst, with_scheduler=not burst, logging_level=rq_logging_level(app))
        if not worker.redis_lost or worker.stop_requested or not worker.outage.wait():
            return
        with contextlib.suppress(*REDIS_DOWN):
            worker.register_death()  # gone from RQ's worker list now, not when its key expires


def rq_logging_level(app: Flask) -> str:
    with app.app_context():
        return rq_log_level(get_settings().log_level)


def build_cron_scheduler(app: Flask) -> SingleCronScheduler:
    with app.app_context():
        connection = get_redis()
        lock_seconds = get_settings().scheduler_lock_seconds
    scheduler = SingleCronScheduler(
        connection, lock_seconds=lock_seconds, logging_level=rq_logging_level(app)
    )
    scheduler.load_config_from_file("jobs.schedule")
    return scheduler


def run_cron(app: Flask) -> None:
    """Run the cron scheduler until stopped. When Redis goes away, wait for it and go on with
    the same scheduler: what it has enqueued is not enqueued again."""
    scheduler = build_cron_scheduler(app)
    with app.app_context():
        outage = RedisOutage(get_settings().effective_redis_url, "cron scheduler")
    while True:
        try:
            scheduler.start()
            return
        except REDIS_DOWN as exc:
            if scheduler.stop_requested:
                return
            outage.begin(exc)
            if not outage.wait():
                return


def run_idle(app: Flask) -> None:
    """Watch the IMAP inboxes with IDLE until SIGTERM or Ctrl-C (jobs/imap_idle.py). A
    Redis or database outage stops no watcher: each keeps what it owes and catches up."""
    from jobs.imap_idle import IdleSupervisor

    supervisor = IdleSupervisor(app)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: supervisor.stop())
    supervisor.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Threadline background worker")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument(
        "--fork",
        action="store_true",
        help="fork a work horse per job (RQ's Worker): a job's memory is freed with its "
        "process, at ~5x the CPU per job",
    )
    # The default now (jobs in-process); still accepted from older command lines.
    parser.add_argument("--simple", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cron", action="store_true", help="run the periodic job scheduler")
    parser.add_argument("--idle", action="store_true", help="hold IMAP IDLE connections")
    parser.add_argument("--queues", nargs="*", default=list(QUEUE_NAMES))
    args = parser.parse_args(argv)

    from app import create_app
    from runtime.file_modes import use_owner_only_umask

    use_owner_only_umask()  # before anything is created: Redis' or SQLite's files, stored mail
    try:
        app = create_app()
    except ConfigError as exc:
        print(exc.format_message(), file=sys.stderr)
        return 2
    if args.cron:
        run_cron(app)
        return 0
    if args.idle:
        run_idle(app)
        return 0
    run_worker(app, args.queues, burst=args.burst, fork=args.fork)
    return 0


if __name__ == "__main__":
    sys.exit(main())
