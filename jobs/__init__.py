"""Background jobs: plain module-level functions taking ids, run by worker.py in an app context."""

from __future__ import annotations

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from extensions import get_redis

WAITING_STATES = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


def job_is_waiting(job_id: str) -> bool:
    """True while the job is queued, running or scheduled for a retry (Redis errors raise)."""
    try:
        return Job.fetch(job_id, connection=get_redis()).get_status() in WAITING_STATES
    except NoSuchJobError:
        return False
