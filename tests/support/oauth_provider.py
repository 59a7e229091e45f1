"""A stand-in identity provider (Microsoft identity platform and Google OAuth) for tests.

Microsoft's and Google's servers cannot be reached from here, so this real HTTP server on
127.0.0.1 plays their part: the authorize page, the token endpoint (authorization_code with
PKCE S256, refresh_token) and an RFC 7662 introspection endpoint that Dovecot's oauth2 passdb
asks whether a bearer token is good. Everything a client sends is recorded so tests can
assert the exact requests.

Shared mailboxes are simplified: Dovecot's POST introspection sends only the token, so a
login's tokens introspect with `username` = the mailbox granted to that login
(`grant_mailbox`, one per login) or else the login itself. In Exchange the Full Access
permission is checked by the mail server, which Dovecot cannot do; here the identity provider
answers for it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import urllib.request
from urllib.parse import parse_qsl, urlencode, urlsplit

from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

HOST = "127.0.0.1"
REVOKED_WORDS = (
    "AADSTS70008: The refresh token has expired or been revoked due to inactivity. "
    "The token was issued on 2026-01-01T00:00:00Z and was inactive for 90.00:00:00."
)

_URLS = Map(
    [
        Rule("/ms/<tenant>/oauth2/v2.0/authorize", endpoint="authorize"),
        Rule("/ms/<tenant>/oauth2/v2.0/approve", endpoint="approve"),
        Rule("/ms/<tenant>/oauth2/v2.0/token", endpoint="token", methods=["POST"]),
        Rule("/google/authorize", endpoint="authorize"),
        Rule("/google/approve", endpoint="approve"),
        Rule("/google/token", endpoint="token", methods=["POST"]),
        Rule("/introspect", endpoint="introspect", methods=["POST"]),
    ]
)


def _json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status, content_type="application/json")


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # keep test output clean
        pass


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # the test wants the Location, not the page
        return None


class OAuthProvider:
    client_id = "threadline-test-client"
    client_secret = "threadline-test-secret"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server = None
        self.base_url = ""
        self.reset()

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> OAuthProvider:
        self._server = make_server(
            HOST, 0, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        self._server.daemon_threads = True
        self.base_url = f"http://{HOST}:{self._server.server_port}"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def reset(self) -> None:
        """Forget every request, token, code, grant and revocation."""
        with self._lock:
            self.authorize_requests: list[dict] = []
            self.token_requests: list[dict] = []
            self.introspect_requests: list[dict] = []
            #: True: the token endpoint answers 503 (a provider outage).
            self.unavailable = False
            self.expires_in = 3600
            self._codes: dict[str, dict] = {}
            self._access: dict[str, tuple[str, float]] = {}  # token -> (login, expires at)
            self._refresh: dict[str, str] = {}  # refresh token -> login
            self._revoked: set[str] = set()
            self._grants: dict[str, str] = {}

    # --- what tests call -------------------------------------------------------------------

    def app_settings(self, tenant: str = "contoso.test") -> dict[str, str]:
        """Threadline's settings with both providers configured and pointing here."""
        return {
            "MICROSOFT_CLIENT_ID": self.client_id,
            "MICROSOFT_CLIENT_SECRET": self.client_secret,
            "MICROSOFT_TENANT": tenant,
            "MICROSOFT_LOGIN_URL": self.base_url + "/ms",
            "GOOGLE_CLIENT_ID": self.client_id,
            "GOOGLE_CLIENT_SECRET": self.client_secret,
            "GOOGLE_AUTHORIZE_URL": self.base_url + "/google/authorize",
            "GOOGLE_TOKEN_URL": self.base_url + "/google/token",
        }

    def issue(self, login: str, expires_in: int = 3600) -> tuple[str, str]:
        """An (access, refresh) token pair for login, as after a sign-in."""
        with self._lock:
            return self._issue(login.lower(), expires_in, None)

    def revoke(self, login: str) -> None:
        with self._lock:
            self._revoked.add(login.lower())

    def grant_mailbox(self, login: str, mailbox: str) -> None:
        with self._lock:
            self._grants[login.lower()] = mailbox.lower()

    def set_expires_in(self, seconds: int) -> None:
        with self._lock:
            self.expires_in = seconds

    def token_user(self, token: str) -> str | None:
        """The username `token` signs in as (what /introspect answers), or None."""
        with self._lock:
            login, expires_at = self._access.get(token, ("", 0.0))
            if not login or login in self._revoked or expires_at < time.time():
                return None
            return self._grants.get(login, login)

    def approve(self, authorize_url: str, login: str = "agent@contoso.test") -> str:
        """Open the sign-in page and press "Sign in" as `login`; the callback URL."""
        return self._press(authorize_url, {"login": login, "action": "signin"})

    def deny(self, authorize_url: str) -> str:
        """Open the sign-in page and press "Cancel"; the callback URL with the error."""
        return self._press(authorize_url, {"action": "cancel"})

    def _press(self, authorize_url: str, answer: dict) -> str:
        with urllib.request.urlopen(authorize_url, timeout=10) as page:
            assert page.status == 200, page.read()
        url = urlsplit(authorize_url)
        path = url.path.rsplit("/", 1)[0] + "/approve"
        query = urlencode([*parse_qsl(url.query), *answer.items()])
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            opener.open(f"{self.base_url}{path}?{query}", timeout=10)
        except urllib.error.HTTPError as redirect:
            if redirect.code == 302:
                return redirect.headers["Location"]
            raise AssertionError(f"approve answered {redirect.code}: {redirect.read()!r}") from None
        raise AssertionError("approve did not redirect")

    # --- HTTP ------------------------------------------------------------------------------

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, _args = _URLS.bind_to_environ(environ).match()
            response = getattr(self, f"_{endpoint}")(request)
        except Exception as exc:  # noqa: BLE001  (werkzeug's HTTPExceptions are responses)
            response = exc if hasattr(exc, "get_response") else Response(repr(exc), 500)
        return response(environ, start_response)

    def _authorize(self, request: Request) -> Response:
        params = {"path": request.path, **request.args.to_dict()}
        with self._lock:
            self.authorize_requests.append(params)
        if params.get("client_id") != self.client_id:
            return Response("AADSTS700016: Application not found in the directory.", 400)
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in request.args.items()
        )
        login = html.escape(params.get("login_hint", "agent@contoso.test"))
        page = (
            "<!doctype html><title>Sign in</title><h1>Sign in</h1>"
            f'<form method="get" action="{request.path.rsplit("/", 1)[0]}/approve">{hidden}'
            f'<label>Email <input name="login" value="{login}"></label>'
            '<button name="action" value="signin">Sign in</button>'
            '<button name="action" value="cancel">Cancel</button></form>'
        )
        return Response(page, content_type="text/html; charset=utf-8")

    def _approve(self, request: Request) -> Response:
        args = request.args
        back = {"state": args.get("state", "")}
        if args.get("action") == "cancel":
            back = {
                "error": "access_denied",
                "error_description": "AADSTS65004: User declined to consent to access the app.",
                **back,
            }
        else:
            code = secrets.token_urlsafe(24)
            with self._lock:
                self._codes[code] = {
                    "login": args.get("login", "").lower(),
                    "redirect_uri": args.get("redirect_uri"),
                    "challenge": args.get("code_challenge"),
                    "method": args.get("code_challenge_method"),
                    "scope": args.get("scope", ""),
                }
            back = {"code": code, **back}
        return Response(
            status=302, headers={"Location": f"{args['redirect_uri']}?{urlencode(back)}"}
        )

    def _token(self, request: Request) -> Response:
        form = request.form.to_dict()
        with self._lock:
            self.token_requests.append({"path": request.path, **form})
            if self.unavailable:
                return _json({"error": "temporarily_unavailable"}, 503)
            if (form.get("client_id"), form.get("client_secret")) != (
                self.client_id,
                self.client_secret,
            ):
                return _json(
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided.",
                    },
                    401,
                )
            rotate = request.path.startswith("/ms/")
            if form.get("grant_type") == "authorization_code":
                code = self._codes.pop(form.get("code", ""), None)
                problem = self._code_problem(code, form)
                if problem:
                    return _json({"error": "invalid_grant", "error_description": problem}, 400)
                return self._tokens(code["login"], code["scope"], None)
            if form.get("grant_type") == "refresh_token":
                login = self._refresh.get(form.get("refresh_token", ""))
                if not login or login in self._revoked:
                    return _json(
                        {"error": "invalid_grant", "error_description": REVOKED_WORDS}, 400
                    )
                keep = None if rotate else form["refresh_token"]
                return self._tokens(login, form.get("scope", ""), keep)
            return _json({"error": "unsupported_grant_type"}, 400)

    @staticmethod
    def _code_problem(code: dict | None, form: dict) -> str:
        if code is None:
            return "AADSTS70000: The provided authorization code is invalid or has been used."
        if form.get("redirect_uri") != code["redirect_uri"]:
            return "AADSTS50011: The redirect URI does not match the one in the request."
        if code["method"] != "S256" or _s256(form.get("code_verifier", "")) != code["challenge"]:
            return "AADSTS501481: The Code_Verifier does not match the code_challenge."
        return ""

    def _tokens(self, login: str, scope: str, keep_refresh: str | None) -> Response:
        access, refresh = self._issue(login, self.expires_in, keep_refresh)
        return _json(
            {
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": self.expires_in,
                "token_type": "Bearer",
                "scope": scope,
            }
        )

    def _issue(self, login: str, expires_in: int, keep_refresh: str | None) -> tuple[str, str]:
        access = "at-" + secrets.token_urlsafe(24)
        refresh = keep_refresh or "rt-" + secrets.token_urlsafe(24)
        self._access[access] = (login, time.time() + expires_in)
        self._refresh[refresh] = login
        return access, refresh

    def _introspect(self, request: Request) -> Response:
        form = request.form.to_dict()
        with self._lock:
            self.introspect_requests.append({"path": request.path, **form})
        username = self.token_user(form.get("token", ""))
        if username is None:
            return _json({"active": False})
        return _json({"active": True, "username": username, "token_type": "Bearer"})
