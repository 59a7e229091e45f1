"""Checks of Threadline's own state, shared by `flask doctor` and the admin system page:
workers and the scheduler, the mail waiting for them, file modes and the ingresses; and the
Check they all return (the servers the app talks to: services/health_servers.py)."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

from redis import Redis
from rq.cron_scheduler_registry import get_keys as cron_scheduler_keys

from config import Settings
from ingress.paths import PATHS
from runtime.file_modes import loose_paths, private_paths
from services import ingress_refusals
from services.backlog import (
    START_WORKERS,
    Backlog,
    describe_age,
    describe_worker,
    gather_backlog,
)
from services.ingress_refusals import RecentRefusals

OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    state: str  # OK, WARN or FAIL
    detail: str
    fix: str = ""
    notes: tuple[str, ...] = ()  # one line each under the check (e.g. every worker)


def check_workers(connection: Redis | None, backlog: Backlog | None = None) -> list[Check]:
    """Workers and the scheduler, queue depths, and mail waiting for them (see services.backlog).
    No worker while mail waits is a failure: nothing will ever deliver it."""
    backlog = backlog or gather_backlog(connection)
    out = []
    if connection is None or backlog.workers is None:
        out.append(Check("workers", WARN, "not checked: Redis is unreachable", "fix Redis first"))
    elif backlog.workers:
        out.append(
            Check(
                "workers",
                OK,
                f"{len(backlog.workers)} worker(s) listening",
                notes=tuple(describe_worker(w) for w in backlog.workers),
            )
        )
    elif backlog.mail_waiting:
        out.append(
            Check("workers", FAIL, f"no worker is running and {waiting(backlog)}", START_WORKERS)
        )
    else:
        out.append(
            Check("workers", WARN, "no worker is running; mail will wait", "run: python worker.py")
        )
    if connection is None:
        return out + backlog_checks(backlog)
    schedulers = cron_scheduler_keys(connection)
    if schedulers:
        out.append(Check("scheduler", OK, f"{len(schedulers)} cron scheduler(s) running"))
    else:
        out.append(
            Check(
                "scheduler",
                WARN,
                "no scheduler is running; periodic jobs will not run",
                "run one: python worker.py --cron",
            )
        )
    return out + backlog_checks(backlog)


def waiting(backlog: Backlog) -> str:
    parts = []
    if backlog.stale_pending_inbound:
        parts.append(
            f"{backlog.stale_pending_inbound} inbound email(s) wait "
            f"(oldest {describe_age(backlog.oldest_pending_age)})"
        )
    if backlog.past_lease_inbound:
        parts.append(f"{backlog.past_lease_inbound} inbound email(s) were left by a dead worker")
    if backlog.stale_queued_replies or backlog.past_lease_sending:
        replies = backlog.stale_queued_replies + backlog.past_lease_sending
        parts.append(f"{replies} reply(ies) wait to be sent")
    return "; ".join(parts)


PAST_LEASE = "left by a stopped worker"
SWEEP_FIX = "the sweep hands them to a live worker every 15 s while a worker and the scheduler run"


def backlog_checks(backlog: Backlog) -> list[Check]:
    """Queue depths, pending inbound mail, rows left by a dead worker, replies to decide."""
    out = []
    if backlog.queues is not None:
        depths = ", ".join(f"{q.name} {q.waiting}" for q in backlog.queues)
        failed = sum(q.failed for q in backlog.queues)
        out.append(Check("queues", OK, f"waiting: {depths}; failed jobs: {failed}"))
    if backlog.database_error:
        note = f"not checked: the database is unreachable ({backlog.database_error})"
        return out + [Check("inbound mail", WARN, note), Check("replies", WARN, note)]
    stuck = f" (lease ran out {describe_age(backlog.oldest_stuck_age)} ago)"
    if not backlog.pending_inbound and not backlog.past_lease_inbound:
        out.append(Check("inbound mail", OK, "none pending"))
    else:
        detail = f"{backlog.pending_inbound} pending"
        if backlog.pending_inbound:
            detail += f", oldest {describe_age(backlog.oldest_pending_age)} old"
        if backlog.past_lease_inbound:
            detail += f"; {backlog.past_lease_inbound} processing {PAST_LEASE}{stuck}"
        bad = backlog.stale_pending_inbound or backlog.past_lease_inbound
        fix = f"see the workers line; {SWEEP_FIX}; flask inbound reprocess runs one again"
        out.append(Check("inbound mail", WARN if bad else OK, detail, fix))
    detail = f"{backlog.queued_replies} queued, {backlog.past_lease_sending} sending {PAST_LEASE}"
    if backlog.past_lease_sending:
        detail += stuck
    fix = SWEEP_FIX
    if backlog.unknown_replies:
        detail += f"; {backlog.unknown_replies} of unknown fate"
        fix = (
            "a worker died while handing a reply to the mail server: on its conversation, "
            f"send it again or mark it as sent; {SWEEP_FIX}"
        )
    bad = backlog.past_lease_sending or backlog.stale_queued_replies or backlog.unknown_replies
    out.append(Check("replies", WARN if bad else OK, detail, fix))
    if backlog.refusals is not None:
        out.append(refusals_check(backlog.refusals))
    return out


def refusals_check(refusals: RecentRefusals) -> Check:
    """Posts the ingresses refused in the last day: a provider may have dropped them."""
    hours = ingress_refusals.RECENT_HOURS
    if not refusals.posts or refusals.latest is None:
        return Check("refused posts", OK, f"none in the last {hours} hours")
    latest = refusals.latest
    detail = (
        f"{refusals.posts} in the last {hours} hours; latest {latest.last_at:%Y-%m-%d %H:%M} "
        f"UTC: {latest.ingress} answered {latest.status} to {latest.client_address} "
        f"({latest.reason})"
    )
    fix = (
        "see Refused posts in the Inbound log (/admin/inbound/refused); a sender may have "
        "dropped them: fix the credentials, the limit or the provider's settings"
    )
    return Check("refused posts", WARN, detail, fix)


def check_file_modes(settings: Settings) -> Check:
    """The database, stored mail, the embedded Redis' files and .env: owner-only. A warning,
    not a failure: everything still works, but other users on the machine can read mail."""
    loose = loose_paths(settings)
    if not loose:
        kinds = ", ".join(dict.fromkeys(what for what, _ in private_paths(settings)))
        return Check("file modes", OK, f"owner-only: {kinds or 'nothing created yet'}")
    paths = [path for path, _ in loose]
    # A folder's `chmod -R` covers what is inside it: name each loose tree once.
    tops = [p for p in paths if not any(p.startswith(other + os.sep) for other in paths)]
    modes = dict(loose)
    listing = ", ".join(f"{path} ({modes[path]:04o})" for path in tops)
    return Check(
        "file modes",
        WARN,
        f"not owner-only (group or others have access): {listing}",
        f"chmod -R go-rwx {' '.join(shlex.quote(p) for p in tops)}; "
        "and start Threadline with umask 077 (make run and flask serve do)",
    )


SECRET_KINDS = {
    "mailgun": "signing key set",
    "mandrill": "signing key set",
    "ses": "topic allow-list set",
    "postal": "public key set",
    "sparkpost": "token set",
    "mailersend": "signing secret set",
    "resend": "signing secret and API key set",
}


def check_ingresses(settings: Settings) -> list[Check]:
    out = []
    for name in settings.inbound_services:
        url = settings.app_url + PATHS[name]
        secret = SECRET_KINDS.get(name, "password set")
        out.append(Check(f"ingress {name}", OK, f"{url} ({secret})"))
    if not settings.inbound_domain:
        out.append(
            Check(
                "inbound domain",
                WARN,
                "MAILER_INBOUND_EMAIL_DOMAIN is empty: no forwarding or reply+ addresses",
                "set it to the domain whose MX records point at your ingress",
            )
        )
    else:
        out.append(Check("inbound domain", OK, f"reply+<token>@{settings.inbound_domain}"))
    return out
