"""`make bench`: run every benchmark and rewrite BENCHMARKS.md with the numbers.

`python -m bench ui process` reruns only those sections and splices them into the file,
leaving the others as they were measured.
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from bench import idle, imap_import, ingress, memory, process, queue_bench, storage_bench, ui

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {
    "storage": storage_bench,
    "queue": queue_bench,
    "ingress": ingress,
    "process": process,
    "ui": ui,
    "thread": SimpleNamespace(run=ui.run_thread),  # the thread page, earlier messages folded
    "idle": idle,  # IMAP IDLE against a real Dovecot
    "memory": memory,  # peak RSS for a message with a 25 MiB attachment
    "imap": imap_import,  # importing a mailbox from Dovecot against getmail6
}


def _split(text: str) -> tuple[str, list[str]]:
    head, *sections = text.split("\n## ")
    return head, ["## " + s.rstrip("\n") + "\n" for s in sections]


def main(names: list[str]) -> None:
    os.environ["ENV_FILE"] = os.devnull  # measure defaults, not the developer's .env
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        sys.exit(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    wanted = names or list(SECTIONS)
    fresh = {name: SECTIONS[name].run() for name in wanted}
    when = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    path = ROOT / "BENCHMARKS.md"
    if names and path.exists():
        head, sections = _split(path.read_text())
        for text in fresh.values():
            title = text.split("\n", 1)[0]
            sections = [text if s.split("\n", 1)[0] == title else s for s in sections]
            if not any(s.split("\n", 1)[0] == title for s in sections):
                sections.append(text)
        lines = [
            line
            if not line.startswith("Last run:")
            else f"{line} Rerun of {', '.join(names)}: {when}."
            for line in head.split("\n")
        ]
        text = "\n".join(lines).rstrip("\n") + "\n\n" + "\n".join(sections)
    else:
        header = [
            "# Benchmarks",
            "",
            "Produced by `make bench` (`python -m bench`). Each row runs our code and a baseline "
            "side by side in the same run (the same process, or the same server for HTTP); "
            "compare the ratio, not the absolute times, between machines.",
            "",
            f"Last run: {when}.",
            "",
        ]
        text = "\n".join(header) + "\n" + "\n".join(fresh.values())
    path.write_text(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
