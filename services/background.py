"""The background jobs as seen from below jobs/: each one's id, queue and options, enqueued by
the job's dotted path, and whether a job will really run.

Everything that enqueues (the ingresses, services, the sweeps) comes here, so a job's id is
built in one place and nothing below jobs/ imports jobs/ (tests/unit/test_import_rules.py).
Callers decide what a Redis error means to them; these functions let it raise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from weakref import WeakKeyDictionary

from redis import Redis
from redis.client import Pipeline
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus, Retry

from extensions import get_queue, get_redis

# Our workers stamp a running job's heartbeat this often (worker.py); a started job whose
# stamp is older than JOB_SILENT_AFTER belongs to a worker that died.
JOB_HEARTBEAT_SECONDS = 5
JOB_SILENT_AFTER = timedelta(seconds=4 * JOB_HEARTBEAT_SECONDS)

# Replies: 4 retries over ~40 minutes for a 4xx answer or a network error.
SEND_RETRY_INTERVALS = [30, 120, 600, 1800]
IMAP_POLL_TIMEOUT = 600


def processing_job_id(inbound_email_pk: int) -> str:
    return f"process-inbound-{inbound_email_pk}"


def send_job_id(message_pk: int) -> str:
    return f"send-message-{message_pk}"


def poll_job_id(inbox_pk: int) -> str:
    return f"imap-poll-{inbox_pk}"


def enqueue_processing(inbound_email_pk: int, *, once: bool = False) -> bool:
    """Queue the message's processing job; True unless `once` found one already there.

    With `once`, "no job of this id yet" is checked and the job written and pushed in one
    atomic step in Redis (RQ's unique enqueue, a Lua script): the ingress queues a new row's
    job so, and two posts of the same message racing to queue it cannot both push it.
    Without, an existing record of the id (a job that will not run any more) is replaced."""
    queue = get_queue("inbound")
    options = {
        "job_id": processing_job_id(inbound_email_pk),
        "job_timeout": 300,
        "result_ttl": 3600,
        "failure_ttl": 7 * 24 * 3600,
        "retry": Retry(max=3, interval=[10, 60, 300]),
    }
    if not once:
        queue.enqueue(PROCESS_INBOUND, inbound_email_pk, **options)
        return True
    try:
        with queue.connection.pipeline() as pipe:
            queue.enqueue(PROCESS_INBOUND, inbound_email_pk, unique=True, pipeline=pipe, **options)
            _send_unless_only_the_queue_set(queue, pipe)
    except DuplicateJobError:
        return False
    return True


PROCESS_INBOUND = "jobs.process_inbound.process_inbound_email"

# Per Redis client, the queue keys it has added to RQ's set of queues (`rq:queues`, what
# `rq info` lists). RQ adds the queue's key on every enqueue, in a round trip of its own
# before a unique enqueue's script; once per client is enough for a set. (Should Redis lose
# its data meanwhile, only `rq info` misses the queue until the next restart: workers are
# told their queues' names.)
_queues_listed: WeakKeyDictionary[Redis, set[str]] = WeakKeyDictionary()


def _send_unless_only_the_queue_set(queue: Queue, pipe: Pipeline) -> None:
    """A unique enqueue runs its script at once and leaves only the queue-set write in the
    pipeline it is given: send that the first time per client and queue. Anything else
    left there (an RQ that starts using the pipeline for the job too) is always sent."""
    listed = _queues_listed.setdefault(queue.connection, set())
    if len(pipe.command_stack) != 1 or queue.key not in listed:
        pipe.execute()
        listed.add(queue.key)


def enqueue_send(message_pk: int) -> None:
    get_queue("outbound").enqueue(
        "jobs.send_message.send_message",
        message_pk,
        job_id=send_job_id(message_pk),
        job_timeout=120,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        retry=Retry(max=len(SEND_RETRY_INTERVALS), interval=SEND_RETRY_INTERVALS),
    )


def enqueue_poll(inbox_pk: int) -> None:
    get_queue("default").enqueue(
        "jobs.imap_poll.poll_inbox",
        inbox_pk,
        job_id=poll_job_id(inbox_pk),
        job_timeout=IMAP_POLL_TIMEOUT,
        result_ttl=600,
        failure_ttl=24 * 3600,
    )


def refetch_job_id(inbound_email_pk: int) -> str:
    return f"imap-refetch-{inbound_email_pk}"


def enqueue_refetch(inbound_email_pk: int) -> None:
    """Fetch again the IMAP message an import recorded as failed (jobs/imap_refetch.py);
    retried while a poll of the same inbox holds its lock."""
    get_queue("default").enqueue(
        "jobs.imap_refetch.refetch_unfetched",
        inbound_email_pk,
        job_id=refetch_job_id(inbound_email_pk),
        job_timeout=IMAP_POLL_TIMEOUT,
        result_ttl=600,
        failure_ttl=24 * 3600,
        retry=Retry(max=3, interval=[30, 120, 600]),
    )


def enqueue_reset_email(email: str) -> None:
    get_queue("default").enqueue(
        "services.password_reset.send_reset_email",
        email,
        job_timeout=60,
        retry=Retry(max=3, interval=[30, 120, 600]),  # an SMTP hiccup must not lose it
    )


def enqueue_rule_notification(message_pk: int, user_id: int) -> None:
    """A rule's "Notify by email" (services/automations/notify.py), after the commit."""
    get_queue("default").enqueue(
        "services.automations.notify.notify_by_email",
        message_pk,
        user_id,
        job_timeout=60,
        retry=Retry(max=3, interval=[30, 120, 600]),  # an SMTP hiccup must not lose it
    )


def enqueue_oauth_notice(inbox_pk: int) -> None:
    """The admins' "reconnect this mailbox" email (services/oauth_notice.py)."""
    get_queue("default").enqueue(
        "services.oauth_notice.send_reconnect_notice",
        inbox_pk,
        job_timeout=60,
        retry=Retry(max=3, interval=[30, 120, 600]),  # an SMTP hiccup must not lose it
    )


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
