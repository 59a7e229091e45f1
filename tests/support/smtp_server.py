"""A real SMTP server (aiosmtpd) in a background thread, for doctor and outgoing-mail tests."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
START_ATTEMPTS = 5

# aiosmtpd logs a deprecation notice on every successful AUTH (its own Session.login_data).
logging.getLogger("mail.log").setLevel(logging.ERROR)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class SMTPServer:
    """What a test sees: where the server listens and everything it accepted."""

    host: str
    port: int
    # Not named auth_*: aiosmtpd treats a handler's auth_<NAME> attributes as AUTH mechanisms.
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: Every accepted message, in arrival order (aiosmtpd Envelope: mail_from, rcpt_tos,
    #: content as bytes, smtp_utf8, mail_options, rcpt_options).
    envelopes: list[Envelope] = field(default_factory=list)
    #: Usernames that signed in successfully, one entry per successful AUTH.
    logins: list[str] = field(default_factory=list)
    #: The SASL mechanism of each successful AUTH, parallel to logins.
    login_mechanisms: list[str] = field(default_factory=list)
    #: (mechanism, username) of every refused AUTH attempt.
    failed_logins: list[tuple[str, str]] = field(default_factory=list)
    #: Scripted answers to DATA, used in order before accepting normally (e.g. "451 4.3.0
    #: try later", "554 5.7.1 rejected"); a refused message is not recorded.
    data_replies: list[str] = field(default_factory=list)
    #: True when the session was upgraded with STARTTLS before the message was sent.
    tls_sessions: list[bool] = field(default_factory=list)
    #: "RCPT" or "DATA": the next sessions stop there until `release` is set, after setting
    #: `held` (at DATA the message is recorded first: it is on the server, only the answer
    #: waits), so a test can kill the sender at exactly that moment.
    hold_at: str | None = None
    #: MAIL is refused before a successful AUTH (set when credentials or XOAUTH2 are given).
    requires_auth: bool = False
    held: threading.Event = field(default_factory=threading.Event, repr=False)
    release: threading.Event = field(default_factory=threading.Event, repr=False)
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def wait_for_messages(self, count: int = 1, timeout: float = 10.0) -> list[Envelope]:
        """Block until at least count messages arrived; raise AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.envelopes) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"SMTP server {self.address} received {len(self.envelopes)} message(s) "
                        f"within {timeout:.0f}s, expected {count}"
                    )
                self._changed.wait(remaining)
            return list(self.envelopes)

    # --- aiosmtpd hooks ------------------------------------------------------------------

    def authenticate(
        self, _server, _session: Session, _envelope: Envelope, mechanism: str, auth_data
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode(errors="replace")
            password = auth_data.password.decode(errors="replace")
        else:  # Mechanisms we do not implement never succeed.
            user, password = "", None
        if self.username is not None and (user, password) == (self.username, self.password):
            self.logins.append(user)
            self.login_mechanisms.append(mechanism)
            return AuthResult(success=True)
        self.failed_logins.append((mechanism, user))
        # handled=False: aiosmtpd answers "535 5.7.8 Authentication credentials invalid".
        return AuthResult(success=False, handled=False)

    async def handle_MAIL(
        self, _server, session: Session, envelope: Envelope, address: str, mail_options: list
    ) -> str:
        # Enforced here rather than with aiosmtpd's auth_required, which warns on every
        # connection when TLS is not required too.
        if self.requires_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, _server, _session: Session, envelope: Envelope, address: str, rcpt_options: list
    ) -> str:
        await self._hold("RCPT")
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, _server, session: Session, envelope: Envelope) -> str:
        if self.data_replies:
            reply = self.data_replies.pop(0)
            if not reply.startswith("250"):
                return reply
        with self._changed:
            self.tls_sessions.append(session.ssl is not None)
            self.envelopes.append(envelope)
            self._changed.notify_all()
        await self._hold("DATA")
        return "250 Message accepted for delivery"

    async def _hold(self, stage: str) -> None:
        if self.hold_at != stage:
            return
        self.held.set()
        while not self.release.is_set():
            await asyncio.sleep(0.05)


GOOGLE_XOAUTH2_ERROR = {"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"}
XOAUTH2_REFUSED = (
    "535 5.7.8 Username and Password not accepted. For more information, go to "
    "https://support.google.com/mail/?p=BadCredentials"
)


