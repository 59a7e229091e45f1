"""WSGI entry for gunicorn (`gunicorn wsgi:app`): a bad configuration is a clear message."""

import sys

from app import create_app
from config import ConfigError
from runtime.file_modes import use_owner_only_umask

use_owner_only_umask()  # gunicorn started by systemd, without make: files stay owner-only
try:
    app = create_app()
except ConfigError as exc:
    sys.stderr.write(exc.format_message() + "\n")
    sys.exit(2)
