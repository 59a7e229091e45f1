"""A stand-in for Resend's API (api.resend.com cannot be reached from tests), on 127.0.0.1.

It answers what the Receiving API documents: `GET /emails/receiving/{id}` with the received
email's JSON, whose `raw.download_url` points back here (as Resend's points to a signed
CloudFront URL), and `GET /raw/{id}?...` with the original bytes. Every request is recorded
(method, path with query, headers) so tests assert exactly what the ingress asked for.
A path can be made to answer another status (`fail`) or to never answer (`hang`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.http_stub import HOST, serve, shut

SIGNATURE_QUERY = "?Expires=1893456000&Signature=stand-in-signature&Key-Pair-Id=K2STANDIN"


@dataclass
class Seen:
    method: str
    path: str
    headers: Message

    def summary(self) -> tuple[str, str, str | None]:
        return self.method, self.path, self.headers.get("Authorization")


@dataclass
class ResendStandIn:
    #: path (query included) -> (status, content type, body)
    answers: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    #: path -> Location of a 302 answer
    redirects: dict[str, str] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _release: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return f"http://{HOST}:{self._server.server_address[1]}"

    def api_path(self, email_id: str) -> str:
        return f"/emails/receiving/{email_id}"

    def raw_path(self, email_id: str) -> str:
        return f"/raw/{email_id}{SIGNATURE_QUERY}"

    def received_email(self, email_id: str, raw: bytes | None, download_url: str | None = None):
        """Serve a received email as the API documents it; `raw=None` answers `"raw": null`."""
        document = {
            "object": "email",
            "id": email_id,
            "to": ["support@threadline.test"],
            "from": "Sam Customer <sam@customer.example.com>",
            "created_at": "2026-02-22T23:41:11.894719+00:00",
            "subject": "Where is my order?",
            "message_id": "<plain-text.1@customer.example.com>",
            "bcc": [],
            "cc": [],
            "reply_to": [],
            "html": None,
            "text": "Hello",
            "headers": {"x-mailer": "stand-in"},
            "attachments": [],
            "raw": None,
        }
        if raw is not None:
            document["raw"] = {
                "download_url": download_url or self.url + self.raw_path(email_id),
                "expires_at": "2030-01-01T00:00:00.000Z",
            }
            self.answers[self.raw_path(email_id)] = (200, "message/rfc822", raw)
        self.answer(self.api_path(email_id), 200, json.dumps(document).encode())

    def answer(self, path: str, status: int, body: bytes = b"", content_type="application/json"):
        self.answers[path] = (status, content_type, body)

    def fail(self, path: str, status: int) -> None:
        self.answer(path, status, json.dumps({"name": "error", "statusCode": status}).encode())

    def start(self) -> ResendStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
                stand_in.requests.append(Seen("GET", self.path, self.headers))
                if self.path in stand_in.hang:
                    stand_in._release.wait(60)
                    return
                status, content_type, body = stand_in.answers.get(
                    self.path, (404, "application/json", b'{"name": "not_found"}')
                )
                location = stand_in.redirects.get(self.path)
                self.send_response(302 if location else status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:  # noqa: A002
                pass

        self._server = serve(Handler)
        return self

    def stop(self) -> None:
        self._release.set()
        shut(self._server)
        self._server = None
