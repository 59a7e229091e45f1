"""A local DNS stand-in (UDP on 127.0.0.1, a thread) for the Internet's DNS, which tests
cannot reach: it answers TXT questions from a dict the test fills (and A, AAAA, MX, PTR from
another, for SPF), NXDOMAIN for names it does not hold, an empty answer for a type a name
lacks, and records every question so a test can assert exactly what was asked."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

HOST = "127.0.0.1"
POLL_SECONDS = 0.05  # how soon the thread notices it should stop


@dataclass
class DNSServer:
    """What a test sees. records: name (no trailing dot) -> TXT records, each a str or
    bytes of any length. silent=True drops every question unanswered (a dead resolver)."""

    port: int
    records: dict[str, list[str | bytes]] = field(default_factory=dict)
    queries: list[tuple[str, str]] = field(default_factory=list)  # (name, type), in order
    # Other types: (name, type) -> records in zone-file text, e.g. ("example.com", "MX"):
    # ["10 mx.example.com."], ("mx.example.com", "A"): ["192.0.2.1"].
    rrsets: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    silent: bool = False
    # Seconds a resolver may cache an answer: 0 by default, so the session-wide stand-in's
    # records changed by one test are never read stale by the next.
    ttl: int = 0

    @property
    def nameserver(self) -> tuple[str, int]:
        """In the form Resolver and Settings.dns_nameserver use."""
        return HOST, self.port

    def answer(self, wire: bytes) -> bytes | None:
        """The response to one query, recorded; None for unparseable bytes or when silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return None
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.queries.append((name, dns.rdatatype.to_text(question.rdtype)))
        if self.silent:
            return None
        response = dns.message.make_response(query)
        rdtype = dns.rdatatype.to_text(question.rdtype)
        if name not in self.records and not any(key[0] == name for key in self.rrsets):
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT and name in self.records:
            rrset = dns.rrset.RRset(question.name, dns.rdataclass.IN, dns.rdatatype.TXT)
            for text in self.records[name]:
                rrset.add(_txt(text), ttl=self.ttl)
            response.answer.append(rrset)
        elif (name, rdtype) in self.rrsets:
            rrset = dns.rrset.RRset(question.name, dns.rdataclass.IN, question.rdtype)
            for text in self.rrsets[name, rdtype]:
                rrset.add(dns.rdata.from_text("IN", rdtype, text), ttl=self.ttl)
            response.answer.append(rrset)
        return response.to_wire()


def _txt(text: str | bytes) -> dns.rdtypes.ANY.TXT.TXT:
    """One TXT record, split into the 255-byte strings the format allows (a DKIM key is
    longer)."""
    data = text.encode() if isinstance(text, str) else text
    chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks)


@contextmanager
def dns_server(
    records: dict[str, list[str | bytes]] | None = None, *, silent: bool = False
) -> Iterator[DNSServer]:
    """Serve until the block ends. Port 0: the kernel picks a free one, no race."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.settimeout(POLL_SECONDS)
    server = DNSServer(port=sock.getsockname()[1], records=dict(records or {}), silent=silent)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                wire, client = sock.recvfrom(4096)
            except TimeoutError:
                continue
            response = server.answer(wire)
            if response is not None:
                sock.sendto(response, client)

    thread = threading.Thread(target=serve, name="dns-stand-in", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()
