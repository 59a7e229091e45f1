"""WSGI entry for gunicorn (`gunicorn wsgi:app`): a bad configuration is a clear message."""

import sys

from app import create_app
from config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    sys.stderr.write(exc.format_message() + "\n")
    sys.exit(2)
