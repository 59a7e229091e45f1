"""Message-ID format and subject normalisation."""

import pytest

from mail.threading import normalise_subject, outgoing_message_id, token_from_message_id

TOKEN = "0123456789abcdef0123456789abcdef"


def test_outgoing_message_id_round_trips_its_token():
    mid = outgoing_message_id(TOKEN, 42, "reply.example.com")
    assert mid == f"conversation/{TOKEN}/messages/42@reply.example.com"
    assert token_from_message_id(mid) == TOKEN
    assert token_from_message_id(f"<{mid}>") == TOKEN


@pytest.mark.parametrize(
    "mid",
    ["thread-start@customer.example", "conversation/xyz/messages/1@x", "", "conversation//m@x"],
)
def test_foreign_message_ids_have_no_token(mid):
    assert token_from_message_id(mid) is None


@pytest.mark.parametrize(
    "subject",
    [
        "Printer on fire",
        "Re: Printer on fire",
        "RE:  Printer   on fire",
        "Fwd: Re: printer on fire",
        "FW: RE: Re[2]: Printer on fire",
        "AW: Printer on fire",
        "SV: Printer on fire",
        "Antw: Printer on fire",
        "  re : Printer on fire ",
    ],
)
def test_reply_and_forward_prefixes_are_stripped(subject):
    assert normalise_subject(subject) == "printer on fire"


def test_prefix_words_inside_a_subject_are_kept():
    assert normalise_subject("Refund: order 7") == "refund: order 7"
    assert normalise_subject("Re: Aware of the issue") == "aware of the issue"
    assert normalise_subject("") == ""
