"""Sender verdict for incoming mail: can the From address be believed?

DKIM is verified here (dkimpy, keys fetched through a Resolver). SPF needs the connecting
client's address, which only the receiving mail server knows, so SPF and DMARC results are
read from the Authentication-Results headers (RFC 8601) that our own servers add: only
those whose authserv-id is in TRUSTED_AUTHSERV_IDS, since anyone can write that header.
Those servers must strip incoming headers that carry their id (RFC 8601 section 5);
otherwise a sender could forge one. The From domain's DMARC policy is looked up here.

When no trusted server reported SPF but the relay command passed the SMTP connection (an
Envelope: client address, HELO, MAIL FROM), SPF is checked here (mail/spf.py) and plays the
trusted server's part (authserv-id "threadline"); DMARC is then decided here too, unless a
trusted server reported it: with a DMARC record for the From domain, pass when DKIM or SPF
passes aligned (adkim/aspf: relaxed, or s for strict), fail when neither does and both
were checked conclusively (SPF not temperror/permerror, DKIM as in rule 3).

The verdict, in order:
1. A trusted Authentication-Results dmarc result for the From domain decides (or, as
   above, the one decided here): pass -> verified, fail -> failed_dmarc.
2. Otherwise an aligned pass -> verified: a DKIM signature verified here whose d= aligns
   with the From domain, or an SPF pass from a trusted server whose smtp.mailfrom aligns
   (the two ways DMARC itself passes).
3. Otherwise failed_dmarc only if the failure is established, not guessed: the From
   domain publishes p=reject or p=quarantine, a trusted server evaluated SPF (any result
   but temperror/permerror) and found no aligned pass, and every DKIM signature was
   checked conclusively (no temperror, none left over past the first three). A DKIM failure
   alone is not enough: an unsigned message, or one whose signature a gateway broke, may
   still have passed DMARC through SPF, which we cannot check ourselves without the
   client's address.
4. Otherwise unverified.

The thread page warns (SenderVerdict.warn) only when a DMARC failure meets a domain that
asks receivers to reject or quarantine such mail.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import TYPE_CHECKING

import dkim
import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from mail.summary import header_block

if TYPE_CHECKING:  # mail/spf.py uses this module's Resolver
    from mail.spf import Envelope

BADGES = {  # status -> the thread page's badge
    "verified": "verified sender",
    "unverified": "unverified",
    "failed_dmarc": "failed DMARC — may be spoofed",
}
CACHED_NAMES = 4096  # a caching Resolver's answers kept at most (least recently used go)
MAX_SIGNATURES = 3  # a message with fifty signatures must not cost fifty DNS lookups
ENFORCING = ("reject", "quarantine")
DIRECT = "threadline"  # the authserv-id of the SPF and DMARC results checked here
_POLICIES = ("reject", "quarantine", "none")
# SPF results that mean a trusted server did evaluate SPF (temperror/permerror: it could not).
_SPF_EVALUATED = ("pass", "fail", "softfail", "neutral", "none")
_DKIM_RANK = {"pass": 3, "temperror": 2, "fail": 1}
_SEGMENT = re.compile(r'(?:[^;"]|"(?:[^"\\]|\\.)*")+')
_PAIR = re.compile(r'([\w.\-/]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s"]+)')
_DKIM_HEADER = re.compile(rb"(?:^|\n)dkim-signature[ \t]*:", re.IGNORECASE)
_DMARC_RECORD = re.compile(rb"^\s*v\s*=\s*DMARC1\s*(;|$)", re.IGNORECASE)


class DnsError(Exception):
    """A TXT lookup got no usable answer (SERVFAIL, refused, no resolver configured)."""


class DnsTimeout(DnsError):
    """The resolver did not answer in time."""


class Resolver:
    """TXT lookups through DNS_RESOLVER: one server as (ip, port), or None for the system's
    resolver (/etc/resolv.conf). With `cache`, answers are kept as long as their TTL says
    (dnspython's LRU cache, negative answers too): a worker checking a backlog of mail from
    a few domains asks for each domain's DMARC policy and key once, not once a message (each
    lookup cost ~38 ms through this machine's resolver, twice the rest of the job)."""

    def __init__(
        self,
        nameserver: tuple[str, int] | None = None,
        *,
        lifetime: float = 3.0,
        cache: bool = False,
    ):
        self.nameserver = nameserver
        self.lifetime = lifetime
        self.cache = dns.resolver.LRUCache(CACHED_NAMES) if cache else None
        self._resolver: dns.resolver.Resolver | None = None

    def txt(self, name: str) -> list[bytes]:
        """Each TXT record's strings joined; [] when the name or its TXT record does not
        exist (or cannot: an invalid name). Raises DnsError when the question got no answer."""
        return [b"".join(record.strings) for record in self._resolve(name, "TXT")]

    def query(self, name: str, rdtype: str) -> list[str]:
        """A or AAAA addresses, MX exchanges (most preferred first) or PTR names, without
        the final dot; [] as for txt() (SPF calls that a void lookup). Raises DnsError."""
        records = self._resolve(name, rdtype)
        if rdtype == "MX":
            ordered = sorted(records, key=lambda record: record.preference)
            return [record.exchange.to_text(omit_final_dot=True) for record in ordered]
        if rdtype == "PTR":
            return [record.target.to_text(omit_final_dot=True) for record in records]
        return [record.address for record in records]

    def _resolve(self, name: str, rdtype: str) -> list:
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException:
            return []
        try:
            return list(self._dns().resolve(qname, rdtype))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout as exc:
            raise DnsTimeout(f"no answer for {name} {rdtype} in {self.lifetime}s") from exc
        except dns.exception.DNSException as exc:
            raise DnsError(f"{name} {rdtype}: {exc}") from exc

    def _dns(self) -> dns.resolver.Resolver:
        """Built on first use, so a missing /etc/resolv.conf is a DnsError, not a crash."""
        if self._resolver is None:
            resolver = dns.resolver.Resolver(configure=self.nameserver is None)
            if self.nameserver is not None:
                resolver.nameservers = [dns.nameserver.Do53Nameserver(*self.nameserver)]
            resolver.lifetime = self.lifetime
            resolver.cache = self.cache
            resolver.timeout = min(resolver.timeout, self.lifetime)
            self._resolver = resolver
        return self._resolver


@dataclass(frozen=True)
class SenderVerdict:
    """What the thread page's badge and the API say about a message's sender."""

    status: str  # verified | unverified | failed_dmarc
    dkim: str  # pass | fail | none | temperror
    dkim_domain: str | None  # d= of the signature that result is about
    spf: str | None  # from a trusted Authentication-Results header or checked here, else None
    dmarc: str | None  # likewise
    dmarc_policy: str | None  # reject | quarantine | none of the From domain; None = unknown
    reason: str  # one sentence for agents

    @property
    def badge(self) -> str:
        return BADGES[self.status]

    @property
    def warn(self) -> bool:
        """The warning banner: failed DMARC where the domain asks receivers to refuse it."""
        return self.status == "failed_dmarc" and self.dmarc_policy in ENFORCING

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, str | None]) -> SenderVerdict:
        """Back from to_dict()'s JSON; unknown keys are ignored, missing ones read as None."""
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class AuthResult:
    """One method's result in an Authentication-Results header."""

    authserv_id: str
    method: str
    result: str
    properties: dict[str, str] = field(default_factory=dict)  # e.g. smtp.mailfrom -> value


