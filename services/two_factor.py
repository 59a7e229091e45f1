"""Two-factor sign-in: time-based codes (TOTP, RFC 6238) and one-time recovery codes.

- The secret is stored from "set up" on (encrypted at rest, like every secret), but counts
  only once a code from the user's app confirmed it (`totp_enabled_at`): a half-finished
  setup never locks anybody out. After that it is never shown again.
- A code is accepted in the time step before, the current one and the next one
  (valid_window=1: a phone clock 30 s off still works), and never twice: the accepted step
  is stored with a conditional UPDATE, so two requests racing with one code cannot both
  win. Recovery codes are consumed the same way.
- Recovery codes are random (about 49 bits each), shown once and stored as SHA-256 hashes:
  like API tokens, high entropy makes a fast hash enough.
- Wrong codes at sign-in are counted per account in Redis; the count is read before a
  code is checked, so a locked account gets no more guesses, right or wrong.

Nothing here logs a secret or a code. Every function that changes a user commits.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from enum import Enum

import pyotp
import segno
from markupsafe import Markup
from redis.exceptions import RedisError
from sqlalchemy import update

from extensions import db, get_redis
from models import User, utcnow
from services.sessions import end_sessions

log = logging.getLogger(__name__)

ISSUER = "Threadline"
STEP_SECONDS = 30
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to mistype
WRONG_CODE_LIMIT = 5  # wrong codes per account at sign-in …
WRONG_CODE_WINDOW = 15 * 60  # … per this many seconds

WRONG_PASSWORD = "That password is not right. Type the password you sign in with."


class TwoFactorError(Exception):
    """A refusal whose message says what to do; shown to the user as it is."""


class CodeCheck(Enum):
    ACCEPTED = "accepted"
    REUSED = "reused"
    WRONG = "wrong"


def normalize(code: str | None) -> str:
    """What the user typed, without spaces, dashes and case: "123 456" is "123456"."""
    return re.sub(r"[\s-]+", "", code or "").lower()


def is_app_code(code: str) -> bool:
    return len(code) == 6 and code.isdigit()


def start_enrolment(user: User) -> None:
    """A new secret for the user's app; two-factor sign-in is not on until it is confirmed."""
    if user.has_two_factor:
        raise TwoFactorError(
            "Two-factor sign-in is already on. To move it to a new phone, turn it off "
            "with your password and set it up again."
        )
    user.totp_secret = pyotp.random_base32()
    user.totp_last_step = None
    db.session.commit()


def cancel_enrolment(user: User) -> None:
    if not user.has_two_factor and user.totp_secret:
        user.totp_secret = None
        db.session.commit()


def enrolment_secret(user: User) -> str:
    """The secret in groups of four for typing into an app; only while setting up."""
    if user.has_two_factor or not user.totp_secret:
        raise TwoFactorError("There is no two-factor setup in progress; start it again.")
    return " ".join(re.findall(".{1,4}", user.totp_secret))


def provisioning_uri(user: User) -> str:
    enrolment_secret(user)  # the same guard: never for a confirmed secret
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(uri: str) -> Markup:
    """The URI as an inline SVG QR code. segno writes the colours as attributes (fill=,
    stroke=), never style=, so the page's CSP (style-src 'self') accepts it; the light
    background is drawn so that the code scans on a dark theme too."""
    svg = segno.make(uri, error="m").svg_inline(
        scale=5,
        dark="#000",
        light="#fff",
        svgclass="totp-qr",
        lineclass=None,
        title="QR code for your authenticator app",
    )
    if "style" in svg:  # a future segno could; the CSP would then hide the code
        raise RuntimeError("segno wrote a style attribute into the QR code's SVG")
    return Markup(svg)


