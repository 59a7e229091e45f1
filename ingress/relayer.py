"""Relay one raw message to the relay ingress over HTTP, for MTAs' pipe commands.

Standard library only: `threadline-relay` (relay_cli.py, runnable by any Python 3 without the
venv) and `flask ingress relay|postfix|exim|qmail` (cli/ingress.py) read stdin and call
`relay()`, print `Result.line` and exit with `exit_code(flavour, result)`.

Outcomes follow Action Mailbox's relayer: 2xx → 2.0.0; 401 → 4.7.0; any other HTTP status
→ 4.0.0 HTTP <status>; connection errors and timeouts → 4.4.2. Every HTTP answer is
temporary, 413 included: a too-small proxy limit (nginx defaults to 1 MB) or
INBOUND_EMAIL_MAX_BYTES can be raised, and the MTA then delivers what it kept. Only a bad
invocation (no URL or password, malformed URL) and an empty message are not retried the
same way; see EXIT_CODES.
"""

from __future__ import annotations

import base64
import http.client
import ssl
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit, urlunsplit

VERSION = "0.1.0"  # kept equal to pyproject.toml's version (a test checks)
USER_AGENT = f"Threadline relayer/{VERSION}"
CONTENT_TYPE = "message/rfc822"
USERNAME = "actionmailbox"
RELAY_PATH = "/rails/action_mailbox/relay/inbound_emails"
# The SMTP connection the MTA received the message on, when it passes it (--client-address,
# --helo, --sender): Threadline then checks SPF itself (ingress/relay.py reads them).
CLIENT_ADDRESS_HEADER = "X-Threadline-Client-Address"
HELO_HEADER = "X-Threadline-Helo"
MAIL_FROM_HEADER = "X-Threadline-Mail-From"
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 30.0
_REASON_CHARS = 200


class Outcome(Enum):
    SUCCESS = "success"
    TEMPORARY = "temporary"  # the MTA keeps the message and tries again later
    USAGE = "usage"  # no URL or password, or a malformed URL: the operator must fix the call
    EMPTY = "empty"  # nothing on stdin: no retry will ever deliver it


# sysexits.h: EX_USAGE 64, EX_UNAVAILABLE 69, EX_TEMPFAIL 75. qmail-command: 111 soft, 100 hard.
# Nothing maps to exim's 69 (EX_UNAVAILABLE): no answer from Threadline condemns a message.
EXIT_CODES: dict[str, dict[Outcome, int]] = {
    "exim": {Outcome.SUCCESS: 0, Outcome.TEMPORARY: 75, Outcome.USAGE: 64, Outcome.EMPTY: 64},
    # A broken .qmail line keeps the message queued (as Action Mailbox's task does).
    "qmail": {Outcome.SUCCESS: 0, Outcome.TEMPORARY: 111, Outcome.USAGE: 111, Outcome.EMPTY: 100},
    # Postfix (and plain `relay`): every failure is EX_TEMPFAIL, Postfix keeps the message.
    "postfix": {Outcome.SUCCESS: 0, Outcome.TEMPORARY: 75, Outcome.USAGE: 75, Outcome.EMPTY: 75},
    "relay": {Outcome.SUCCESS: 0, Outcome.TEMPORARY: 75, Outcome.USAGE: 75, Outcome.EMPTY: 75},
}
FLAVOURS = tuple(EXIT_CODES)


@dataclass(frozen=True)
class Result:
    """An SMTP-style enhanced status code, a one-line message, and what it means."""

    status: str
    message: str
    outcome: Outcome

    @property
    def line(self) -> str:
        return f"{self.status} {self.message}"


def exit_code(flavour: str, result: Result) -> int:
    return EXIT_CODES[flavour][result.outcome]


def usage(message: str) -> Result:
    return Result("4.3.5", message, Outcome.USAGE)


def empty_message() -> Result:
    return Result("5.6.0", "No message on standard input (it was empty)", Outcome.EMPTY)


