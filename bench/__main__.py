"""`make bench`: run every benchmark and rewrite BENCHMARKS.md with the numbers."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from bench import ingress, process, queue_bench, storage_bench, ui

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    os.environ["ENV_FILE"] = os.devnull  # measure defaults, not the developer's .env
    sections = [
        storage_bench.run(),
        queue_bench.run(),
        ingress.run(),
        process.run(),
        ui.run(),
    ]
    header = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (`python -m bench`). Each row runs our code and a baseline "
        "side by side in the same run (the same process, or the same server for HTTP); "
        "compare the ratio, not the absolute times, between machines.",
        "",
        f"Last run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}.",
        "",
    ]
    text = "\n".join(header) + "\n" + "\n".join(sections)
    (ROOT / "BENCHMARKS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
