"""The background lines of the process set (worker, scheduler) restarted when they exit.

honcho ends the whole set when any line exits. For the web (and the embedded Redis) that is
right: the user sees it. A worker or the scheduler exits for reasons that pass (a crash, a
SIGKILL, Redis gone for a while), so they are restarted with backoff while the rest runs on.

Why here and not a wrapper per Procfile line: honcho already runs each line from a helper
process that forwards its output; a subclass of its Process restarts the command in that
helper, so the Procfile keeps the commands systemd runs, no extra process stands between,
and honcho's Manager still starts, prints and stops everything. The only thing the helper
must learn is whether an exit is the set stopping: the Manager sets `stopping` before it
signals anyone (ProcessSetManager.terminate), so an exit seen after it is never restarted.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

from honcho.manager import Manager
from honcho.process import Process

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
STABLE_AFTER = 60.0  # a run this long was not a crash loop: the next restart waits 1 s again
CONFIG_ERROR = 2  # every problem was printed; restarting cannot fix it (as the systemd units)


def _ignore(signum, frame) -> None:
    """Ctrl-C reaches this helper too (it is in serve's process group); the Manager stops the
    command. A handler, not SIG_IGN: a restarted command must not inherit ignored signals."""


class RestartingProcess(Process):
    """One Procfile line, started again after it exits unless the set is stopping."""

    def __init__(self, cmd, *, stopping, **kwargs):
        super().__init__(cmd, **kwargs)
        self.stopping = stopping

    def run(self, events=None, ignore_signals=False):
        self._events = events
        signal.signal(signal.SIGINT, _ignore)
        signal.signal(signal.SIGTERM, _ignore)
        delay = FIRST_DELAY
        while True:
            started = time.monotonic()
            returncode = self._run_once()
            if self.stopping.is_set() or returncode == CONFIG_ERROR:
                break
            if time.monotonic() - started >= STABLE_AFTER:
                delay = FIRST_DELAY
            self._send_message(
                f"exited (rc={returncode}); restarting in {delay:g} s, the rest keeps running\n"
            )
            if self.stopping.wait(delay):
                break
            delay = min(delay * 2, MAX_DELAY)
        self._send_message({"returncode": returncode}, type="stop")

    def _run_once(self) -> int:
        """Run the command until its main process exits, forwarding its output."""
        child = self._child = self._child_ctor(self.cmd, env=self.env, cwd=self.cwd)
        self._send_message({"pid": child.pid}, type="start")
        reader = threading.Thread(target=self._forward_output, args=(child.stdout,), daemon=True)
        reader.start()
        returncode = child.wait()
        # Its own children would outlive it holding the pipe (and, for RQ's scheduler child,
        # the dead worker's Redis connection): the command's process group goes with it.
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except OSError:
            pass  # nothing was left
        reader.join()
        child.stdout.close()
        return returncode

    def _forward_output(self, stdout) -> None:
        for line in iter(stdout.readline, b""):
            if not self.quiet:
                self._send_message(line)


class ProcessSetManager(Manager):
    """honcho's Manager, telling restarting lines when the set stops."""

    def __init__(self, printer=None):
        super().__init__(printer)
        self.stopping = multiprocessing.Event()

    def add_restarting_process(self, name, cmd, env=None, cwd=None):
        self._process_ctor = lambda *args, **kwargs: RestartingProcess(
            *args, stopping=self.stopping, **kwargs
        )
        try:
            return self.add_process(name, cmd, env=env, cwd=cwd)
        finally:
            self._process_ctor = Process

    def terminate(self):
        self.stopping.set()  # before any signal: an exit from now on is the set stopping
        super().terminate()
