"""IMAP IDLE: new mail in an IMAP inbox imported within seconds instead of a poll interval.

`python worker.py --idle` (the Procfile's `idle` line) runs one IdleSupervisor. Every
RESCAN_SECONDS it reads the inboxes to watch (IMAP mode, enabled, not archived, not waiting
for a person) and keeps one InboxWatcher thread per inbox: its own connection, signed in as
the poller signs in (mail/imap.py), the inbox's first folder selected read-only, in IDLE.

- On EXISTS or RECENT the watcher queues an immediate poll through enqueue_poll: the poll job
  takes the per-inbox Redis lock (jobs/imap_poll.py), so IDLE and polling never import at the
  same time. A poll already queued is enough; while one runs (its job started, or the lock
  held) the watcher waits for it to end and queues another, since the running one may have
  searched before this message arrived.
- IDLE is re-issued (DONE, IDLE) every RENEW_SECONDS, well before the 29-minute limit of
  RFC 2177, which is also how a connection that died silently is noticed.
- A dropped connection is reconnected after 1, 2, 4 ... MAX_BACKOFF_SECONDS; a poll is queued
  after every (re)connection, so whatever arrived while no IDLE was listening is imported.
- A server that does not advertise IDLE is left to polling (checked again on NO_IDLE_RECHECK).

"On by default for servers that advertise it": ImapSettings.use_idle is on for every inbox
(migration 0011) and the inbox is watched when its server advertises IDLE; an admin who
unticks it leaves the inbox to polling alone. Only the first folder of the inbox's
folder list is watched (one connection per inbox): mail filed into the other folders is
found by polling, which keeps running for every inbox as the safety net.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

from flask import Flask
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError

from extensions import db, get_redis
from jobs.imap_poll import lock_name
from mail.imap import ImapTarget, classify, connect
from models import ImapSettings, Inbox
from runtime.redis_outage import REDIS_DOWN
from services.background import enqueue_poll, job_is_waiting, poll_job_id
from services.mail_credentials import imap_target_for, inbox_oauth_token, token_failure
from services.oauth import OAuthError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 20  # seconds, also the timeout of every read outside IDLE
RESCAN_SECONDS = 60  # new, changed and removed inboxes are picked up this often
RENEW_SECONDS = 25 * 60  # DONE + IDLE before the server's 29-minute limit
CHECK_SECONDS = 1.0  # how long one wait for IDLE responses lasts: a stop is seen this fast
MAX_BACKOFF_SECONDS = 300
NO_IDLE_RECHECK = 30 * 60  # a server without IDLE is asked again this often
STOP_GRACE = 10  # seconds the supervisor waits for its watchers to sign out
NEW_MAIL = (b"EXISTS", b"RECENT")


@dataclass(frozen=True)
class Watch:
    """What a watcher needs; a change to any of it (new password, host, folder) restarts it.
    An OAuth inbox's target holds no token (`oauth`): one is fetched at each connection, so
    a refreshed token restarts nothing."""

    inbox_id: int
    target: ImapTarget
    folder: str
    oauth: bool = False


def inboxes_to_watch() -> dict[int, Watch]:
    """The IMAP inboxes polling would poll (due or not): enabled, not archived, not waiting
    for a person; and IDLE not turned off."""
    rows = db.session.scalars(
        select(ImapSettings)
        .join(Inbox, ImapSettings.inbox_id == Inbox.id)
        .where(
            Inbox.mode == "imap",
            Inbox.archived_at.is_(None),
            ImapSettings.enabled.is_(True),
            ImapSettings.use_idle.is_(True),
            or_(Inbox.needs_attention.is_(None), Inbox.needs_attention == ""),
        )
    ).all()
    return {
        s.inbox_id: Watch(
            s.inbox_id,
            imap_target_for(s, with_token=False),
            s.folder_list[0],
            oauth=s.inbox.oauth is not None,
        )
        for s in rows
    }


def backoff_seconds(failures: int) -> int:
    """1, 2, 4 ... 256, 300, 300 seconds after the 1st, 2nd, 3rd ... failure in a row."""
    return min(2 ** min(max(failures, 1) - 1, 10), MAX_BACKOFF_SECONDS)


def request_poll(inbox_id: int) -> bool:
    """Make sure a poll of the inbox starts after now; False while one is running (ask again
    when it is over). Redis errors raise."""
    job_id = poll_job_id(inbox_id)
    if job_is_waiting(job_id):
        try:
            status = Job.fetch(job_id, connection=get_redis()).get_status(refresh=False)
        except NoSuchJobError:  # finished between the two looks
            status = None
        if status == JobStatus.STARTED:
            return False
        if status is not None:
            return True  # queued: it has not searched the folder yet
    if get_redis().exists(lock_name(inbox_id)):  # a poll run outside the queue
        return False
    enqueue_poll(inbox_id)
    return True


class ConnectionDropped(Exception):
    """The server said BYE or closed the connection while we were in IDLE."""


class InboxWatcher(threading.Thread):
    """One inbox's IDLE connection, reconnected with backoff until stop()."""

    def __init__(self, app: Flask, watch: Watch):
        super().__init__(name=f"imap-idle-{watch.inbox_id}", daemon=True)
        self.app = app
        self.watch = watch
        self.stopping = threading.Event()
        self.connections = 0  # successful sign-ins so far (tests and the log read it)
        self.polls_requested = 0
        self._poll_pending = False
        self._redis_down = False

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        inbox_id = self.watch.inbox_id
        failures = 0
        while not self.stopping.is_set():
            connections = self.connections
            try:
                wait = self._session()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - every failure is a reconnect
                failure = classify(exc, self.watch.target)
                # A connection that worked and then dropped starts the backoff afresh.
                failures = 1 if self.connections > connections else failures + 1
                wait = backoff_seconds(failures)
                if failure.permanent:  # the poll it queues marks the inbox "needs attention"
                    self._poll_pending = True
                    wait = MAX_BACKOFF_SECONDS
                log.warning(
                    "inbox #%d: IDLE connection lost: %s (failure %d in a row; "
                    "reconnecting in %d s)",
                    inbox_id,
                    failure,
                    failures,
                    wait,
                )
            self._flush_poll()  # a poll owed from before the drop is still owed
            self.stopping.wait(wait)

    def _session(self) -> float:
        """One connection: sign in, IDLE until stopped or dropped (raises). Returns how long
        to wait before the next one (only when the server has no IDLE)."""
        watch = self.watch
        with connect(self._signed_target(), CONNECT_TIMEOUT) as client:
            if not client.has_capability("IDLE"):
                log.info(
                    "inbox #%d: %s does not offer IMAP IDLE; polling only",
                    watch.inbox_id,
                    watch.target.address,
                )
                return NO_IDLE_RECHECK
            client.select_folder(watch.folder, readonly=True)
            self.connections += 1
            log.info(
                "inbox #%d: IDLE on %s at %s", watch.inbox_id, watch.folder, watch.target.address
            )
            # Whatever arrived while nobody listened (before the first connection, or during
            # an outage) is imported by a poll right now.
            self._poll_pending = True
            self._idle(client)
        return 0

    def _signed_target(self) -> ImapTarget:
        """The watch's target, with a valid OAuth token when the inbox signs in with one (a
        refused refresh token is a refused sign-in; an unreachable provider, a drop)."""
        if not self.watch.oauth:
            return self.watch.target
        try:
            with self.app.app_context():
                token = inbox_oauth_token(self.watch.inbox_id)
        except OAuthError as exc:
            raise token_failure(exc) from exc
        return replace(self.watch.target, oauth_token=token)

    def _idle(self, client: IMAPClient) -> None:
        client.idle()
        try:
            since = time.monotonic()
            while not self.stopping.is_set():
                started = time.monotonic()
                responses = client.idle_check(timeout=CHECK_SECONDS)
                if any(r[0] == b"BYE" for r in responses):
                    raise ConnectionDropped(f"the server said BYE: {_bye(responses)}")
                if any(len(r) > 1 and r[1] in NEW_MAIL for r in responses):
                    self._poll_pending = True
                self._flush_poll()
                quick = not responses and time.monotonic() - started < CHECK_SECONDS / 2
                # idle_check swallows an end of file (returns nothing at once): DONE then
                # raises on a closed connection. Also the periodic renewal.
                if quick or time.monotonic() - since >= RENEW_SECONDS:
                    self._renew(client)
                    since = time.monotonic()
        finally:
            if self.stopping.is_set():
                try:
                    client.idle_done()
                except (IMAPClientError, OSError):
                    pass  # leaving anyway; the context manager shuts the socket

    def _renew(self, client: IMAPClient) -> None:
        _, responses = client.idle_done()
        if any(r[0] == b"BYE" for r in responses):
            raise ConnectionDropped(f"the server said BYE: {_bye(responses)}")
        if any(len(r) > 1 and r[1] in NEW_MAIL for r in responses):
            self._poll_pending = True
        client.idle()

    def _flush_poll(self) -> None:
        """Queue the poll owed, if any; kept owed while one runs or Redis is away."""
        if not self._poll_pending:
            return
        try:
            with self.app.app_context():
                queued = request_poll(self.watch.inbox_id)
        except REDIS_DOWN as exc:
            if not self._redis_down:
                log.warning("inbox #%d: cannot queue a poll (Redis: %s)", self.watch.inbox_id, exc)
            self._redis_down = True
            return
        self._redis_down = False
        if queued:
            self._poll_pending = False
            self.polls_requested += 1
            log.debug("inbox #%d: new mail (IDLE); poll queued", self.watch.inbox_id)


