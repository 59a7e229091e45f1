"""/healthz and /readyz for load balancers: no sign-in, GET only, never cached.

/healthz says the process answers and touches nothing (no database, Redis or disk), so a
slow dependency never gets a healthy web process restarted. /readyz says whether this
process can serve: the database, Redis and storage answer (services/readiness.py); 503
names each that does not, with the error, so the balancer stops sending traffic here.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from extensions import csrf
from services.health import OK
from services.readiness import readiness_checks

bp = Blueprint("health", __name__)
csrf.exempt(bp)


def _answer(payload: dict, status: int) -> Response:
    response = jsonify(payload)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def healthz():
    return _answer({"status": "ok"}, 200)


@bp.get("/readyz")
def readyz():
    checks = readiness_checks()
    failed = [check.name for check in checks if check.state != OK]
    report = {}
    for check in checks:
        if check.state == OK:
            report[check.name] = {"ok": True}  # no hosts or paths for anonymous callers
        else:
            report[check.name] = {"ok": False, "error": check.detail, "fix": check.fix}
    payload = {"status": "unavailable" if failed else "ok", "failed": failed, "checks": report}
    return _answer(payload, 503 if failed else 200)
