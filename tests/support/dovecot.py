"""A real, private Dovecot IMAP server for tests (Debian's dovecot-imapd).

One instance per test session on a free port, with a passwd-file user and a Maildir in a
temp dir; plain IMAP, or implicit TLS with a self-signed certificate. With
`oauth_introspection_url` it also takes XOAUTH2/OAUTHBEARER sign-ins, whose bearer tokens its
oauth2 passdb checks against that RFC 7662 introspection endpoint (tests/support/
oauth_provider.py); passwords keep working for the same users. `stop()`/`start()` simulate an
outage, `deliver()` drops a message into the Maildir the way an MDA would (works
while the server is down), `append()` goes through IMAP.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from imapclient import IMAPClient

from tests.support.tls import make_self_signed

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
MAIL_UID = 65534  # Dovecot refuses uid 0 for mail users; nobody/nogroup owns the mail dirs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, MAIL_UID, MAIL_UID)
        for name in dirs + files:
            os.chown(os.path.join(root, name), MAIL_UID, MAIL_UID)


def _let_others_traverse(path: Path) -> None:
    """Dovecot's auth and mail processes run as other users: they need +x on every parent
    (pytest's and mkdtemp's directories are 0700)."""
    for parent in path.resolve().parents:
        info = parent.stat()
        if info.st_uid == os.geteuid() and not info.st_mode & 0o001:
            os.chmod(parent, info.st_mode | 0o011)


def private_base(prefix: str = "threadline-dovecot-") -> Path:
    """A directory outside pytest's /tmp/pytest-of-<user>, which every new pytest session on
    the machine chmods back to 0700 (locking Dovecot's auth process out of the users file)."""
    return Path(tempfile.mkdtemp(prefix=prefix)) / "dovecot"


class DovecotServer:
    def __init__(self, base: Path, tls: bool = False, oauth_introspection_url: str = ""):
        if "?" in oauth_introspection_url or "%" in oauth_introspection_url:
            # Dovecot 2.3's oauth2 passdb crashes on a query string or a %-variable there.
            raise ValueError("the introspection URL must be a plain URL")
        self.base = Path(base)
        self.tls = tls
        self.oauth_introspection_url = oauth_introspection_url
        self.host = "127.0.0.1"
        self.port = free_port()
        self.users: dict[str, str] = {}
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)
        _let_others_traverse(self.base)
        for sub in ("run", "state", "mail"):
            (self.base / sub).mkdir(exist_ok=True)
        os.chmod(self.base / "mail", 0o755)
        if tls:
            self.cert_path, self.key_path = make_self_signed(self.base, "localhost")
        self._write_config()

    # --- configuration ---------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.base / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.base / "dovecot.log"

    def _write_config(self) -> None:
        b = self.base
        if self.tls:
            ssl = f"ssl = required\nssl_cert = <{self.cert_path}\nssl_key = <{self.key_path}\n"
            listeners = (
                "  inet_listener imap {\n    port = 0\n  }\n"
                f"  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {self.port}\n"
                "    ssl = yes\n  }\n"
            )
        else:
            ssl = "ssl = no\n"
            listeners = (
                f"  inet_listener imap {{\n    address = 127.0.0.1\n    port = {self.port}\n  }}\n"
                "  inet_listener imaps {\n    port = 0\n  }\n"
            )
        self.config_path.write_text(self._base_config(b, ssl, listeners) + self._auth_config(b))

    @staticmethod
    def _base_config(b: Path, ssl: str, listeners: str) -> str:
        return (
            "protocols = imap\n"
            "listen = 127.0.0.1\n"
            f"base_dir = {b}/run\n"
            f"state_dir = {b}/state\n"
            f"log_path = {b}/dovecot.log\n"
            f"{ssl}"
            "disable_plaintext_auth = no\n"
            "auth_failure_delay = 0\n"
            "default_internal_user = dovecot\n"
            "default_internal_group = dovecot\n"
            "default_login_user = dovenull\n"
            "mail_location = maildir:~/Maildir\n"
            f"service imap-login {{\n{listeners}}}\n"
        )

    def _auth_config(self, b: Path) -> str:
        if not self.oauth_introspection_url:
            return (
                "auth_mechanisms = plain login\n"
                f"passdb {{\n  driver = passwd-file\n  args = scheme=SHA512-CRYPT {b}/users\n}}\n"
                f"userdb {{\n  driver = passwd-file\n  args = {b}/users\n}}\n"
            )
        (b / "dovecot-oauth2.conf.ext").write_text(
            "introspection_mode = post\n"
            f"introspection_url = {self.oauth_introspection_url}\n"
            "username_attribute = username\n"
            "active_attribute = active\n"
            "active_value = true\n"
        )
        # Passwords for the passwd-file users (tests APPEND with them), bearer tokens through
        # the identity provider; a token's user outside the file gets a home like home().
        # No per-IP penalty: refused tokens from 127.0.0.1 would slow every later sign-in.
        return (
            "auth_mechanisms = plain login xoauth2 oauthbearer\n"
            "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n"
            "passdb {\n  driver = passwd-file\n  mechanisms = plain login\n"
            f"  args = scheme=SHA512-CRYPT {b}/users\n}}\n"
            "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {b}/dovecot-oauth2.conf.ext\n}}\n"
            f"userdb {{\n  driver = passwd-file\n  args = {b}/users\n}}\n"
            "userdb {\n  driver = static\n"
            f"  args = uid={MAIL_UID} gid={MAIL_UID} home={b}/mail/%n_at_%d\n}}\n"
        )

    def add_user(self, username: str, password: str) -> None:
        """Add (or re-password) one mail user; usable at once (see add_users)."""
        self.add_users({username: password})

    def add_users(self, accounts: dict[str, str]) -> None:
        """Add mail users in one write of the passwd-file. Dovecot notices a changed file by
        its mtime in whole seconds, so wait out the current second before returning: a
        login in the same second could still see the old file."""
        for username, password in accounts.items():
            self.users[username] = subprocess.run(
                [DOVEADM, "-c", str(self.config_path), "pw", "-s", "SHA512-CRYPT", "-p", password],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            home = self.home(username)
            home.mkdir(parents=True, exist_ok=True)
            _chown_tree(home)
        lines = [
            f"{user}:{pw}:{MAIL_UID}:{MAIL_UID}::{self.home(user)}::"
            for user, pw in self.users.items()
        ]
        (self.base / "users").write_text("\n".join(lines) + "\n")
        written = int(time.time())
        while int(time.time()) == written:
            time.sleep(0.02)

    def home(self, username: str) -> Path:
        return self.base / "mail" / username.replace("@", "_at_")

    def maildir(self, username: str, folder: str = "INBOX") -> Path:
        root = self.home(username) / "Maildir"
        return root if folder == "INBOX" else root / f".{folder}"

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        subprocess.run([DOVECOT, "-c", str(self.config_path)], check=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen on {self.port}; log:\n{self.log()}")

    def stop(self, timeout: float = 10.0) -> None:
        pid_file = self.base / "run" / "master.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().strip())
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        # the listening socket may linger for a moment after the master exits
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    time.sleep(0.05)
            except OSError:
                return

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    # --- mail ------------------------------------------------------------------------------

    def client(self, username: str, password: str, oauth_token: str = "") -> IMAPClient:
        """A logged-in IMAPClient (tests use it to look at what the poller left behind); with
        oauth_token it signs in with XOAUTH2 instead of the password."""
        if self.tls:
            import ssl

            context = ssl.create_default_context(cafile=str(self.cert_path))
            context.check_hostname = False
            imap = IMAPClient(self.host, self.port, ssl=True, ssl_context=context, timeout=10)
        else:
            imap = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        if oauth_token:
            imap.oauth2_login(username, oauth_token)
        else:
            imap.login(username, password)
        return imap

    def append(self, username: str, password: str, raw: bytes, folder: str = "INBOX") -> None:
        with self.client(username, password) as imap:
            if folder != "INBOX" and not imap.folder_exists(folder):
                imap.create_folder(folder)
            imap.append(folder, raw)

    def deliver(self, username: str, raw: bytes, folder: str = "INBOX") -> Path:
        """Write into Maildir/new like an MDA; works while the server is stopped."""
        maildir = self.maildir(username, folder)
        for sub in ("new", "cur", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        name = f"{time.time():.6f}.{uuid.uuid4().hex}.test"
        tmp = maildir / "tmp" / name
        tmp.write_bytes(raw)
        target = maildir / "new" / name
        os.replace(tmp, target)
        _chown_tree(self.home(username))
        return target

    def reset_uidvalidity(self, username: str, folder: str = "INBOX") -> None:
        """Forget the folder's UID list and indexes (server must be stopped): Dovecot then
        assigns a new UIDVALIDITY and renumbers every message from 1."""
        maildir = self.maildir(username, folder)
        for path in maildir.iterdir():
            if path.name.startswith("dovecot") and path.is_file():
                path.unlink()
        for sub in ("cur", "new"):
            for message in (maildir / sub).glob("*"):
                # drop Dovecot's ,S=/W= size suffixes and flags so the files look new again
                os.replace(message, maildir / "new" / f"{uuid.uuid4().hex}.reset")
        _chown_tree(self.home(username))

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base.parent if self.base.name == "dovecot" else self.base, True)
