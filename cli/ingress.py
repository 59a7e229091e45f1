"""`flask ingress relay|postfix|exim|qmail`: relay one message on stdin to the relay ingress.

URL and INGRESS_PASSWORD (options or environment) are all it needs: the flask command then
loads a bare app (app.create_relay_app), never the server's settings, so nothing unrelated
(a missing SECRET_KEY, an unreachable database) stops mail. Only when one of them is missing
does it read APP_URL and INBOUND_EMAIL_PASSWORD, from the env file every process reads.
ingress/relay_cli.py is the same command without Flask (`threadline-relay`).
"""

from __future__ import annotations

import sys

import click
from flask import current_app

from config import Problem, Settings, load_env_file
from extensions import get_settings
from ingress import relay_cli, relayer
from runtime.flask_dotenv import flask_cli_loading_the_app

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


def relay_command_requested(argv: list[str] | None = None) -> bool:
    """True when the flask command is loading the app for `ingress <flavour>` (or its help)."""
    argv = sys.argv if argv is None else argv
    if flask_cli_loading_the_app() is None:
        return False
    following = [*argv[1:], "--help"]  # `flask ingress` alone shows the group's help
    return any(
        arg == "ingress" and following[index] in (*relayer.FLAVOURS, "--help")
        for index, arg in enumerate(argv)
    )


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
    @click.option(
        "--client-address",
        metavar="IP",
        help="The SMTP client's IP address (Postfix ${client_address}, Exim "
        "$sender_host_address): Threadline then checks SPF itself.",
    )
    @click.option(
        "--helo",
        metavar="NAME",
        help="The name the client gave in HELO/EHLO (Postfix ${client_helo}, Exim "
        "$sender_helo_name).",
    )
    @click.option(
        "--sender",
        metavar="ADDRESS",
        help="The envelope sender, MAIL FROM (Postfix ${sender}, Exim $sender_address); "
        "empty for a delivery report.",
    )
    def command(
        url: str | None,
        password: str | None,
        timeout: float,
        connect_timeout: float,
        client_address: str | None,
        helo: str | None,
        sender: str | None,
    ):
        connection = {"client_address": client_address, "helo": helo, "sender": sender}
        try:
            result = _relay_stdin(url, password, timeout, connect_timeout, connection)
        except Exception as exc:  # whatever happens, the MTA gets a status line and an exit code
            result = relayer.Result("4.0.0", f"Error: {exc}", relayer.Outcome.TEMPORARY)
        click.echo(result.line)
        raise SystemExit(relayer.exit_code(flavour, result))


def _relay_stdin(
    url: str | None,
    password: str | None,
    timeout: float,
    connect_timeout: float,
    connection: dict[str, str | None],
) -> relayer.Result:
    if not (url and password):
        settings, problems = _app_settings()
        if problems:
            # The password is most likely in the file that could not be read: a temporary
            # failure, so the MTA keeps the message until the file is readable again.
            return relayer.Result(
                "4.3.5", f"Cannot read the settings: {problems[0]}", relayer.Outcome.TEMPORARY
            )
        url = url or settings.app_url + relayer.RELAY_PATH
        password = password or settings.inbound_email_password
    return relay_cli.relay_stdin(
        url,
        password,
        url_hint="pass --url or set URL or APP_URL",
        password_hint="pass --password, or set INGRESS_PASSWORD or INBOUND_EMAIL_PASSWORD",
        connect_timeout=connect_timeout,
        read_timeout=timeout,
        **connection,
    )


def _app_settings() -> tuple[Settings, list[Problem]]:
    """The loaded app's settings, else read (not validated) from the one env file: relaying
    needs APP_URL and INBOUND_EMAIL_PASSWORD, whatever else the configuration lacks."""
    if current_app and "threadline.settings" in current_app.extensions:
        return get_settings(), []
    problems = load_env_file()
    return Settings.from_env(), problems


for _flavour in relayer.FLAVOURS:
    _register(_flavour)
