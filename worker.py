"""RQ worker and cron scheduler: the app is built once, every job runs in an app context.

python worker.py            work on every queue (with RQ's scheduler for retries/delays)
python worker.py --burst    work until the queues are empty, then exit
python worker.py --cron     run RQ's cron scheduler for jobs/schedule.py (one acts; others wait)
"""

from __future__ import annotations

import argparse
import sys

from flask import Flask
from rq import SimpleWorker, Worker

from config import ConfigError
from extensions import QUEUE_NAMES, db, get_redis, get_settings
from runtime.logs import job_context, rq_log_level
from runtime.single_scheduler import SingleCronScheduler


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


class AppWorker(AppContextMixin, Worker):
    """Forks a work horse per job: a crashing job never takes the worker down."""

    def perform_job(self, *args, **kwargs):
        # A forked horse must not reuse the parent's pooled database sockets.
        with self.flask_app.app_context():
            db.engine.dispose(close=False)
        return super().perform_job(*args, **kwargs)


class AppSimpleWorker(AppContextMixin, SimpleWorker):
    """Runs jobs in-process: used by tests and on platforms without fork."""


def build_worker(app: Flask, queues=QUEUE_NAMES, simple: bool = False) -> Worker:
    cls = AppSimpleWorker if simple else AppWorker
    with app.app_context():
        connection = get_redis()
    worker = cls(list(queues), connection=connection)
    worker.flask_app = app
    return worker


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
    build_cron_scheduler(app).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Threadline background worker")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--simple", action="store_true", help="run jobs in-process (no fork)")
    parser.add_argument("--cron", action="store_true", help="run the periodic job scheduler")
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
    worker = build_worker(app, args.queues, simple=args.simple)
    # RQ sets its loggers' level from this; ours keeps an idle worker quiet below DEBUG.
    worker.work(
        burst=args.burst, with_scheduler=not args.burst, logging_level=rq_logging_level(app)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
