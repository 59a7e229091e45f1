"""`python worker.py` processes for tests that drive real workers and schedulers: started as
the Procfile starts them (with the test's settings in the environment and no env file), each
logging JSON lines to a file of its own, and stopped, or killed, on demand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
STOP_GRACE = 20  # seconds a stopped worker gets to finish its job and leave


class WorkerProcesses:
    def __init__(self, config: dict, folder: Path):
        self.env = dict(os.environ)
        self.env.update({k: str(v) for k, v in config.items() if k != "TESTING"})
        self.env.update(ENV_FILE=os.devnull, LOG_LEVEL="INFO", LOG_FORMAT="json")
        self.folder = folder
        self.procs: dict[str, subprocess.Popen] = {}  # the ones still running

    def output(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    def start(self, name: str, *args: str) -> subprocess.Popen:
        """`python worker.py *args` in a session of its own (as a service manager starts it)."""
        with open(self.output(name), "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "worker.py", *args],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        """SIGKILL the process and every process it started, at once: the work horse (RQ puts
        it in a process group of its own) and RQ's scheduler process die with it."""
        proc = self.procs.pop(name)
        try:
            family = [psutil.Process(proc.pid)]
            family += family[0].children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        for member in family:
            try:
                member.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(family, timeout=STOP_GRACE)
        proc.wait(timeout=STOP_GRACE)

    def stop_all(self) -> None:
        """SIGTERM each (RQ's warm shutdown); SIGKILL what has not left within STOP_GRACE."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for name, proc in list(self.procs.items()):
            try:
                proc.wait(timeout=STOP_GRACE)
                self.procs.pop(name)
            except subprocess.TimeoutExpired:
                self.kill(name)

    def lines(self, name: str) -> list[dict]:
        text = self.output(name).read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def logs(self, last: int = 60) -> str:
        """The last lines every process wrote: the message of a failing assertion."""
        return "\n".join(
            f"--- {path.stem}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-last:])
            for path in sorted(self.folder.glob("*.log"))
        )
