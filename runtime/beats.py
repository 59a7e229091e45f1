"""One daemon thread that calls each kept beat on its own schedule, for a process's periodic
chores while a job runs: the running job's RQ heartbeat (worker.py) and its row's lease
renewals (services/leases.py).

Starting a thread per job for them cost a short job about 5 % of its time (Thread.start waits
for the new thread to run: on a busy machine a GIL hand-off); the thread here lives with the
process and is told what to beat. drop() waits for a beat of that key under way, so none lands
after the job has recorded its outcome.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable


class Beats:
    def __init__(self, name: str):
        self.name = name
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._kept: dict[Hashable, tuple[Callable[[], bool], float, float]] = {}  # beat, every, due
        self._beating: Hashable | None = None
        self._thread: threading.Thread | None = None

    def keep(self, key: Hashable, beat: Callable[[], bool], every: float) -> None:
        """Call `beat` every `every` seconds, the first time `every` from now, until dropped or
        until it answers False."""
        with self._lock:
            self._kept[key] = (beat, every, time.monotonic() + every)
            self._changed.notify_all()
            if self._thread is None or not self._thread.is_alive():  # first, or after a fork
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def drop(self, key: Hashable, wait: float | None = None) -> None:
        """Stop beating `key`, waiting (at most `wait` seconds, if given) for a beat under way."""
        deadline = None if wait is None else time.monotonic() + wait
        with self._lock:
            self._kept.pop(key, None)
            while self._beating == key:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return
                self._changed.wait(left)

    def keeps(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._kept

    def _run(self) -> None:
        with self._lock:
            while True:
                if not self._kept:
                    self._changed.wait()
                    continue
                key, (beat, every, due) = min(self._kept.items(), key=lambda item: item[1][2])
                left = due - time.monotonic()
                if left > 0:
                    self._changed.wait(left)  # a new key or a drop wakes it early
                    continue
                self._kept[key] = (beat, every, time.monotonic() + every)
                self._beating = key
                self._lock.release()
                try:
                    again = beat()
                finally:
                    self._lock.acquire()
                    self._beating = None
                    self._changed.notify_all()
                if not again and self._kept.get(key, (None,))[0] is beat:
                    del self._kept[key]
