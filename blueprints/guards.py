"""Access guards shared by the admin pages of several features (system, agents, inboxes,
inbound log). Kept out of any blueprint module so one feature never imports another's views."""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required


def admin_required(view):
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403, "Only admins can open this page.")
        return view(*args, **kwargs)

    return wrapped