@dataclass
class XOAuth2SMTPServer(SMTPServer):
    """Also offers AUTH XOAUTH2 (RFC-less, Google's and Microsoft's), refusing the way Gmail
    does: a 334 with the JSON error, then 535 once the client answers it."""

    #: The user a bearer token may sign in as, or None (the identity provider's answer).
    token_user: Callable[[str], str | None] = field(default=lambda _token: None, repr=False)
    #: Every XOAUTH2 response received, decoded, exactly as sent.
    xoauth2_blobs: list[bytes] = field(default_factory=list)

    async def auth_XOAUTH2(self, server, args: list[str]) -> AuthResult:  # noqa: N802
        if len(args) > 1:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                return AuthResult(success=False, handled=False, message="501 5.5.2 Bad base64")
        else:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        self.xoauth2_blobs.append(blob)
        fields = dict(
            part.split("=", 1)
            for part in blob.decode(errors="replace").split("\x01")
            if "=" in part
        )
        user, bearer = fields.get("user", ""), fields.get("auth", "")
        token = bearer[len("Bearer ") :] if bearer.startswith("Bearer ") else ""
        if user and token and self.token_user(token) == user.lower():
            self.logins.append(user)
            self.login_mechanisms.append("XOAUTH2")
            return AuthResult(success=True, auth_data=user)
        self.failed_logins.append(("XOAUTH2", user))
        await server.challenge_auth(json.dumps(GOOGLE_XOAUTH2_ERROR))
        return AuthResult(success=False, handled=False, message=XOAUTH2_REFUSED)


def _token_checker(xoauth2) -> Callable[[str], str | None]:
    if hasattr(xoauth2, "token_user"):  # tests/support/oauth_provider.OAuthProvider
        return xoauth2.token_user
    if isinstance(xoauth2, Mapping):  # {token: user}
        accepted = {token: user.lower() for token, user in xoauth2.items()}
        return accepted.get
    raise TypeError("xoauth2: an OAuthProvider or a {token: user} mapping")


@contextmanager
def running_smtp_server(
    auth_user: str | None = None,
    auth_password: str | None = None,
    tls_context: ssl.SSLContext | None = None,
    implicit_tls: bool = False,
    xoauth2=None,
) -> Iterator[SMTPServer]:
    """Run an SMTP server on a free 127.0.0.1 port; with credentials, AUTH is required.

    There is no TLS (no STARTTLS offered). With credentials, AUTH LOGIN/PLAIN is offered in
    clear text, wrong credentials are refused with 535 and MAIL before AUTH with 530; without
    them, no AUTH is offered and every message is accepted.

    `xoauth2` (the stand-in identity provider, or a {token: user} mapping) also offers AUTH
    XOAUTH2 and requires AUTH: a token is accepted for the user it belongs to, and each blob
    received is kept in `xoauth2_blobs`.
    """
    if (auth_user is None) != (auth_password is None):
        raise ValueError("give both auth_user and auth_password, or neither")
    needs_auth = auth_user is not None or xoauth2 is not None
    last_error: Exception | None = None
    for _ in range(START_ATTEMPTS):  # Another process may grab the free port first.
        if xoauth2 is None:
            server = SMTPServer(HOST, _free_port(), auth_user, auth_password)
        else:
            server = XOAuth2SMTPServer(
                HOST, _free_port(), auth_user, auth_password, token_user=_token_checker(xoauth2)
            )
        server.requires_auth = needs_auth
        # Without credentials, AUTH is never advertised (it would need TLS, which is not
        # offered), like a local relay; with them, AUTH LOGIN/PLAIN is offered in clear text.
        smtp_options: dict = {"auth_require_tls": not needs_auth}
        controller_options: dict = {}
        if tls_context is not None and implicit_tls:
            # TLS from the first byte (port 465 style); AUTH inside it.
            controller_options["ssl_context"] = tls_context
            smtp_options["auth_require_tls"] = False
        elif tls_context is not None:
            # STARTTLS offered and required; AUTH only after it, as real submission servers do.
            smtp_options.update(
                tls_context=tls_context, require_starttls=True, auth_require_tls=True
            )
        if needs_auth:
            smtp_options["authenticator"] = server.authenticate
        controller = Controller(
            server,
            hostname=HOST,
            port=server.port,
            ready_timeout=10,
            **controller_options,
            **smtp_options,
        )
        try:
            controller.start()
        except (OSError, RuntimeError) as exc:
            last_error = exc
            continue
        try:
            yield server
        finally:
            controller.stop()
        return
    raise RuntimeError(f"could not start the test SMTP server: {last_error}")
