"""The API's own description: the one endpoint that needs no token (see `authenticate`)."""

from __future__ import annotations

from pathlib import Path

from flask import Response

from blueprints.api.blueprint import bp

# The API described in OpenAPI 3.1; tests/integration/test_openapi.py holds the API to it.
# It stays beside the package (blueprints/api_openapi.json), where the README links to it.
OPENAPI_DOCUMENT = (Path(__file__).parents[1] / "api_openapi.json").read_bytes()


@bp.get("/openapi.json")
def openapi_document():
    response = Response(OPENAPI_DOCUMENT, mimetype="application/json")
    response.headers["Cache-Control"] = "no-cache"
    return response