def check_sender(
    raw: bytes,
    from_address: str,
    *,
    trusted_authserv_ids: frozenset[str],
    resolver: Resolver,
    envelope: Envelope | None = None,
) -> SenderVerdict:
    """The verdict on raw's sender (see the module docstring). Never raises: DNS trouble
    is a DKIM temperror or an unknown policy, and the verdict then stays unverified."""
    domain = _domain_of(from_address) if "@" in from_address else ""
    lookups = _Lookups(resolver)
    headers = _header_values(raw, "Authentication-Results")
    results = trusted_results(headers, trusted_authserv_ids)
    spf = results.get("spf")
    checked_for = None  # the client address, when SPF is checked here
    if spf is None and envelope is not None:
        spf, checked_for = _direct_spf(envelope, resolver), envelope.client_address
    dmarc = _dmarc_result(results.get("dmarc"), domain)
    signatures = _check_dkim(raw, domain, lookups)
    tags, policy = _dmarc_policy(domain, lookups)
    if dmarc is None and checked_for is not None and tags is not None:
        dmarc = _direct_dmarc(domain, tags, signatures, spf)
    status, reason = _judge(domain, signatures, spf, dmarc, policy, checked_for)
    return SenderVerdict(
        status=status,
        dkim=signatures.result,
        dkim_domain=signatures.domain,
        spf=spf.result if spf else None,
        dmarc=dmarc.result if dmarc else None,
        dmarc_policy=policy,
        reason=reason,
    )


