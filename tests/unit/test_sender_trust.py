"""check_sender: DKIM signed here with a generated key and verified through a local DNS
stand-in; SPF and DMARC from Authentication-Results of trusted servers only."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import dkim
import pytest

from mail.sender_trust import Resolver, SenderVerdict, check_sender, trusted_results
from tests.support.dkim_keys import key_record, new_key
from tests.support.dns_server import DNSServer, dns_server

TRUSTED = frozenset({"mx.ours.test"})
KEY_NAME = "sel._domainkey.example.com"
DMARC_NAME = "_dmarc.example.com"
SIGNED_HEADERS = [b"from", b"to", b"subject", b"date", b"message-id"]
MESSAGE = (
    b"From: Ann Example <ann@example.com>\r\n"
    b"To: support@ours.test\r\n"
    b"Subject: Refund for order 1042\r\n"
    b"Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n"
    b"Message-ID: <order-1042@example.com>\r\n"
    b"\r\n"
    b"Please refund order 1042.\r\n"
)
TRUSTED_PASS = (
    b"Authentication-Results: mx.ours.test; dkim=pass header.d=example.com; "
    b"spf=pass smtp.mailfrom=example.com; dmarc=pass header.from=example.com\r\n"
)


@pytest.fixture(scope="module")
def key() -> tuple[bytes, str]:
    return new_key()


@pytest.fixture(scope="module")
def dns_module() -> Iterator[DNSServer]:
    with dns_server() as server:
        yield server


@pytest.fixture
def dns(dns_module, key) -> DNSServer:
    """The module's server, holding only example.com's DKIM key and no questions yet."""
    dns_module.records.clear()
    dns_module.records[KEY_NAME] = [key_record(key)]
    dns_module.queries.clear()
    return dns_module


def sign(message: bytes, key, domain: bytes = b"example.com", selector: bytes = b"sel") -> bytes:
    header = dkim.sign(message, selector, domain, key[0], include_headers=SIGNED_HEADERS)
    return header + message


def check(raw: bytes, dns: DNSServer, from_address: str = "ann@example.com") -> SenderVerdict:
    return check_sender(
        raw, from_address, trusted_authserv_ids=TRUSTED, resolver=Resolver(dns.nameserver)
    )


# --- DKIM -----------------------------------------------------------------------------------


def test_a_valid_signature_of_the_from_domain_is_a_verified_sender(dns, key):
    verdict = check(sign(MESSAGE, key), dns)
    assert (verdict.dkim, verdict.dkim_domain, verdict.status) == (
        "pass",
        "example.com",
        "verified",
    )
    assert (verdict.spf, verdict.dmarc, verdict.dmarc_policy) == (None, None, None)
    assert verdict.badge == "verified sender" and not verdict.warn
    assert "Signed by example.com" in verdict.reason
    # example.com is already its own organisational domain: no second DMARC question.
    assert dns.queries == [(KEY_NAME, "TXT"), (DMARC_NAME, "TXT")]


def test_a_body_changed_after_signing_fails_dkim(dns, key):
    tampered = sign(MESSAGE, key).replace(b"order 1042.", b"order 1042 to IBAN DE00 0000.")
    verdict = check(tampered, dns)
    assert (verdict.dkim, verdict.dkim_domain, verdict.status) == (
        "fail",
        "example.com",
        "unverified",
    )
    assert "changed after signing" in verdict.reason


def test_an_unsigned_message_is_unverified_and_costs_no_key_lookup(dns):
    verdict = check(MESSAGE, dns)
    assert (verdict.dkim, verdict.dkim_domain, verdict.status) == ("none", None, "unverified")
    assert verdict.badge == "unverified"
    assert dns.queries == [(DMARC_NAME, "TXT")]


def test_a_signature_by_an_unrelated_domain_does_not_vouch_for_the_from_address(dns, key):
    dns.records["sel._domainkey.other.test"] = [key_record(key)]
    verdict = check(sign(MESSAGE, key, domain=b"other.test"), dns)
    assert (verdict.dkim, verdict.dkim_domain, verdict.status) == (
        "pass",
        "other.test",
        "unverified",
    )
    assert "not by example.com" in verdict.reason


def test_a_parent_domain_signature_aligns_with_a_subdomain_sender(dns, key):
    message = MESSAGE.replace(b"ann@example.com", b"ann@mail.example.com")
    verdict = check(sign(message, key), dns, from_address="ann@mail.example.com")
    assert (verdict.dkim, verdict.status) == ("pass", "verified")
    # No record at the From domain: the organisational domain (last two labels) is asked.
    assert dns.queries == [
        (KEY_NAME, "TXT"),
        ("_dmarc.mail.example.com", "TXT"),
        (DMARC_NAME, "TXT"),
    ]


def test_a_missing_key_fails_and_only_the_first_three_signatures_are_checked(dns, key):
    raw = MESSAGE
    for selector in (b"s1", b"s2", b"s3", b"s4"):  # no key published for any of them
        raw = sign(raw, key, selector=selector)
    verdict = check(raw, dns)
    assert (verdict.dkim, verdict.status) == ("fail", "unverified")
    # dkim.sign prepends, so s4 is the first header and s1 the one left unchecked.
    asked = [name for name, _ in dns.queries if "_domainkey" in name]
    assert asked == [f"{s}._domainkey.example.com" for s in ("s4", "s3", "s2")]


def test_two_signatures_with_one_key_cost_one_lookup(dns, key):
    verdict = check(sign(sign(MESSAGE, key), key), dns)
    assert verdict.dkim == "pass"
    assert dns.queries.count((KEY_NAME, "TXT")) == 1


def test_a_resolver_that_never_answers_is_a_temperror_not_an_exception(key):
    with dns_server(silent=True) as silent:
        started = time.monotonic()
        verdict = check_sender(
            sign(MESSAGE, key),
            "ann@example.com",
            trusted_authserv_ids=TRUSTED,
            resolver=Resolver(silent.nameserver, lifetime=0.3),
        )
        elapsed = time.monotonic() - started
    assert (verdict.dkim, verdict.status, verdict.dmarc_policy) == ("temperror", "unverified", None)
    assert "could not be checked" in verdict.reason
    # After the first timeout nothing more is asked: a dead resolver costs one lifetime.
    assert {name for name, _ in silent.queries} == {KEY_NAME}
    assert elapsed < 2


# --- Authentication-Results and DMARC -------------------------------------------------------


def test_dmarc_pass_from_a_trusted_server_verifies_an_unsigned_message(dns):
    verdict = check(TRUSTED_PASS + MESSAGE, dns)
    assert (verdict.status, verdict.spf, verdict.dmarc, verdict.dkim) == (
        "verified",
        "pass",
        "pass",
        "none",
    )
    assert "mx.ours.test checked DMARC for example.com" in verdict.reason


def test_dmarc_fail_from_a_trusted_server_under_p_reject_is_failed_dmarc_with_a_warning(dns):
    dns.records[DMARC_NAME] = ["v=DMARC1; p=reject; rua=mailto:dmarc@example.com"]
    header = TRUSTED_PASS.replace(b"=pass", b"=fail")
    verdict = check(header + MESSAGE, dns)
    assert (verdict.status, verdict.dmarc, verdict.dmarc_policy) == (
        "failed_dmarc",
        "fail",
        "reject",
    )
    assert verdict.badge == "failed DMARC — may be spoofed"
    assert verdict.warn
    assert dns.queries == [(DMARC_NAME, "TXT")]


def test_dmarc_fail_under_p_none_is_failed_dmarc_without_the_banner(dns):
    dns.records[DMARC_NAME] = ["v=DMARC1; p=none"]
    verdict = check(TRUSTED_PASS.replace(b"dmarc=pass", b"dmarc=fail") + MESSAGE, dns)
    assert (verdict.status, verdict.dmarc_policy, verdict.warn) == ("failed_dmarc", "none", False)


@pytest.mark.parametrize("authserv_id", [b"mx.attacker.test", b"mx.ours.test.attacker.test"])
def test_the_same_header_from_an_untrusted_server_is_ignored(dns, authserv_id):
    forged = TRUSTED_PASS.replace(b"mx.ours.test", authserv_id)
    verdict = check(forged + MESSAGE, dns)
    assert (verdict.status, verdict.spf, verdict.dmarc) == ("unverified", None, None)


def test_authserv_ids_are_compared_without_case(dns):
    header = TRUSTED_PASS.replace(b"mx.ours.test", b"MX.Ours.TEST")
    assert check(header + MESSAGE, dns).status == "verified"


def test_a_dmarc_result_for_another_from_domain_is_ignored(dns):
    header = TRUSTED_PASS.replace(b"header.from=example.com", b"header.from=other.test")
    verdict = check(header + MESSAGE, dns)
    assert verdict.dmarc is None
    assert verdict.status == "verified"  # still: the trusted server's aligned SPF pass


@pytest.mark.parametrize(
    ("spf", "policy", "status"),
    [
        (b"spf=fail smtp.mailfrom=example.com", "quarantine", "failed_dmarc"),
        (b"spf=pass smtp.mailfrom=bounces.mailer.test", "reject", "failed_dmarc"),
        (b"spf=fail smtp.mailfrom=example.com", "none", "unverified"),
        (b"spf=temperror smtp.mailfrom=example.com", "reject", "unverified"),
        (b"spf=pass smtp.mailfrom=example.com", "reject", "verified"),
    ],
)
def test_without_a_dmarc_result_only_established_failures_are_failed_dmarc(
    dns, spf, policy, status
):
    dns.records[DMARC_NAME] = [f"v=DMARC1; p={policy}"]
    header = b"Authentication-Results: mx.ours.test; " + spf + b"\r\n"
    verdict = check(header + MESSAGE, dns)
    assert (verdict.status, verdict.dmarc, verdict.dmarc_policy) == (status, None, policy)


def test_unsigned_mail_under_p_reject_is_not_called_spoofed_without_trusted_spf(dns, key):
    """We cannot check SPF ourselves: the message may well have passed DMARC through it."""
    dns.records[DMARC_NAME] = ["v=DMARC1; p=reject"]
    tampered = sign(MESSAGE, key).replace(b"order 1042.", b"order 1043.")
    for raw in (MESSAGE, tampered):
        verdict = check(raw, dns)
        assert (verdict.status, verdict.dmarc_policy, verdict.warn) == (
            "unverified",
            "reject",
            False,
        )


def test_a_subdomain_sender_takes_the_organisational_subdomain_policy(dns):
    dns.records[DMARC_NAME] = ["v=DMARC1; p=reject; sp=quarantine"]
    verdict = check(MESSAGE, dns, from_address="ann@mail.example.com")
    assert verdict.dmarc_policy == "quarantine"
    assert dns.queries == [("_dmarc.mail.example.com", "TXT"), (DMARC_NAME, "TXT")]


def test_authentication_results_parsing_handles_comments_quotes_and_several_headers():
    headers = [
        "other.test; dmarc=pass header.from=example.com",
        "mx.ours.test 1; (a comment; with a semicolon) spf=fail (sender IP is 192.0.2.1) "
        'smtp.mailfrom="bounce@example.com"; dmarc (v=1) = fail reason="p=reject; x" '
        "header.from=example.com",
        "mx.ours.test; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com",
        "mx.ours.test; none",
    ]
    found = trusted_results(headers, TRUSTED)
    assert {m: (r.result, r.authserv_id) for m, r in found.items()} == {
        "spf": ("fail", "mx.ours.test"),  # the topmost trusted header wins
        "dmarc": ("fail", "mx.ours.test"),
        "dkim": ("pass", "mx.ours.test"),
    }
    assert found["spf"].properties == {"smtp.mailfrom": "bounce@example.com"}
    assert found["dmarc"].properties["header.from"] == "example.com"


def test_a_verdict_survives_json_storage(dns, key):
    verdict = check(sign(MESSAGE, key), dns)
    stored = json.loads(json.dumps(verdict.to_dict()))
    assert stored["status"] == "verified" and stored["dkim_domain"] == "example.com"
    assert SenderVerdict.from_dict(stored) == verdict


def test_a_caching_resolver_asks_each_name_once_while_its_ttl_runs(key):
    """The worker's resolver (services/sender_trust.py) keeps answers for their TTL: a
    backlog from one domain asks for its policy and key once, not once a message."""
    records = {KEY_NAME: [key_record(key)], DMARC_NAME: ["v=DMARC1; p=reject"]}
    with dns_server(records) as server:
        server.ttl = 300
        resolver = Resolver(server.nameserver, cache=True)
        verdicts = [
            check_sender(sign(MESSAGE, key), "ann@example.com", trusted_authserv_ids=TRUSTED,
                         resolver=resolver)
            for _ in range(3)
        ]  # fmt: skip
        assert {v.status for v in verdicts} == {"verified"}
        assert sorted(server.queries) == [(DMARC_NAME, "TXT"), (KEY_NAME, "TXT")]
        uncached = Resolver(server.nameserver)
        check_sender(sign(MESSAGE, key), "ann@example.com", trusted_authserv_ids=TRUSTED,
                     resolver=uncached)  # fmt: skip
        assert len(server.queries) == 4  # without the cache: asked again
