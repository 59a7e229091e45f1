"""A real headless Chromium (Debian's, driven by Playwright) against a live Threadline server.

The browser and the HTTP server start once per session. The server dispatches to the current
test's `app`, so users a test creates are visible to the browser and cleaned up after it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


def ensure_chromium() -> str:
    """Debian's Chromium; installed once if missing (never `playwright install`)."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    result = subprocess.run(
        [str(ROOT / "scripts/apt-install.sh"), "chromium"], capture_output=True, text=True
    )
    if result.returncode != 0 or not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing and could not be installed "
            f"(run: make test-deps):\n{result.stdout}\n{result.stderr}"
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


class LiveServer:
    """One threaded werkzeug server for the session; `app` is swapped per test."""

    def __init__(self):
        self.app = None
        self._server = make_server("127.0.0.1", 0, self, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __call__(self, environ, start_response):
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"no test app is being served right now"]
        return self.app(environ, start_response)

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


@pytest.fixture(scope="session")
def _live_server() -> Iterator[LiveServer]:
    server = LiveServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live_server(_live_server, app) -> Iterator[LiveServer]:
    """The session's server, serving this test's app (and its database rows)."""
    _live_server.app = app
    try:
        yield _live_server
    finally:
        _live_server.app = None


# Chromium logs CSP violations as console errors; the DOM event catches the ones it does not
# (and says which directive and source), so either way the test sees them.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline code"}`
    + ` in ${e.documentURI} (${e.sourceFile || "?"}:${e.lineNumber}) sample: ${e.sample}`);
}, true);
"""
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy")


class PageGuard:
    """Watches a page for CSP violations and for HTML documents (frames included) without
    the security headers; `check()` fails the test listing each one. Call it before the
    page's context closes: the headers are read then, not inside the event handler."""

    def __init__(self, page, origin: str):
        self.origin, self.violations, self.documents = origin, [], []
        page.add_init_script(REPORT_CSP_VIOLATIONS)  # in every frame, before its own code
        page.on("console", self._console)
        page.on("response", self._response)

    def _console(self, message) -> None:
        text = message.text
        if text.startswith("CSP violation") or "Content Security Policy" in text:
            text = text.split(" Either the 'unsafe-inline'")[0]  # Chromium's advice, long
            where = (message.location or {}).get("url")
            self.violations.append(f"{text} [{where}]" if where else text)

    def _response(self, response) -> None:
        if response.request.resource_type == "document" and response.url.startswith(self.origin):
            self.documents.append(response)  # headers read at the end: no calls in a handler

    def problems(self) -> list[str]:
        found = [f"CSP violation reported: {v}" for v in self.violations]
        for response in self.documents:
            headers = response.all_headers()
            if not headers.get("content-type", "").startswith("text/html"):
                continue
            missing = [name for name in SECURITY_HEADERS if name not in headers]
            framing = headers.get("x-frame-options") or (
                "frame-ancestors" in headers.get("content-security-policy", "")
            )
            if not framing:
                missing.append("x-frame-options / CSP frame-ancestors")
            if missing:
                found.append(f"{response.status} {response.url} lacks {', '.join(missing)}")
        return found

    def check(self) -> None:
        if problems := self.problems():
            pytest.fail("security problems seen by the browser:\n  " + "\n  ".join(problems))


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context (no cookies) per test; every wait is bounded. The test fails
    at teardown if a CSP violation was reported or an HTML document came without the
    security headers (CSP, nosniff, Referrer-Policy, frame protection)."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    guard = PageGuard(page, live_server.url)
    try:
        yield page
        guard.check()
    finally:
        context.close()


@pytest.fixture
def support(inbox):
    """The Support inbox (support@example.com), by the name the workspace tests use."""
    return inbox


@pytest.fixture
def sign_in(page):
    def go(email: str, password: str):
        page.goto("/login")
        page.get_by_label("Email", exact=True).fill(email)
        page.get_by_label("Password", exact=True).fill(password)
        page.get_by_role("button", name="Sign in").click()
        return page

    return go


@pytest.fixture
def run_worker_burst(app_config):
    """`python worker.py --burst` as a separate process with the test app's settings."""

    def run() -> subprocess.CompletedProcess:
        env = dict(os.environ, ENV_FILE=os.devnull)
        for name in ("SECRET_KEY", "INBOUND_EMAIL_PASSWORD", "DATABASE_URL", "REDIS_URL"):
            env[name] = str(app_config[name])
        env["INSTANCE_PATH"] = str(app_config["INSTANCE_PATH"])
        result = subprocess.run(
            [sys.executable, "worker.py", "--burst"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"worker failed:\n{result.stdout}\n{result.stderr}"
        return result

    return run


AXE = Path(__file__).resolve().parents[2] / ".cache/axe/node_modules/axe-core/axe.min.js"


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the current page, readable."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run make test-deps")
    page.evaluate(AXE.read_text())  # evaluated, not injected: the page's CSP stays strict
    found = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter(v => ['serious', 'critical'].includes(v.impact))"
        ".map(v => v.id + ': ' + v.help + ' @ ' + v.nodes.map(n => n.target).join(', '))"
    )
    return found
