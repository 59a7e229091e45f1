"""WSGI entry for bench/ingress.py: the real app, plus a bare `/bare` endpoint beside it.

`gunicorn bench.bare_endpoint:application` serves both from the same workers, so the
baseline pays the same HTTP parsing, threads and sockets as the app and nothing else.
"""

from __future__ import annotations

from wsgi import app as threadline

BARE_PATH = "/bare"
CHUNK = 64 * 1024


def bare(environ, start_response):
    """Read the whole body (as the ingress must) and answer 204, doing nothing with it."""
    stream = environ["wsgi.input"]
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    while remaining > 0:
        chunk = stream.read(min(CHUNK, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
    start_response("204 No Content", [])
    return [b""]


def application(environ, start_response):
    if environ.get("PATH_INFO") == BARE_PATH:
        return bare(environ, start_response)
    return threadline(environ, start_response)
