"""The signed agent reply address: round trip, case, length, forgery and expiry."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from services.notifications.reply_address import (
    MAX_LOCAL_PART,
    VALID_DAYS,
    AgentReply,
    ExpiredAddress,
    ForgedAddress,
    make_address,
    read_address,
)

SECRET = "test-secret-key-0123456789abcdef"
DOMAIN = "reply.example.com"
DAY = date(2026, 3, 1)
REPLY = AgentReply(user_id=7, conversation_id=1234, last_message_id=98765)


def address(reply: AgentReply = REPLY, secret: str = SECRET, on: date = DAY) -> str:
    return make_address(reply, secret, DOMAIN, on=on)


def read(text: str, secret: str = SECRET, on: date = DAY) -> AgentReply | None:
    return read_address(text, secret, DOMAIN, on=on)


def test_an_address_reads_back_as_what_it_was_made_for():
    made = address()
    assert re.fullmatch(r"agent\+[0-9a-z-]+\.[a-z2-7]{16}@reply\.example\.com", made)
    assert read(made) == REPLY


def test_a_mail_system_may_change_the_case():
    made = address()
    assert read(made.upper()) == REPLY
    assert read(f"  {made.title()} ") == REPLY


def test_the_local_part_fits_in_64_characters_with_the_largest_ids():
    biggest = AgentReply(2**63 - 1, 2**63 - 1, 2**56)
    with pytest.raises(ValueError):
        address(biggest)
    large = AgentReply(36**11 - 1, 36**11 - 1, 36**11 - 1)  # about 1.3 * 10**17 each
    made = address(large)
    assert len(made.split("@")[0]) <= MAX_LOCAL_PART
    assert read(made) == large


def test_each_agent_and_conversation_gets_its_own_address():
    others = [AgentReply(8, 1234, 98765), AgentReply(7, 1235, 98765), AgentReply(7, 1234, 98766)]
    made = {address(reply) for reply in [REPLY, *others]}
    assert len(made) == 4


def test_no_inbound_domain_means_no_address_and_nothing_is_read():
    assert make_address(REPLY, SECRET, "") is None
    assert read_address(address(), SECRET, "") is None


@pytest.mark.parametrize(
    "text",
    [
        "support@example.com",
        "reply+0123456789abcdef0123456789abcdef@reply.example.com",
        "agent@reply.example.com",
        "agent+whatever@other.example.com",  # another domain: not ours to judge
        "not an address",
    ],
)
def test_other_addresses_are_not_agent_reply_addresses(text):
    assert read(text) is None


def test_a_changed_payload_is_forged():
    local, domain = address().split("@")
    payload, signature = local.removeprefix("agent+").split(".")
    user, rest = payload.split("-", 1)
    # Another agent's id with the first agent's signature.
    with pytest.raises(ForgedAddress, match="signature does not match"):
        read(f"agent+{int(user, 36) + 1:x}-{rest}.{signature}@{domain}")


def test_a_guessed_signature_is_forged():
    local, domain = address().split("@")
    payload = local.split(".")[0]
    with pytest.raises(ForgedAddress, match="signature does not match"):
        read(f"{payload}.{'a' * 16}@{domain}")


def test_an_address_made_under_another_secret_key_is_forged():
    with pytest.raises(ForgedAddress, match="SECRET_KEY"):
        read(address(secret="another-secret-key-0123456789abc"))


@pytest.mark.parametrize(
    "local",
    ["agent+", "agent+1-2-3.abc", "agent+1-2-3-4", "agent+1-2-3-4.abcdefghijklmnop0", "agent+x y"],
)
def test_a_mangled_address_is_forged(local):
    with pytest.raises(ForgedAddress, match="not one Threadline makes"):
        read(f"{local}@{DOMAIN}")


def test_an_address_expires_after_its_days():
    made = address(on=DAY)
    assert read(made, on=DAY + timedelta(days=VALID_DAYS)) == REPLY
    with pytest.raises(ExpiredAddress, match=f"sent on {DAY.isoformat()}.*{VALID_DAYS} days"):
        read(made, on=DAY + timedelta(days=VALID_DAYS + 1))
