"""Create the env file from .env.example with generated secrets; leave an existing one alone."""

from __future__ import annotations

import base64
import os
import re
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED = {
    "SECRET_KEY": lambda: secrets.token_hex(32),
    "ENCRYPTION_KEY": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
    "INBOUND_EMAIL_PASSWORD": lambda: secrets.token_hex(24),
}


def render_env(example: str) -> str:
    """Fill each generated setting whose value is empty in the example."""
    out = []
    for line in example.splitlines():
        match = re.match(r"^([A-Z_]+)=(\s*)(#.*)?$", line)
        if match and match.group(1) in GENERATED:
            comment = f"  {match.group(3)}" if match.group(3) else ""
            line = f"{match.group(1)}={GENERATED[match.group(1)]()}{comment}"
        out.append(line)
    return "\n".join(out) + "\n"


def main(target: str) -> int:
    path = Path(target)
    if path.exists():
        return 0
    # Created 0600 from the first byte: it holds secrets.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(render_env((ROOT / ".env.example").read_text()))
    print(f"Created {path} with a generated SECRET_KEY, ENCRYPTION_KEY and INBOUND_EMAIL_PASSWORD.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / ".env")))