def _direct_spf(envelope: Envelope, resolver: Resolver) -> AuthResult:
    """SPF checked here, as a trusted server would have reported it."""
    from mail.spf import check_spf

    found = check_spf(envelope.client_address, envelope.mail_from, envelope.helo, resolver)
    return AuthResult(DIRECT, "spf", found.result, {"smtp.mailfrom": found.sender})


def _direct_dmarc(
    domain: str, tags: dict[str, str], signatures: _Signatures, spf: AuthResult
) -> AuthResult | None:
    """DMARC decided here (RFC 7489 section 6.6.2, alignment per adkim/aspf); None when it
    cannot be: a DKIM signature or SPF could not be checked."""
    dkim_aligned = signatures.aligned_pass and (
        tags.get("adkim") != "s" or signatures.domain == domain
    )
    mailfrom = _mailfrom_domain(spf)
    spf_aligned = spf.result == "pass" and (
        mailfrom == domain if tags.get("aspf") == "s" else _aligned(mailfrom, domain)
    )
    if dkim_aligned or spf_aligned:
        return AuthResult(DIRECT, "dmarc", "pass", {"header.from": domain})
    if spf.result in _SPF_EVALUATED and signatures.conclusive:
        return AuthResult(DIRECT, "dmarc", "fail", {"header.from": domain})
    return None


# --- Authentication-Results (RFC 8601) ----------------------------------------------------
# Parsed here rather than with `authres` (PyPI): its last release is from 2019, and we need
# only method=result and a few properties from trusted headers, in some forty lines.


def trusted_results(
    values: list[str], trusted_authserv_ids: frozenset[str]
) -> dict[str, AuthResult]:
    """Method -> result from headers whose authserv-id is trusted, topmost first: the
    nearest server's word wins, and within a header the first result for a method."""
    trusted = {x.lower() for x in trusted_authserv_ids}
    found: dict[str, AuthResult] = {}
    for value in values:
        authserv_id, results = _parse_header(value)
        if authserv_id not in trusted:
            continue
        for result in results:
            found.setdefault(result.method, result)
    return found


def _parse_header(value: str) -> tuple[str, list[AuthResult]]:
    """(authserv-id, results) of one header value; what cannot be parsed is skipped."""
    segments = _SEGMENT.findall(_strip_comments(value))
    head = segments[0].split() if segments else []
    if not head:
        return "", []
    authserv_id = head[0].strip('"').lower()
    results = []
    for segment in segments[1:]:
        pairs = _PAIR.findall(segment)
        if not pairs:
            continue  # "none": the server checked nothing
        (method, result), properties = pairs[0], pairs[1:]
        results.append(
            AuthResult(
                authserv_id=authserv_id,
                method=method.split("/")[0].lower(),
                result=_unquote(result).lower(),
                properties={key.lower(): _unquote(val) for key, val in properties},
            )
        )
    return authserv_id, results


def _strip_comments(text: str) -> str:
    """Drop (comments), nested ones too, leaving "quoted strings" (which may hold
    parentheses and semicolons) intact."""
    out: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and (quoted or depth):
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == "(":
            depth += 1
            out.append(" ")
            continue
        elif char == ")" and depth:
            depth -= 1
            continue
        elif depth == 0:
            quoted = char == '"'
        if depth == 0:
            out.append(char)
    return "".join(out)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _dmarc_result(result: AuthResult | None, domain: str) -> AuthResult | None:
    """A trusted dmarc result counts only for the From domain we were given."""
    if result is None:
        return None
    header_from = result.properties.get("header.from", domain)
    return result if _domain_of(header_from) == domain else None


# --- DKIM ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Signatures:
    """The DKIM outcome: the most telling signature's result, and what the verdict needs."""

    result: str  # pass | fail | none | temperror
    domain: str | None
    aligned_pass: bool
    conclusive: bool  # every signature checked, none with a temperror


