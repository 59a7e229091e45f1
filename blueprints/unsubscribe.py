"""The unsubscribe link of notification emails: no sign-in, the signed token is the credential.

GET shows what the link turns off and one button; POST turns it off. The POST is also the
RFC 8058 one-click unsubscribe that mail providers send on the user's behalf, without a
session or CSRF token, so this one view is exempt from CSRF (the token, signed with
SECRET_KEY, names the user and the events; nothing else can be changed through it).
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from extensions import csrf
from services.notifications.unsubscribe import UnsubscribeLinkError, read_token, turn_off

bp = Blueprint("unsubscribe", __name__)


@bp.route("/notifications/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt
def unsubscribe(token: str):
    try:
        found = read_token(token)
    except UnsubscribeLinkError as exc:
        return render_template("notifications/unsubscribe.html", error=str(exc)), 400
    done = request.method == "POST"
    if done:
        turn_off(found)
    return render_template("notifications/unsubscribe.html", found=found, done=done)
