"""Blueprint registration and the error pages every response falls back to."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from extensions import db


def register_all(app: Flask) -> None:
    from blueprints.admin import bp as admin_bp
    from blueprints.agents import bp as agents_bp
    from blueprints.api import bp as api_bp
    from blueprints.attachments import bp as attachments_bp
    from blueprints.auth import bp as auth_bp
    from blueprints.contacts import bp as contacts_bp
    from blueprints.conversations import bp as conversations_bp
    from blueprints.fragment_cache import register as register_fragment_cache
    from blueprints.health import bp as health_bp
    from blueprints.home import bp as home_bp
    from blueprints.inbound import bp as inbound_bp
    from blueprints.inboxes import bp as inboxes_bp
    from blueprints.inboxes import global_bp as global_rules_bp
    from blueprints.ingress import bp as ingress_bp
    from blueprints.notifications import bp as notifications_bp
    from blueprints.presentation import register as register_presentation
    from blueprints.profile import bp as profile_bp
    from blueprints.saved_replies import bp as saved_replies_bp
    from blueprints.security_headers import register as register_security_headers
    from blueprints.two_factor import bp as two_factor_bp
    from blueprints.unsubscribe import bp as unsubscribe_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(home_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(inboxes_bp)
    app.register_blueprint(global_rules_bp)
    app.register_blueprint(agents_bp)
    app.register_blueprint(inbound_bp)
    app.register_blueprint(ingress_bp)
    app.register_blueprint(attachments_bp)
    app.register_blueprint(profile_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(conversations_bp)
    app.register_blueprint(contacts_bp)
    app.register_blueprint(saved_replies_bp)
    app.register_blueprint(two_factor_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(unsubscribe_bp)
    app.register_blueprint(notifications_bp)
    register_error_pages(app)
    register_security_headers(app)
    register_presentation(app)
    register_fragment_cache(app)


def register_error_pages(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError):
        message = "This form expired or was sent from another site. Reload the page and try again."
        return _error_page(400, "Form expired", message)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        body, status = _error_page(error.code or 500, error.name, error.description or "")
        return body, status, _exception_headers(error)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        # Never a traceback page: log it, roll back, and say what the user can do.
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        if app.config.get("PROPAGATE_EXCEPTIONS"):
            raise error
        return _error_page(
            500, "Something went wrong", "The error was logged. Try again in a moment."
        )


def _exception_headers(error: HTTPException) -> list[tuple[str, str]]:
    """What the exception says in headers besides its own body's type: `Allow` on a 405
    (RFC 9110 requires it), `Retry-After` and the like."""
    return [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]


def _error_page(status: int, title: str, message: str):
    if request.path.startswith(("/api/", "/rails/")):
        return {"error": message or title}, status  # the API's one error shape
    template = "errors/_error.html" if request.headers.get("HX-Request") else "errors/error.html"
    return render_template(template, status=status, title=title, message=message), status
