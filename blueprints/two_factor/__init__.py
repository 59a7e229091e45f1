"""Two-factor sign-in (TOTP): the second sign-in step, setting it up on the profile, and
REQUIRE_2FA_FOR_ADMINS. The work is in services/two_factor.py; these are thin views."""

from __future__ import annotations

from blueprints.two_factor import admin_rule, enrolment  # noqa: F401  (their routes and hooks)
from blueprints.two_factor.blueprint import bp
from blueprints.two_factor.second_step import begin_second_factor

__all__ = ["bp", "begin_second_factor"]
