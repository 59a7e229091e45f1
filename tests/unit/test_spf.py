"""mail/spf.py: check_host() against a local DNS stand-in (A, AAAA, MX, PTR and TXT records
the test publishes), no mocks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mail.sender_trust import Resolver
from mail.spf import check_spf
from tests.support.dns_server import DNSServer, dns_server

SENDER = "ann@example.com"


@pytest.fixture(scope="module")
def dns_module() -> Iterator[DNSServer]:
    with dns_server() as server:
        yield server


@pytest.fixture
def dns(dns_module) -> DNSServer:
    dns_module.records.clear()
    dns_module.rrsets.clear()
    dns_module.queries.clear()
    return dns_module


def spf(dns: DNSServer, ip: str, sender: str | None = SENDER, helo: str | None = None):
    return check_spf(ip, sender, helo, Resolver(dns.nameserver, lifetime=1.0))


def publish(dns: DNSServer, domain: str, record: str) -> None:
    dns.records.setdefault(domain, []).append(record)


@pytest.mark.parametrize(
    "record, ip",
    [
        ("v=spf1 ip4:192.0.2.0/24 -all", "192.0.2.77"),
        ("v=spf1 ip4:192.0.2.5 -all", "192.0.2.5"),
        ("v=spf1 ip6:2001:db8:25::/48 -all", "2001:db8:25::1"),
        ("v=spf1 ip4:198.51.100.1 ip6:2001:db8::/32 ~all", "2001:db8:ffff::9"),
        ("v=spf1 ip4:192.0.2.9 -all", "::ffff:192.0.2.9"),  # IPv4-mapped: read as IPv4
    ],
)
def test_an_address_in_an_ip_mechanism_passes(dns, record, ip):
    publish(dns, "example.com", record)
    result = spf(dns, ip)
    assert (result.result, result.domain, result.sender) == ("pass", "example.com", SENDER)


def test_a_mechanism_passes_the_domains_own_addresses(dns):
    publish(dns, "example.com", "v=spf1 a -all")
    dns.rrsets["example.com", "A"] = ["192.0.2.10"]
    dns.rrsets["example.com", "AAAA"] = ["2001:db8::10"]
    assert spf(dns, "192.0.2.10").result == "pass"
    assert spf(dns, "2001:db8::10").result == "pass"
    assert spf(dns, "192.0.2.11").result == "fail"


def test_a_with_a_domain_and_a_prefix_length(dns):
    publish(dns, "example.com", "v=spf1 a:out.example.net/28 -all")
    dns.rrsets["out.example.net", "A"] = ["203.0.113.16"]
    assert spf(dns, "203.0.113.31").result == "pass"
    assert spf(dns, "203.0.113.32").result == "fail"


def test_mx_passes_the_addresses_of_the_domains_exchanges(dns):
    publish(dns, "example.com", "v=spf1 mx -all")
    dns.rrsets["example.com", "MX"] = ["10 mx1.example.com.", "20 mx2.example.com."]
    dns.rrsets["mx1.example.com", "A"] = ["192.0.2.21"]
    dns.rrsets["mx2.example.com", "A"] = ["192.0.2.22"]
    assert spf(dns, "192.0.2.22").result == "pass"
    assert spf(dns, "192.0.2.23").result == "fail"


def test_include_passes_what_the_included_domain_allows(dns):
    publish(dns, "example.com", "v=spf1 include:_spf.mailer.example -all")
    publish(dns, "_spf.mailer.example", "v=spf1 ip4:198.51.100.0/24 -all")
    assert spf(dns, "198.51.100.8").result == "pass"
    # The included record's -all is "no match" for the include, so example.com's -all decides.
    result = spf(dns, "203.0.113.8")
    assert result.result == "fail" and "example.com: -all matched" in result.reason


def test_redirect_hands_the_decision_to_another_domain(dns):
    publish(dns, "example.com", "v=spf1 redirect=_spf.example.com")
    publish(dns, "_spf.example.com", "v=spf1 ip4:192.0.2.0/25 ~all")
    assert spf(dns, "192.0.2.1").result == "pass"
    assert spf(dns, "192.0.2.200").result == "softfail"


def test_redirect_is_ignored_when_the_record_has_all(dns):
    publish(dns, "example.com", "v=spf1 ?all redirect=_spf.example.com")
    publish(dns, "_spf.example.com", "v=spf1 +all")
    assert spf(dns, "192.0.2.1").result == "neutral"


@pytest.mark.parametrize(
    "record, result",
    [
        ("v=spf1 ip4:192.0.2.1 -all", "fail"),
        ("v=spf1 ip4:192.0.2.1 ~all", "softfail"),
        ("v=spf1 ip4:192.0.2.1 ?all", "neutral"),
        ("v=spf1 ip4:192.0.2.1", "neutral"),  # nothing matched, no all: neutral
        ("V=SPF1 -IP4:203.0.113.5 +all", "fail"),  # case-insensitive, qualifier on a match
    ],
)
def test_an_address_outside_the_record_gets_the_qualifier_of_all(dns, record, result):
    publish(dns, "example.com", record)
    assert spf(dns, "203.0.113.5").result == result


def test_no_record_is_none(dns):
    publish(dns, "example.com", "google-site-verification=abc")  # TXT, but not SPF
    assert spf(dns, "192.0.2.1").result == "none"
    assert spf(dns, "192.0.2.1", "ann@unknown.example").result == "none"


def test_the_null_sender_is_checked_as_postmaster_at_the_helo_name(dns):
    publish(dns, "mx.example.net", "v=spf1 ip4:192.0.2.44 -all")
    result = spf(dns, "192.0.2.44", "", helo="mx.example.net")
    assert (result.result, result.sender) == ("pass", "postmaster@mx.example.net")
    assert spf(dns, "192.0.2.44", "", helo=None).result == "none"


def test_macros_expand_in_exists(dns):
    """exists:%{ir}.%{l1r+-}._spf.%{d}: the client's address reversed, the sender's local
    part's last -part, the domain (RFC 7208's own example, section 7.4)."""
    publish(dns, "example.com", "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all")
    dns.rrsets["2.2.0.192.ann._spf.example.com", "A"] = ["127.0.0.2"]
    assert spf(dns, "192.0.2.2").result == "pass"
    assert spf(dns, "192.0.2.3").result == "fail"
    assert ("3.2.0.192.ann._spf.example.com", "A") in dns.queries


def test_ptr_passes_a_validated_name_under_the_domain(dns):
    publish(dns, "example.com", "v=spf1 ptr -all")
    dns.rrsets["7.2.0.192.in-addr.arpa", "PTR"] = ["mail.example.com."]
    dns.rrsets["mail.example.com", "A"] = ["192.0.2.7"]
    dns.rrsets["8.2.0.192.in-addr.arpa", "PTR"] = ["mail.example.com."]  # not its address
    assert spf(dns, "192.0.2.7").result == "pass"
    assert spf(dns, "192.0.2.8").result == "fail"


@pytest.mark.parametrize(
    "records, why",
    [
        ({"example.com": ["v=spf1 -all", "v=spf1 +all"]}, "2 SPF records"),
        ({"example.com": ["v=spf1 ip4:192.0.2.300 -all"]}, "is not a network"),
        ({"example.com": ["v=spf1 foo:bar -all"]}, "unknown mechanism"),
        ({"example.com": ["v=spf1 include:nothing.example -all"]}, "no usable SPF record"),
        ({"example.com": ["v=spf1 redirect=nothing.example"]}, "has no SPF record"),
        ({"example.com": ["v=spf1 exists:%{c}.example.com -all"]}, "not allowed"),
    ],
)
def test_a_broken_policy_is_a_permerror(dns, records, why):
    dns.records.update(records)
    dns.rrsets["nothing.example", "A"] = ["192.0.2.99"]  # exists, but publishes no SPF
    result = spf(dns, "192.0.2.1")
    assert result.result == "permerror" and why in result.reason


def test_more_than_ten_lookups_is_a_permerror(dns):
    # A chain of includes, each one lookup: the eleventh is one too many.
    for n in range(11):
        publish(dns, f"l{n}.example.com", f"v=spf1 include:l{n + 1}.example.com -all")
    publish(dns, "l11.example.com", "v=spf1 +all")
    publish(dns, "example.com", "v=spf1 include:l1.example.com -all")
    result = spf(dns, "192.0.2.1")
    assert result.result == "permerror" and "more than 10 DNS lookups" in result.reason


def test_ten_lookups_are_allowed(dns):
    for n in range(1, 10):
        publish(dns, f"l{n}.example.com", f"v=spf1 include:l{n + 1}.example.com -all")
    publish(dns, "l10.example.com", "v=spf1 ip4:192.0.2.1 -all")
    publish(dns, "example.com", "v=spf1 include:l1.example.com -all")
    assert spf(dns, "192.0.2.1").result == "pass"


def test_more_than_two_void_lookups_is_a_permerror(dns):
    publish(dns, "example.com", "v=spf1 a:v1.example.com mx:v2.example.com a:v3.example.com +all")
    result = spf(dns, "192.0.2.1")
    assert result.result == "permerror" and "more than 2 lookups found nothing" in result.reason
    dns.records["example.com"] = ["v=spf1 a:v1.example.com a:v2.example.com +all"]
    assert spf(dns, "192.0.2.1").result == "pass"  # two are allowed


def test_a_dns_server_that_does_not_answer_is_a_temperror():
    with dns_server({"example.com": ["v=spf1 -all"]}, silent=True) as server:
        result = check_spf("192.0.2.1", SENDER, None, Resolver(server.nameserver, lifetime=0.3))
    assert result.result == "temperror" and "no answer" in result.reason