def _check_dkim(raw: bytes, from_domain: str, lookups: _Lookups) -> _Signatures:
    """Verify the first MAX_SIGNATURES signatures; report an aligned pass first, then any
    pass, temperror, fail. dkimpy raising means a malformed signature or a body hash
    mismatch (fail); anything else raising (DNS, a dkimpy bug) is a temperror."""
    if _DKIM_HEADER.search(header_block(raw)) is None:
        return _Signatures("none", None, False, True)  # unsigned: dkimpy would split it all
    try:
        verifier = dkim.DKIM(raw)
        count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    except Exception:  # an unparseable message: we cannot say
        return _Signatures("temperror", None, False, False)
    outcomes = [_verify(verifier, idx, lookups) for idx in range(min(count, MAX_SIGNATURES))]
    if not outcomes:
        return _Signatures("none", None, False, True)
    aligned = [_aligned(d, from_domain) for _, d in outcomes]
    best = max(range(len(outcomes)), key=lambda i: (_DKIM_RANK[outcomes[i][0]], aligned[i]))
    result, domain = outcomes[best]
    return _Signatures(
        result=result,
        domain=domain,
        aligned_pass=result == "pass" and aligned[best],
        conclusive=count <= MAX_SIGNATURES and all(r != "temperror" for r, _ in outcomes),
    )


def _verify(verifier: dkim.DKIM, idx: int, lookups: _Lookups) -> tuple[str, str | None]:
    """(result, d=) of signature idx."""

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            records = lookups.txt(name.decode("ascii"))
        except UnicodeDecodeError:
            return None  # a non-ASCII d= or s= names no key: fail
        return records[0] if records else None

    verifier.domain = None  # set by verify() once the signature parses
    try:
        result = "pass" if verifier.verify(idx=idx, dnsfunc=dnsfunc) else "fail"
    except dkim.DKIMException:
        result = "fail"
    except Exception:
        result = "temperror"
    domain = verifier.domain.decode("ascii", "replace") if verifier.domain else None
    return result, domain.lower().rstrip(".") if domain else None


# --- DMARC policy -------------------------------------------------------------------------


def _dmarc_policy(domain: str, lookups: _Lookups) -> tuple[dict[str, str] | None, str | None]:
    """The From domain's DMARC record (its tags) and policy: p= of _dmarc.<domain>, else of
    its organisational domain, where sp= (the subdomain policy) wins when present (RFC 7489
    section 6.6.3).

    Simplified: the organisational domain is the last two labels, without the public-suffix
    list, so mail from shop.example.co.uk falls back to _dmarc.co.uk, finds nothing, and
    its policy stays unknown. A missing or unknown p= counts as none. (None, None) = no
    record or the lookup failed."""
    if not domain:
        return None, None
    organisational = ".".join(domain.split(".")[-2:])
    try:
        tags = _dmarc_tags(domain, lookups)
        if tags is not None:
            return tags, _policy(tags.get("p"))
        if organisational == domain:
            return None, None
        tags = _dmarc_tags(organisational, lookups)
    except DnsError:
        return None, None
    if tags is None:
        return None, None
    if tags.get("sp") in _POLICIES:
        return tags, _policy(tags["sp"])
    return tags, _policy(tags.get("p"))


def _dmarc_tags(domain: str, lookups: _Lookups) -> dict[str, str] | None:
    """Tags of the one DMARC record at _dmarc.<domain>; None without exactly one."""
    records = [r for r in lookups.txt(f"_dmarc.{domain}") if _DMARC_RECORD.match(r)]
    if len(records) != 1:
        return None
    tags = {}
    for part in records[0].decode("ascii", "replace").split(";"):
        key, _, value = part.partition("=")
        tags[key.strip().lower()] = value.strip().lower()
    return tags


def _policy(value: str | None) -> str:
    return value if value in _POLICIES else "none"


# --- the verdict --------------------------------------------------------------------------


