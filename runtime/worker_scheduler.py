"""RQ's scheduler process (retries, delayed jobs), made to die with the worker that forked it.

Each worker forks one (rq/scheduler.py, RQScheduler.start). When the worker is SIGKILLed, a
child left running keeps the worker's inherited Redis socket open: the BLPOP the worker had
pending stays registered in Redis, and the next job pushed is sent to that socket, where
nobody reads it. It also keeps RQ's scheduler lock, so no other worker schedules.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from rq.scheduler import RQScheduler

from runtime.redis_outage import REDIS_DOWN

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Have the kernel send `signum` to this process when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")


class WorkerScheduler(RQScheduler):
    """An RQScheduler whose process stops (SIGTERM: it releases its locks) when its worker
    dies, and stops quietly when Redis goes away: its worker reports the outage and starts a
    scheduler again once Redis answers."""

    worker_pid = 0

    def start(self):
        self.worker_pid = os.getpid()
        return super().start()

    def work(self) -> None:
        die_with_parent()
        if os.getppid() != self.worker_pid:  # the worker died before prctl took effect
            return
        try:
            super().work()
        except REDIS_DOWN as exc:
            self.log.debug("Scheduler %s stops: Redis is unreachable (%s)", self.name, exc)