def _matching_step(secret: str, code: str, now: float) -> int | None:
    totp = pyotp.TOTP(secret)
    current = int(now // STEP_SECONDS)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def _claim_step(user: User, step: int) -> bool:
    """Record `step` as used unless it (or a later one) already was; atomic across workers."""
    claimed = db.session.execute(
        update(User)
        .where(User.id == user.id)
        .where((User.totp_last_step.is_(None)) | (User.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    db.session.refresh(user)
    return bool(claimed)


def check_app_code(user: User, code: str, now: float | None = None) -> CodeCheck:
    """Accept a 6-digit code from the app once; it is used up when accepted."""
    code = normalize(code)
    if not user.totp_secret or not is_app_code(code):
        return CodeCheck.WRONG
    step = _matching_step(user.totp_secret, code, time.time() if now is None else now)
    if step is None:
        return CodeCheck.WRONG
    return CodeCheck.ACCEPTED if _claim_step(user, step) else CodeCheck.REUSED


def _hash_code(code: str) -> str:
    return hashlib.sha256(normalize(code).encode()).hexdigest()


def _new_recovery_codes(user: User) -> list[str]:
    codes = [
        "-".join("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(5)) for _ in "ab")
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    user.recovery_code_hashes = json.dumps([_hash_code(code) for code in codes])
    return codes


def _stored_hashes(user: User) -> list[str]:
    try:
        hashes = json.loads(user.recovery_code_hashes or "[]")
    except ValueError:
        return []
    return [h for h in hashes if isinstance(h, str)] if isinstance(hashes, list) else []


def recovery_codes_left(user: User) -> int:
    return len(_stored_hashes(user)) if user.has_two_factor else 0


def use_recovery_code(user: User, code: str) -> int | None:
    """Spend a recovery code: the number left afterwards, or None when it is not one of
    the user's unused codes. A conditional UPDATE, so one code cannot sign in twice."""
    stored = user.recovery_code_hashes
    hashes = _stored_hashes(user)
    digest = _hash_code(code)
    if not user.has_two_factor or not any(hmac.compare_digest(digest, h) for h in hashes):
        return None
    remaining = [h for h in hashes if not hmac.compare_digest(digest, h)]
    spent = db.session.execute(
        update(User)
        .where(User.id == user.id, User.recovery_code_hashes == stored)
        .values(recovery_code_hashes=json.dumps(remaining))
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    db.session.refresh(user)
    return len(remaining) if spent else None


def confirm_enrolment(user: User, code: str, now: float | None = None) -> list[str]:
    """Turn two-factor sign-in on with a code from the app; returns the recovery codes to
    show once. Every other browser of the user is signed out."""
    code = normalize(code)
    if user.has_two_factor:
        raise TwoFactorError("Two-factor sign-in is already on.")
    if not user.totp_secret:
        raise TwoFactorError("This setup was cancelled or never started; start it again.")
    step = _matching_step(user.totp_secret, code, time.time() if now is None else now)
    if not is_app_code(code) or step is None:
        raise TwoFactorError(
            "That code does not match. Type the 6 digits your app shows now for Threadline; "
            "if it still fails, check that your phone sets its time automatically, or scan "
            "the QR code again."
        )
    user.totp_enabled_at = utcnow()
    user.totp_last_step = step
    codes = _new_recovery_codes(user)
    end_sessions(user, keep_current=True)
    db.session.commit()
    log.info("two-factor sign-in turned on for user %s", user.id)
    return codes


def regenerate_recovery_codes(user: User, password: str) -> list[str]:
    """New recovery codes (the old ones stop working), after the current password."""
    if not user.has_two_factor:
        raise TwoFactorError("Two-factor sign-in is off, so there are no recovery codes.")
    if not user.check_password(password or ""):
        raise TwoFactorError(WRONG_PASSWORD)
    codes = _new_recovery_codes(user)
    db.session.commit()
    return codes


def disable(user: User, password: str) -> None:
    """Turn two-factor sign-in off after the current password; other browsers sign out."""
    if not user.check_password(password or ""):
        raise TwoFactorError(WRONG_PASSWORD)
    _turn_off(user, keep_current=True)
    log.info("two-factor sign-in turned off for user %s", user.id)


def reset_by_operator(user: User) -> None:
    """`flask admin reset-2fa`: for someone who lost both phone and recovery codes. Every
    session of theirs ends, so whoever holds one must sign in again with the password."""
    _turn_off(user, keep_current=False)
    log.info("two-factor sign-in reset by an operator for user %s", user.id)


def _turn_off(user: User, keep_current: bool) -> None:
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    user.recovery_code_hashes = None
    end_sessions(user, keep_current=keep_current)
    db.session.commit()


def _wrong_code_key(user_id: int) -> str:
    return f"threadline:throttle:second-factor:{user_id}"


def wrong_code_wait(user_id: int) -> int:
    """Seconds until this account may try a code again (0 = now). Fails open when Redis is
    down, like the password throttle: signing in must not depend on the counter."""
    key = _wrong_code_key(user_id)
    try:
        count, ttl = get_redis().pipeline().get(key).ttl(key).execute()
    except (RedisError, OSError) as exc:
        log.warning("second-factor throttle unavailable (Redis): %s", exc)
        return 0
    return max(int(ttl), 1) if int(count or 0) >= WRONG_CODE_LIMIT else 0


def record_wrong_code(user_id: int) -> int:
    """Count a wrong code; when it was the last one allowed, the seconds to wait."""
    key = _wrong_code_key(user_id)
    try:
        pipe = get_redis().pipeline()
        pipe.set(key, 0, ex=WRONG_CODE_WINDOW, nx=True)  # the window starts at the first
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("second-factor throttle unavailable (Redis): %s", exc)
        return 0
    return max(int(ttl), 1) if int(count) >= WRONG_CODE_LIMIT else 0


def clear_wrong_codes(user_id: int) -> None:
    try:
        get_redis().delete(_wrong_code_key(user_id))
    except (RedisError, OSError) as exc:
        log.warning("second-factor throttle unavailable (Redis): %s", exc)
