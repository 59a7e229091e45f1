"""Exactly one cron scheduler acts, however many are started: a Redis lock with a TTL.

rq 3.0.0's CronScheduler has no such lock (two of them enqueue every periodic job twice), so
this subclass adds one. The scheduler holding the lock renews it every third of its TTL and
enqueues; any other one checks as often and waits, so an operator can start a scheduler on
two machines and the second takes over within about SCHEDULER_LOCK_SECONDS of the first
dying. A lone scheduler holds the lock silently: only a change of role is logged at INFO.
"""

from __future__ import annotations

import logging

from redis import Redis
from rq.cron import CronJob, CronScheduler

LOCK_KEY = "threadline:cron-scheduler:lock"
# Renew or release only a lock this scheduler still holds (another may have taken it over).
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""

log = logging.getLogger(__name__)


class SingleCronScheduler(CronScheduler):
    """RQ's cron scheduler that enqueues only while it holds the scheduler lock."""

    def __init__(self, connection: Redis, lock_seconds: int, **kwargs):
        super().__init__(connection=connection, **kwargs)
        self.lock_seconds = lock_seconds
        self.holds_lock = False
        self.waiting = False  # set once another scheduler was seen holding the lock
        self.stop_requested = False  # worker.py: a stop while Redis is away ends the process
        self._renew = connection.register_script(_RENEW)
        self._release = connection.register_script(_RELEASE)

    def enqueue_jobs(self) -> list[CronJob]:
        if not self.hold_lock():
            return []
        return super().enqueue_jobs()

    def calculate_sleep_interval(self) -> float:
        """Wake often enough to renew the lock (or to notice it is free)."""
        return min(super().calculate_sleep_interval(), self.lock_seconds / 3)

    def _request_stop(self, signum, frame) -> None:
        self.stop_requested = True
        super()._request_stop(signum, frame)

    def register_death(self, pipeline=None) -> None:
        self.release_lock()  # a clean stop hands over at once, not after the TTL
        super().register_death(pipeline)

    def release_lock(self) -> None:
        if self.holds_lock:
            self._release(keys=[LOCK_KEY], args=[self.name])
            self.holds_lock = False

    def hold_lock(self) -> bool:
        """Renew the lock, or take it when it is free; True while this one may enqueue."""
        ttl_ms = int(self.lock_seconds * 1000)
        # Worth a warning only if another one took it (after a Redis outage it is just retaken).
        lost = self.holds_lock
        if self.holds_lock:
            if self._renew(keys=[LOCK_KEY], args=[self.name, ttl_ms]):
                return True
            self.holds_lock = False
        if self.connection.set(LOCK_KEY, self.name, nx=True, px=ttl_ms):
            self.holds_lock = True
            if self.waiting:
                log.info("Scheduler %s took over the periodic jobs", self.name)
            else:
                log.debug("Scheduler %s holds the scheduler lock", self.name)
            self.waiting = False
            return True
        if lost:
            log.warning(
                "Scheduler %s lost the scheduler lock (not renewed within %s s, paused?): "
                "another scheduler runs the periodic jobs",
                self.name,
                self.lock_seconds,
            )
        if not self.waiting:
            holder = self.connection.get(LOCK_KEY)
            log.info(
                "Another scheduler (%s) runs the periodic jobs; scheduler %s waits and takes "
                "over within %s s of it stopping",
                holder.decode() if isinstance(holder, bytes) else holder,
                self.name,
                self.lock_seconds,
            )
            self.waiting = True
        return False
