"""REQUIRE_2FA_FOR_ADMINS: a signed-in admin without two-factor sign-in sees only the page
that sets it up (and can still sign out) until it is on.

The JSON API (/api/, its own bearer tokens) and the mail ingress (/rails/, provider
webhooks) are left alone: neither is a browser session that could enrol.
"""

from __future__ import annotations

from flask import request, url_for
from flask_login import current_user

from blueprints.htmx import navigate
from blueprints.two_factor.blueprint import bp
from extensions import get_settings

ALWAYS_OPEN = {"static", "auth.logout"}


@bp.before_app_request
def require_two_factor_for_admins():
    if not get_settings().require_2fa_for_admins:
        return None
    if request.path.startswith(("/api/", "/rails/")):
        return None
    if request.endpoint is None or request.endpoint in ALWAYS_OPEN:
        return None  # (no endpoint: the 404 page)
    if request.blueprint in ("two_factor", "health"):
        return None  # (health: load balancers, and no database lookup for /healthz)
    if not current_user.is_authenticated or not current_user.is_admin:
        return None
    if current_user.has_two_factor:
        return None
    # (htmx would swap a redirected page into a fragment; navigate makes it load the page.)
    return navigate(url_for("two_factor.manage"), htmx_status=200)