def redact(url: str) -> str:
    """The URL without user:password@, so a password given inside it is never printed."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=host))


def check_url(url: str) -> str | None:
    """Why url cannot be relayed to, or None if it is a usable http(s) URL."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        return f"{redact(url)!r} is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{redact(url)!r} is not an http(s) URL"
    return None


def connection_headers(
    client_address: str | None = None, helo: str | None = None, sender: str | None = None
) -> dict[str, str]:
    """The request headers for what the MTA passed. An empty client address or HELO (mail
    submitted on the mail host itself: Postfix and Exim expand theirs to "") is left out;
    an empty sender is kept: it is the null sender of a delivery report."""
    headers = {}
    if client_address:
        headers[CLIENT_ADDRESS_HEADER] = client_address
    if helo:
        headers[HELO_HEADER] = helo
    if sender is not None:
        headers[MAIL_FROM_HEADER] = sender
    return headers


def relay(
    message: bytes,
    url: str,
    password: str,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    headers: dict[str, str] | None = None,
) -> Result:
    """POST message to url with Basic auth (and `headers`, connection_headers()'s); never
    raises, never mentions the password."""
    if not message:
        return empty_message()
    problem = check_url(url)
    if problem:
        return usage(problem)
    shown = redact(url)
    try:
        status, reason = _post(message, url, password, connect_timeout, read_timeout, headers)
    except TimeoutError:
        return Result("4.4.2", f"Timed out talking to {shown}", Outcome.TEMPORARY)
    except (OSError, http.client.HTTPException) as exc:
        return Result(
            "4.4.2", f"Network error talking to {shown}: {_describe(exc)}", Outcome.TEMPORARY
        )
    except Exception as exc:  # whatever happens, the MTA must keep the message
        return Result("4.0.0", f"Error talking to {shown}: {_describe(exc)}", Outcome.TEMPORARY)
    if 200 <= status < 300:
        return Result("2.0.0", "Successfully relayed message to Threadline", Outcome.SUCCESS)
    if status == 401:
        return Result("4.7.0", "Invalid credentials", Outcome.TEMPORARY)
    detail = f": {reason}" if reason else ""
    return Result("4.0.0", f"HTTP {status}{detail}", Outcome.TEMPORARY)


def _post(
    message: bytes,
    url: str,
    password: str,
    connect_timeout: float,
    read_timeout: float,
    extra_headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    """Send the request; return (status, first line of a text/plain answer)."""
    parts = urlsplit(url)
    # The port always explicit: http.client would read "::1" as host "::" port 1.
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname,
            parts.port or 443,
            timeout=connect_timeout,
            context=ssl.create_default_context(),
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=connect_timeout)
    credentials = base64.b64encode(f"{USERNAME}:{password}".encode()).decode("ascii")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        conn.connect()  # TCP (and TLS) under the connect timeout ...
        conn.sock.settimeout(read_timeout)  # ... then every send and receive under the read one
        try:
            conn.request(
                "POST",
                path,
                body=message,
                headers={
                    "Content-Type": CONTENT_TYPE,
                    "User-Agent": USER_AGENT,
                    "Authorization": f"Basic {credentials}",
                    **(extra_headers or {}),
                },
            )
        except TimeoutError:
            raise
        except OSError:
            # The server may answer (413, 401) and close before reading the whole body:
            # its answer explains more than "broken pipe" does. Without one, the error stands.
            try:
                response = conn.getresponse()
            except (OSError, http.client.HTTPException):
                response = None
            if response is None:
                raise
        else:
            response = conn.getresponse()
        body = response.read(4096)
        return response.status, _reason(response, body)
    finally:
        conn.close()


def _reason(response: http.client.HTTPResponse, body: bytes) -> str:
    if response.getheader("Content-Type", "").split(";")[0].strip() != "text/plain":
        return ""
    first = body.decode("utf-8", "replace").strip().splitlines()
    text = first[0].strip() if first else ""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text[:_REASON_CHARS]


def _describe(exc: BaseException) -> str:
    text = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
    return text or type(exc).__name__
