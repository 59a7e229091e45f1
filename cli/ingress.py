"""`flask ingress relay|postfix|exim|qmail`: relay one message on stdin to the relay ingress."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from extensions import get_settings
from ingress import relayer

SHORT_HELP = {
    "relay": "Relay stdin; exit 0, or 75 for any failure.",
    "postfix": "For Postfix: exit 0, or 75 for any failure.",
    "exim": "For Exim: exit 0, 75 temporary, 64 usage.",
    "qmail": "For qmail: exit 0, 111 temporary, 100 empty message.",
}
FLAVOUR_HELP = {
    "relay": "Generic: exit 0, or 75 (EX_TEMPFAIL) for any failure.",
    "postfix": (
        "For a Postfix pipe(8) transport or mailbox_command: exit 0, or 75 (EX_TEMPFAIL) for "
        "any failure, so Postfix keeps the message and retries."
    ),
    "exim": (
        "For an Exim pipe transport: exit 0; 75 (EX_TEMPFAIL) when Threadline refused or could "
        "not be reached; 64 (EX_USAGE) with no URL or password, or an empty message."
    ),
    "qmail": (
        "For a .qmail line: exit 0; 111 (temporary: refused, unreachable, no URL or password); "
        "100 (permanent) for an empty message."
    ),
}


@click.group("ingress", help="Relay a message from an MTA (on stdin) to the relay ingress.")
def ingress_group() -> None:
    pass


def _register(flavour: str) -> None:
    @ingress_group.command(
        flavour,
        short_help=SHORT_HELP[flavour],
        help=f"Relay one RFC 822 message from stdin. {FLAVOUR_HELP[flavour]} Prints one "
        "SMTP-style status line (2.0.0 relayed, 4.x.x failed).",
    )
    @click.option(
        "--url",
        envvar="URL",
        help="Relay ingress URL [env URL; default APP_URL + " + relayer.RELAY_PATH + "].",
    )
    @click.option(
        "--password",
        envvar="INGRESS_PASSWORD",
        help="Basic-auth password of user actionmailbox "
        "[env INGRESS_PASSWORD; default INBOUND_EMAIL_PASSWORD].",
    )
    @click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=relayer.READ_TIMEOUT,
        show_default=True,
        help="Seconds each send or receive may take once connected.",
    )
    @click.option(
        "--connect-timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=relayer.CONNECT_TIMEOUT,
        show_default=True,
        help="Seconds to establish the connection.",
    )
    @with_appcontext
    def command(url: str | None, password: str | None, timeout: float, connect_timeout: float):
        try:
            result = _relay_stdin(url, password, timeout, connect_timeout)
        except Exception as exc:  # whatever happens, the MTA gets a status line and an exit code
            result = relayer.Result("4.0.0", f"Error: {exc}", relayer.Outcome.TEMPORARY)
        click.echo(result.line)
        raise SystemExit(relayer.exit_code(flavour, result))


def _relay_stdin(
    url: str | None, password: str | None, timeout: float, connect_timeout: float
) -> relayer.Result:
    settings = get_settings()
    url = url or settings.app_url + relayer.RELAY_PATH
    password = password or settings.inbound_email_password
    if not password:
        return relayer.usage(
            "No ingress password: pass --password, or set INGRESS_PASSWORD or "
            "INBOUND_EMAIL_PASSWORD"
        )
    problem = relayer.check_url(url)
    if problem:
        return relayer.usage(f"{problem}: pass --url or set URL or APP_URL")
    if sys.stdin is None:
        return relayer.usage("Pipe the message to standard input (there is none)")
    stdin = sys.stdin.buffer  # bytes, as received: no decoding, no newline translation
    if stdin.isatty():
        return relayer.usage("Pipe the message to standard input (it is a terminal)")
    message = stdin.read()
    return relayer.relay(
        message, url, password, connect_timeout=connect_timeout, read_timeout=timeout
    )


for _flavour in relayer.FLAVOURS:
    _register(_flavour)
