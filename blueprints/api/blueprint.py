"""The API blueprint apart from its routes: its errors, the bearer-token check every request
passes and the JSON response, so that every view module imports them from here."""

from __future__ import annotations

import json

from flask import Blueprint, Response, g, request
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from extensions import csrf, db
from models import User
from models.users import hash_api_token

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # bearer tokens only: a browser's cookie never authenticates here


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@bp.errorhandler(ApiError)
def api_error(error: ApiError):
    response = _error(error.status, error.message)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="threadline"'
        if request.headers.get("Authorization"):
            response.headers["WWW-Authenticate"] += ', error="invalid_token"'
    return response


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException):
    response = _error(error.code or 500, error.description or error.name)
    for name, value in error.get_headers():  # e.g. Allow on a 405
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def json_response(payload, status: int = 200) -> Response:
    response = Response(json.dumps(payload), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.before_request
def authenticate() -> None:
    """`Authorization: Bearer <token>` of an active user; nothing else is accepted."""
    if request.endpoint == "api.openapi_document":
        return  # the description of the API is public; everything it describes needs a token
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "send your API token as 'Authorization: Bearer <token>'")
    user = db.session.scalar(select(User).where(User.api_token_hash == hash_api_token(token)))
    if user is None or not user.active:
        raise ApiError(401, "the API token is not valid: generate a new one on your profile page")
    g.api_user = user


def api_user() -> User:
    """The user whose token authenticated this request (set by `authenticate`)."""
    return g.api_user
