"""Background jobs: plain module-level functions taking ids, run by worker.py in an app context."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from extensions import get_redis

# Our workers stamp a running job's heartbeat this often (worker.py); a started job whose
# stamp is older than JOB_SILENT_AFTER belongs to a worker that died.
JOB_HEARTBEAT_SECONDS = 5
JOB_SILENT_AFTER = timedelta(seconds=4 * JOB_HEARTBEAT_SECONDS)


def job_is_waiting(job_id: str) -> bool:
    """True while the job will really run or is running (Redis errors raise).

    RQ's recorded status alone is not trusted: a job popped by a worker that was killed
    before it ran still says `queued` while it is in no queue, and a job whose worker died
    still says `started`. So a queued job must be in its queue's list, a started one must
    have a recent heartbeat; a job scheduled (a retry's wait) or deferred is waiting."""
    connection = get_redis()
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status == JobStatus.QUEUED:
        return connection.lpos(Queue(job.origin, connection=connection).key, job_id) is not None
    if status == JobStatus.STARTED:
        stamp = job.last_heartbeat or job.started_at
        return stamp is not None and _aware(stamp) > datetime.now(UTC) - JOB_SILENT_AFTER
    return status in (JobStatus.SCHEDULED, JobStatus.DEFERRED)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
