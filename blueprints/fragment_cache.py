"""Rendered HTML kept in the process and drawn again without Jinja: `{% cached key %}…
{% endcached %}` renders its body once per key. A thread's messages are redrawn on every
click, poll and action although they hardly ever change, and on SQLite drawing them cost
more than reading them.

The key must hold everything the body is drawn from, the agent it is drawn for included, so
a fragment is never shown to anyone else; a key of None draws the body every time (for what
depends on the clock or on rows the key does not cover). A form's CSRF token is per session
and signed anew each request: it is stored as a placeholder and the request's own token put
in its place each time it is drawn.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from flask import Flask, g
from flask_wtf.csrf import generate_csrf
from jinja2 import nodes
from jinja2.ext import Extension
from markupsafe import Markup

ENTRIES = 4000  # about 3 KB each: a dozen MB per worker at most
# Random per process: no text a customer writes can stand for the token.
_TOKEN = f"csrf-{secrets.token_hex(16)}"


class FragmentStore:
    """A bounded, thread-safe LRU of rendered fragments (gunicorn may run threads)."""

    def __init__(self, size: int = ENTRIES):
        self.size = size
        self._entries: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> str | None:
        with self._lock:
            html = self._entries.get(key)
            if html is not None:
                self._entries.move_to_end(key)
            return html

    def put(self, key: Hashable, html: str) -> None:
        with self._lock:
            self._entries[key] = html
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _request_token() -> str:
    """This request's CSRF token: generate_csrf's (which keeps it in `g` for the request),
    looked up once, not through its config and proxies for each of a page's dozens of parts."""
    token = g.get("fragment_csrf")
    if token is None:
        token = g.fragment_csrf = generate_csrf()
    return token


def draw(store: FragmentStore, key: Hashable | None, render: Callable[[], str]) -> Markup:
    """The fragment for `key`: from the store with this request's CSRF token, else rendered
    and stored without it."""
    if key is None:
        return Markup(render())
    html = store.get(key)
    if html is None:
        html = str(render())
        store.put(key, html.replace(_request_token(), _TOKEN))
        return Markup(html)
    if _TOKEN in html:  # most parts (a list row, an activity line) have no form
        html = html.replace(_TOKEN, _request_token())
    return Markup(html)


class CachedExtension(Extension):
    """The `{% cached key %}` tag: its body is a call block drawn through `draw`."""

    tags = {"cached"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        key = parser.parse_expression()
        body = parser.parse_statements(("name:endcached",), drop_needle=True)
        call = self.call_method("_draw", [key])
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _draw(self, key, caller) -> Markup:
        return draw(self.environment.fragment_store, key, caller)


def register(app: Flask) -> None:
    app.jinja_env.add_extension(CachedExtension)
    app.jinja_env.fragment_store = FragmentStore()
