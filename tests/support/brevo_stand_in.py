"""A local stand-in for Brevo's attachment API (GET /v3/inbound/attachments/{DownloadToken}).

Brevo's API cannot run here. The stand-in answers each token it was given an answer for
(status, content type, body) and 404 with Brevo's error shape for any other; it records every
request (method, path, headers) so a test asserts exactly what the ingress asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.http_stub import HOST, serve, shut

PREFIX = "/v3/inbound/attachments/"


@dataclass
class Seen:
    method: str
    path: str
    headers: Message


@dataclass
class Answer:
    body: bytes
    content_type: str = "application/octet-stream"
    status: int = 200


@dataclass
class BrevoStandIn:
    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def api_url(self) -> str:
        """What BREVO_API_URL is set to (Brevo's is https://api.brevo.com/v3)."""
        assert self._server is not None, "start() the stand-in first"
        return f"http://{HOST}:{self._server.server_address[1]}/v3"

    def start(self) -> BrevoStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
                stand_in.requests.append(Seen("GET", self.path, self.headers))
                token = self.path.removeprefix(PREFIX) if self.path.startswith(PREFIX) else None
                answer = stand_in.answers.get(token or "")
                if answer is None:
                    body = json.dumps({"code": "document_not_found", "message": "not found"})
                    answer = Answer(body.encode(), "application/json", 404)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args) -> None:
                pass

        self._server = serve(Handler)
        return self

    def stop(self) -> None:
        shut(self._server)
        self._server = None

    def seen(self) -> list[tuple[str, str, str | None]]:
        """(method, path, api-key header) of every request, in order."""
        return [(r.method, r.path, r.headers.get("api-key")) for r in self.requests]