def _judge(
    domain: str,
    signatures: _Signatures,
    spf: AuthResult | None,
    dmarc: AuthResult | None,
    policy: str | None,
    checked_for: str | None = None,
) -> tuple[str, str]:
    """(status, reason) by the rule in the module docstring; checked_for: the client
    address SPF (and DMARC) were checked here for, None when a trusted server did."""
    if not domain:
        return "unverified", "The From address has no domain to check."
    spf_by = f"Threadline checked SPF for {checked_for}" if checked_for else None
    if spf and not spf_by:
        spf_by = f"{spf.authserv_id} checked SPF"
    if dmarc and dmarc.authserv_id == DIRECT and checked_for:
        if dmarc.result == "pass" and signatures.aligned_pass:
            return "verified", f"Signed by {signatures.domain} (DKIM), the From address's domain."
        if dmarc.result == "pass":
            return "verified", f"{spf_by}: sent by a server {domain} allows (DMARC pass)."
        return "failed_dmarc", (
            f"{domain} publishes a DMARC policy ({policy}), and this message has neither its "
            f"DKIM signature nor its SPF approval ({spf_by}: {spf.result}): the From address "
            "may be forged."
        )
    if dmarc and dmarc.result == "pass":
        return "verified", f"{dmarc.authserv_id} checked DMARC for {domain}: pass."
    if dmarc and dmarc.result == "fail":
        return "failed_dmarc", (
            f"{dmarc.authserv_id} reports that this message fails DMARC for {domain}: "
            "the From address may be forged."
        )
    if signatures.aligned_pass:
        return "verified", f"Signed by {signatures.domain} (DKIM), the From address's domain."
    if spf and spf.result == "pass" and _aligned(_mailfrom_domain(spf), domain):
        return "verified", f"{spf_by}: sent by a server {domain} allows."
    if policy in ENFORCING and spf and spf.result in _SPF_EVALUATED and signatures.conclusive:
        return "failed_dmarc", (
            f"{domain} asks receivers to {policy} mail it has not authenticated, and this "
            f"message has neither its DKIM signature nor its SPF approval ({spf_by}): the "
            "From address may be forged."
        )
    direct = None
    if spf and checked_for:
        direct = f"{spf_by}: {spf.result} (for {_mailfrom_domain(spf) or 'no domain'})"
    return "unverified", _unverified_reason(domain, signatures, direct)


def _unverified_reason(domain: str, signatures: _Signatures, direct_spf: str | None) -> str:
    if signatures.result == "temperror":
        return "The DKIM signature could not be checked (DNS did not answer); try again later."
    if signatures.result == "pass":
        return f"Signed by {signatures.domain} (DKIM), not by {domain}, the From address's domain."
    if signatures.result == "fail":
        return (
            f"The DKIM signature of {signatures.domain or 'the sender'} does not verify: the "
            "message was changed after signing, or the signature is forged."
        )
    if direct_spf:
        return f"Not signed (DKIM), and no approval of {domain}: {direct_spf}."
    return "Not signed (DKIM), and no trusted mail server vouched for the sender."


def _mailfrom_domain(spf: AuthResult) -> str:
    return _domain_of(spf.properties.get("smtp.mailfrom", ""))


def _aligned(domain: str | None, from_domain: str) -> bool:
    """Relaxed alignment, simplified: equal, or one a subdomain of the other whose parent
    keeps two labels or more (so d=com aligns with nothing). Stricter than DMARC for
    siblings (a.example.com and b.example.com do not align); looser where a private
    suffix hands out subdomains (d=someone.github.io aligns with @github.io), since
    there is no public-suffix list here."""
    if not domain or not from_domain:
        return False
    if domain == from_domain:
        return True
    parent, child = sorted((domain, from_domain), key=len)
    return "." in parent and child.endswith("." + parent)


def _domain_of(address: str) -> str:
    """The lower-case ASCII (IDNA) domain of an address or a bare domain; "" if none."""
    domain = address.rpartition("@")[2].strip().strip("<>[]").rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def _header_values(raw: bytes, name: str) -> list[str]:
    """Every value of header name, top first, unfolded."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(header_block(raw))
    return [" ".join(str(value).split()) for value in headers.get_all(name, [])]


class _Lookups:
    """One check's TXT lookups: each name asked once, and none after a timeout (a dead
    resolver would otherwise cost its whole lifetime again for every name)."""

    def __init__(self, resolver: Resolver):
        self.resolver = resolver
        self.answers: dict[str, list[bytes]] = {}
        self.timeout: DnsTimeout | None = None

    def txt(self, name: str) -> list[bytes]:
        key = name.lower().rstrip(".")
        if self.timeout is not None:
            raise DnsTimeout(f"{key} not asked: {self.timeout}")
        if key not in self.answers:
            try:
                self.answers[key] = self.resolver.txt(key + ".")
            except DnsTimeout as exc:
                self.timeout = exc
                raise
        return self.answers[key]
