"""`threadline-relay`: relay one message on stdin to Threadline's relay ingress, for MTAs.

It needs the relay ingress URL and its password, nothing else (--url and --password, or URL
and INGRESS_PASSWORD in the environment), as Action Mailbox's relayer does. It imports only
the standard library and ingress.relayer: no Flask, no database, no settings, so it runs on
a mail host without the server's configuration, and under any Python 3, the system's
included, run as a file (an MTA's user may not be allowed to execute the venv's interpreter):

    /usr/bin/python3 /srv/threadline/ingress/relay_cli.py --flavour postfix

`flask ingress <flavour>` (cli/ingress.py) is the same command, with the app's APP_URL and
INBOUND_EMAIL_PASSWORD as defaults. The exit codes are each flavour's (relayer.EXIT_CODES).
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__" and not __package__:
    # Run as a file: Python put ingress/ first on sys.path, but the package is one folder up.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from ingress import relayer  # noqa: E402  (after the path fix above)

URL_HINT = "pass --url or set URL"
PASSWORD_HINT = "pass --password or set INGRESS_PASSWORD"


def relay_stdin(
    url: str | None,
    password: str | None,
    *,
    url_hint: str = URL_HINT,
    password_hint: str = PASSWORD_HINT,
    connect_timeout: float = relayer.CONNECT_TIMEOUT,
    read_timeout: float = relayer.READ_TIMEOUT,
    client_address: str | None = None,
    helo: str | None = None,
    sender: str | None = None,
) -> relayer.Result:
    """Check the call, then relay the message on stdin; a bad call says what to pass.
    client_address, helo and sender: the SMTP connection, when the MTA passes it."""
    if not password:
        return relayer.usage(f"No ingress password: {password_hint}")
    if not url:
        return relayer.usage(f"No ingress URL: {url_hint}")
    problem = relayer.check_url(url)
    if problem:
        return relayer.usage(f"{problem}: {url_hint}")
    if sys.stdin is None:
        return relayer.usage("Pipe the message to standard input (there is none)")
    stdin = sys.stdin.buffer  # bytes, as received: no decoding, no newline translation
    if stdin.isatty():
        return relayer.usage("Pipe the message to standard input (it is a terminal)")
    return relayer.relay(
        stdin.read(),
        url,
        password,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        headers=relayer.connection_headers(client_address, helo, sender),
    )


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would exit 2, a code no MTA expects
        raise _UsageError(message)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds above 0")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="threadline-relay",
        allow_abbrev=False,
        description="Relay one RFC 822 message from stdin to Threadline's relay ingress. "
        "Prints one SMTP-style status line (2.0.0 relayed, 4.x.x failed) and exits with the "
        "code the flavour's MTA understands.",
    )
    parser.add_argument(
        "--flavour",
        "--flavor",
        choices=relayer.FLAVOURS,
        default="relay",
        help="exit codes for this MTA: relay and postfix 0/75, exim 0/75/64, "
        "qmail 0/111/100 (default: relay)",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("URL"),
        help="relay ingress URL, e.g. https://help.example.com" + relayer.RELAY_PATH + " [env URL]",
    )
    parser.add_argument(
        "--password",
        default=os.environ.get("INGRESS_PASSWORD"),
        help="Basic-auth password of user actionmailbox [env INGRESS_PASSWORD]",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=relayer.READ_TIMEOUT,
        help=f"seconds each send or receive may take once connected ({relayer.READ_TIMEOUT:g})",
    )
    parser.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=relayer.CONNECT_TIMEOUT,
        help=f"seconds to establish the connection ({relayer.CONNECT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--client-address",
        metavar="IP",
        help="the SMTP client's IP address (Postfix ${client_address}, Exim "
        "$sender_host_address): Threadline then checks SPF itself",
    )
    parser.add_argument(
        "--helo",
        metavar="NAME",
        help="the name the client gave in HELO/EHLO (Postfix ${client_helo}, Exim "
        "$sender_helo_name)",
    )
    parser.add_argument(
        "--sender",
        metavar="ADDRESS",
        help="the envelope sender, MAIL FROM (Postfix ${sender}, Exim $sender_address); "
        "empty for a delivery report",
    )
    return parser


def _flavour_named_in(argv: list[str]) -> str:
    """The flavour asked for, read leniently (for the exit code of a bad call), else relay."""
    for index, arg in enumerate(argv):
        name, _, value = arg.partition("=")
        if name in ("--flavour", "--flavor"):
            value = value or (argv[index + 1] if index + 1 < len(argv) else "")
            if value in relayer.FLAVOURS:
                return value
    return "relay"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as exc:
        result = relayer.usage(f"{exc} (see threadline-relay --help)")
        print(result.line, flush=True)
        return relayer.exit_code(_flavour_named_in(argv), result)
    try:
        result = relay_stdin(
            args.url,
            args.password,
            connect_timeout=args.connect_timeout,
            read_timeout=args.timeout,
            client_address=args.client_address,
            helo=args.helo,
            sender=args.sender,
        )
    except Exception as exc:  # whatever happens, the MTA gets a status line and an exit code
        result = relayer.Result("4.0.0", f"Error: {exc}", relayer.Outcome.TEMPORARY)
    print(result.line, flush=True)
    return relayer.exit_code(args.flavour, result)


if __name__ == "__main__":
    sys.exit(main())