def _bye(responses: list) -> str:
    for response in responses:
        if response[0] == b"BYE":
            return " ".join(
                w.decode(errors="replace") if isinstance(w, bytes) else str(w) for w in response[1:]
            )
    return ""


class IdleSupervisor:
    """One InboxWatcher per inbox to watch, kept in step with the database."""

    def __init__(self, app: Flask, rescan_seconds: float = RESCAN_SECONDS):
        self.app = app
        self.rescan_seconds = rescan_seconds
        self.stopping = threading.Event()
        self.watchers: dict[int, InboxWatcher] = {}

    def run(self) -> None:
        """Until stop(): sync, then wait for the next rescan."""
        log.info("IMAP IDLE supervisor started")
        try:
            while not self.stopping.is_set():
                self.sync()
                self.stopping.wait(self.rescan_seconds)
        finally:
            self._stop_watchers()
            log.info("IMAP IDLE supervisor stopped")

    def stop(self) -> None:
        self.stopping.set()

    def sync(self) -> None:
        try:
            with self.app.app_context():
                wanted = inboxes_to_watch()
        except SQLAlchemyError as exc:  # keep the watchers we have; try again next rescan
            log.warning("IMAP IDLE: cannot read the inboxes to watch: %s", exc)
            return
        for inbox_id, watcher in list(self.watchers.items()):
            if wanted.get(inbox_id) != watcher.watch or not watcher.is_alive():
                watcher.stop()
                del self.watchers[inbox_id]
                if inbox_id not in wanted:
                    log.info("inbox #%d: IDLE stopped", inbox_id)
        for inbox_id, watch in wanted.items():
            if inbox_id not in self.watchers and not self.stopping.is_set():
                watcher = InboxWatcher(self.app, watch)
                self.watchers[inbox_id] = watcher
                watcher.start()

    def _stop_watchers(self) -> None:
        for watcher in self.watchers.values():
            watcher.stop()
        deadline = time.monotonic() + STOP_GRACE
        for watcher in self.watchers.values():
            watcher.join(max(deadline - time.monotonic(), 0))
        self.watchers.clear()
