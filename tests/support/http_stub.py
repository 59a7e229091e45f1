"""A real HTTP server on 127.0.0.1 that answers every POST with one fixed status.

It records each request (method, path, headers, body) so tests can check what a client
really sent. With `hang=True` it reads the request and then never answers (until stopped),
for read-timeout tests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"


def serve(handler: type[BaseHTTPRequestHandler], wrap=None) -> ThreadingHTTPServer:
    """A threading server for `handler` on a free local port, serving in a daemon thread;
    `wrap` may replace its socket (TLS) before it serves."""
    server = ThreadingHTTPServer((HOST, 0), handler)
    server.daemon_threads = True
    if wrap is not None:
        server.socket = wrap(server.socket)
    # A short poll interval: shutdown() returns at once instead of after half a second.
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server


def shut(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


@dataclass
class Recorded:
    method: str
    path: str
    headers: Message
    body: bytes


@dataclass
class HttpStub:
    status: int = 204
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    hang: bool = False
    #: False: answer at once without reading the body, as servers refusing a large one do.
    read_body: bool = True
    requests: list[Recorded] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _release: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the stub first"
        return int(self._server.server_address[1])

    def url(self, path: str = "/rails/action_mailbox/relay/inbound_emails") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def start(self) -> HttpStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if stub.read_body else b""
                stub.requests.append(Recorded("POST", self.path, self.headers, body))
                if stub.hang:
                    stub._release.wait(60)
                    return
                self.send_response(stub.status)
                self.send_header("Content-Type", stub.content_type)
                self.send_header("Content-Length", str(len(stub.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(stub.body)

            def log_message(self, format: str, *args) -> None:  # noqa: A002
                pass  # quiet test output

        self._server = serve(Handler)
        return self

    def stop(self) -> None:
        self._release.set()
        shut(self._server)
        self._server = None

    def __enter__(self) -> HttpStub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
