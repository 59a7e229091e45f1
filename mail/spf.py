"""SPF (RFC 7208): may this client address send mail for the MAIL FROM's domain?

check_host() evaluated here, through the same Resolver as DKIM (DNS_RESOLVER), for mail the
relay command says came from a client address (ingress/relay.py). Written here rather than
taken from PyPI: pyspf, which spf-engine and authheaders build on, last released in 2020,
and checkdmarc (kept) checks a domain's records but does not evaluate an address against
them. What is done, in RFC 7208's words:

- mechanisms all, include, a, mx, ptr, ip4, ip6, exists with qualifiers + - ~ ?; the
  redirect modifier (ignored when the record has "all"); exp= and unknown modifiers ignored
  (no explanation is shown to anyone);
- macros in domain-specs: s l o d i h v (p expands to "unknown", as section 7.3 allows:
  no PTR lookup for it), with digit and r transformers and delimiters; c r t (explanation
  only) are a permerror;
- at most 10 DNS-querying terms (include a mx ptr exists redirect), at most 10 names from one
  MX or PTR answer, at most 2 void lookups (an answer with no records): beyond, permerror;
- a DNS failure or timeout is a temperror; two SPF records, a syntax error, an include or
  redirect target without a record is a permerror.
The checked identity is MAIL FROM, or postmaster@HELO for the null sender (section 2.4).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from mail.sender_trust import DnsError, Resolver

MAX_LOOKUPS = 10
MAX_VOID = 2
MAX_NAMES = 10  # MX exchanges or PTR names looked at per mechanism
RESULTS = ("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror")
_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
_VERSION = re.compile(r"^v=spf1(?: |$)", re.IGNORECASE)
_MODIFIER = re.compile(r"^([a-z][a-z0-9_.\-]*)=(.*)$", re.IGNORECASE)
_MECHANISM = re.compile(r"^([+\-~?]?)([a-z0-9]+)(?::(.*?))?(?:/(\d+))?(?://(\d+))?$", re.I)
_MACRO = re.compile(r"%(?:\{([a-z])(\d*)(r?)([.\-+,/_=]*)\}|(.))", re.IGNORECASE)
_DOMAIN_LENGTH = 253


@dataclass(frozen=True)
class Envelope:
    """What the SMTP client said, as the relay command passed it (InboundEmail's columns)."""

    client_address: str
    helo: str | None = None
    mail_from: str | None = None  # "" = the null sender


@dataclass(frozen=True)
class SpfResult:
    result: str  # one of RESULTS
    domain: str  # the domain whose policy was checked ("" when there was none to check)
    sender: str  # the identity checked: the MAIL FROM, or postmaster@<HELO>
    reason: str  # what decided, for logs and tests


class _PermError(Exception):
    pass


class _TempError(Exception):
    pass


def check_spf(
    client_address: str, mail_from: str | None, helo: str | None, resolver: Resolver
) -> SpfResult:
    """The SPF result for a message from client_address (never raises)."""
    try:
        ip = ipaddress.ip_address(client_address)
    except ValueError:
        return SpfResult("none", "", "", f"{client_address!r} is not an IP address")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    sender = (mail_from or "").strip().strip("<>")
    if not sender:
        sender = f"postmaster@{helo}" if helo else ""
    elif "@" not in sender:
        sender = f"postmaster@{sender}"
    local, _, domain = sender.rpartition("@")
    domain = _ascii_domain(domain)
    if not _usable(domain):
        return SpfResult("none", domain, sender, "no domain to check")
    check = _Check(ip, local or "postmaster", domain, helo or "", resolver)
    try:
        result, why = check.check_host(domain)
    except _PermError as exc:
        return SpfResult("permerror", domain, sender, str(exc))
    except _TempError as exc:
        return SpfResult("temperror", domain, sender, str(exc))
    return SpfResult(result, domain, sender, why)


class _Check:
    """One check_host() evaluation: its lookup counts span includes and redirects."""

    def __init__(self, ip, local: str, domain: str, helo: str, resolver: Resolver):
        self.ip = ip
        self.local = local
        self.sender_domain = domain
        self.helo = helo
        self.resolver = resolver
        self.lookups = 0
        self.voids = 0

    def check_host(self, domain: str) -> tuple[str, str]:
        records = [r for r in self._txt(domain) if _VERSION.match(r)]
        if not records:
            return "none", f"{domain} publishes no SPF record"
        if len(records) > 1:
            raise _PermError(f"{domain} publishes {len(records)} SPF records")
        terms, redirect = _parse(records[0], domain)
        for qualifier, name, spec, cidr4, cidr6 in terms:
            if self._matches(name, spec or domain, domain, cidr4, cidr6):
                shown = f"{name}:{spec}" if spec else name
                return _QUALIFIERS[qualifier], f"{domain}: {qualifier}{shown} matched"
        if redirect is not None and not any(term[1] == "all" for term in terms):
            self._count()
            target = self._expand(redirect, domain)
            result, why = self.check_host(target)
            if result == "none":
                raise _PermError(f"{domain} redirects to {target}, which has no SPF record")
            return result, why
        return "neutral", f"{domain}: no mechanism matched"

    def _matches(self, name: str, spec: str, domain: str, cidr4, cidr6) -> bool:
        if name == "all":
            return True
        if name in ("ip4", "ip6"):
            return self._in_network(spec, cidr4 if name == "ip4" else cidr6, name)
        self._count()
        target = self._expand(spec, domain)
        if name == "include":
            result, _ = self.check_host(target)
            if result == "temperror":
                raise _TempError(f"include:{target}: DNS did not answer")
            if result in ("permerror", "none"):
                raise _PermError(f"include:{target} has no usable SPF record")
            return result == "pass"
        if name == "a":
            return self._any_in(self._addresses(target), cidr4, cidr6)
        if name == "mx":
            exchanges = self._query(target, "MX")
            if len(exchanges) > MAX_NAMES:
                raise _PermError(f"{target} has more than {MAX_NAMES} MX records")
            found = [a for mx in exchanges for a in self._addresses(mx, void=False)]
            return self._any_in(found, cidr4, cidr6)
        if name == "ptr":
            return self._ptr(target)
        if name == "exists":
            return bool(self._query(target, "A"))  # A whatever the client's version (5.7)
        raise _PermError(f"unknown mechanism {name!r}")

    def _ptr(self, target: str) -> bool:
        """The client's validated names (a PTR name whose addresses include the client's)
        that are target or end with .target. Discouraged by RFC 7208 (5.5), still seen."""
        names = self._query(ipaddress.ip_address(self.ip).reverse_pointer, "PTR")
        for name in names[:MAX_NAMES]:
            name = name.lower()
            if name != target and not name.endswith("." + target):
                continue
            if any(ipaddress.ip_address(a) == self.ip for a in self._addresses(name, False)):
                return True
        return False

    def _in_network(self, spec: str, cidr: str | None, name: str) -> bool:
        try:
            network = ipaddress.ip_network(f"{spec}/{cidr}" if cidr else spec, strict=False)
        except ValueError:
            raise _PermError(f"{name}:{spec} is not a network") from None
        if network.version != (4 if name == "ip4" else 6):
            raise _PermError(f"{name}:{spec} is not an IPv{name[-1]} network")
        return self.ip in network

    def _any_in(self, addresses: list[str], cidr4, cidr6) -> bool:
        length = (cidr4 or 32) if self.ip.version == 4 else (cidr6 or 128)
        for address in addresses:
            try:
                network = ipaddress.ip_network(f"{address}/{length}", strict=False)
            except ValueError:
                continue
            if self.ip in network:
                return True
        return False

    def _addresses(self, name: str, void: bool = True) -> list[str]:
        return self._query(name, "A" if self.ip.version == 4 else "AAAA", void)

    def _count(self) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise _PermError(f"more than {MAX_LOOKUPS} DNS lookups")

    def _query(self, name: str, rdtype: str, void: bool = True) -> list[str]:
        try:
            found = self.resolver.query(name, rdtype)
        except DnsError as exc:
            raise _TempError(str(exc)) from exc
        if not found and void:
            self.voids += 1
            if self.voids > MAX_VOID:
                raise _PermError(f"more than {MAX_VOID} lookups found nothing")
        return found

    def _txt(self, domain: str) -> list[str]:
        if not _usable(domain):
            return []
        try:
            records = self.resolver.txt(domain + ".")
        except DnsError as exc:
            raise _TempError(str(exc)) from exc
        return [r.decode("ascii", "replace") for r in records]

    def _expand(self, spec: str, domain: str) -> str:
        """A domain-spec with its macros expanded (section 7), shortened from the left to
        253 characters, lower-case."""
        values = {
            "s": f"{self.local}@{self.sender_domain}",
            "l": self.local,
            "o": self.sender_domain,
            "d": domain,
            "i": _dotted(self.ip),
            "h": self.helo,
            "v": "in-addr" if self.ip.version == 4 else "ip6",
            "p": "unknown",
        }

        def macro(match: re.Match) -> str:
            letter, digits, reverse, delimiters, escape = match.groups()
            if escape is not None:
                if escape in "%_-":
                    return {"%": "%", "_": " ", "-": "%20"}[escape]
                raise _PermError(f"bad macro %{escape} in {spec!r}")
            if letter.lower() not in values:
                raise _PermError(f"macro %{{{letter}}} is not allowed in {spec!r}")
            parts = re.split("[" + re.escape(delimiters or ".") + "]", values[letter.lower()])
            if reverse:
                parts.reverse()
            if digits:
                if int(digits) == 0:
                    raise _PermError(f"bad macro in {spec!r}")
                parts = parts[-int(digits) :]
            return ".".join(parts)

        if spec.endswith("%"):
            raise _PermError(f"bad macro in {spec!r}")
        expanded = _MACRO.sub(macro, spec).rstrip(".").lower()
        while len(expanded) > _DOMAIN_LENGTH and "." in expanded:
            expanded = expanded.split(".", 1)[1]
        return expanded


def _parse(record: str, domain: str) -> tuple[list[tuple], str | None]:
    """(mechanisms as (qualifier, name, domain-spec, cidr4, cidr6), redirect target); any
    syntax error anywhere is a permerror before anything is evaluated (section 4.6)."""
    terms, redirect, exp = [], None, None
    for term in record.split()[1:]:
        modifier = _MODIFIER.match(term)
        if modifier:
            name = modifier.group(1).lower()
            if name in ("redirect", "exp"):
                if (redirect if name == "redirect" else exp) is not None:
                    raise _PermError(f"{domain}: {name}= given twice")
                if name == "redirect":
                    redirect = modifier.group(2)
                else:
                    exp = modifier.group(2)
            continue
        match = _MECHANISM.match(term)
        if match is None:
            raise _PermError(f"{domain}: {term!r} is not a mechanism")
        qualifier, name, spec, cidr4, cidr6 = match.groups()
        name = name.lower()
        if name not in ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"):
            raise _PermError(f"{domain}: unknown mechanism {name!r}")
        needs_spec = name in ("include", "ip4", "ip6", "exists")
        if needs_spec and not spec or name == "all" and (spec or cidr4 or cidr6):
            raise _PermError(f"{domain}: {term!r} is malformed")
        if name == "ip6" and cidr6 is None and cidr4 is not None:
            cidr6, cidr4 = cidr4, None  # ip6's prefix takes a single slash
        if _bad_cidr(cidr4, 32) or _bad_cidr(cidr6, 128):
            raise _PermError(f"{domain}: {term!r} has a bad prefix length")
        terms.append((qualifier or "+", name, spec, cidr4, cidr6))
    return terms, redirect


def _bad_cidr(value: str | None, most: int) -> bool:
    return value is not None and not (0 <= int(value) <= most and value == str(int(value)))


def _dotted(ip) -> str:
    """%{i}: dotted quads, or dot-separated nibbles for IPv6."""
    if ip.version == 4:
        return str(ip)
    return ".".join(ip.exploded.replace(":", ""))


def _ascii_domain(domain: str) -> str:
    domain = domain.strip().strip("[]").rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def _usable(domain: str) -> bool:
    """A fully qualified name check_host can look up (section 4.3): else the result is none."""
    labels = domain.split(".")
    return len(labels) > 1 and all(0 < len(label) <= 63 for label in labels)
