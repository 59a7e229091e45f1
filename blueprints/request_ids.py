"""A request id for every web request: the proxy's `X-Request-ID` when it is a sane token,
else a new one. It is on `g.request_id`, on every log line written during the request, and
echoed in the response's `X-Request-ID`, so a user's report, nginx's log and ours meet."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

from runtime.logs import current_request_id

HEADER = "X-Request-ID"
# Letters, digits and . _ : - up to 128: UUIDs, nginx's $request_id, most tracers' ids.
# Anything else (spaces, quotes, newlines, a kilobyte of text) is not copied into our logs.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def request_id_from(header: str | None) -> str:
    if header and SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def register(app: Flask) -> None:
    def start_request_id() -> None:
        g.request_id = request_id_from(request.headers.get(HEADER))
        g.request_id_token = current_request_id.set(g.request_id)

    def echo_request_id(response: Response) -> Response:
        if "request_id" in g:
            response.headers[HEADER] = g.request_id
        return response

    def end_request_id(_error: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            current_request_id.reset(token)

    # First of the app's hooks, so every other one already logs with the id; its teardown
    # runs last (Flask calls teardowns in reverse order).
    app.before_request_funcs.setdefault(None, []).insert(0, start_request_id)
    app.after_request(echo_request_id)
    app.teardown_request_funcs.setdefault(None, []).insert(0, end_request_id)
