"""Thread-Index decoded and checked against MS-OXOMSG 2.2.1.3 (PidTagConversationIndex):
a 22-byte header (0x01, 40 bits of FILETIME, a 16-byte GUID), then 5-byte response levels
(DC bit, 31-bit time delta, 4 random bits, 4-bit sequence count)."""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime, timedelta

from mail.compose import filetime, thread_index

TOKEN = "0123456789abcdef0123456789abcdef-rest-is-ignored"
START = datetime(2026, 11, 30, 9, 15, 42, 123456, tzinfo=UTC)


def decode(value: str) -> tuple[bytes, list[tuple[int, int, int, int]]]:
    """The header, and (DC, time delta, random, sequence) per response level."""
    raw = base64.b64decode(value)
    assert (len(raw) - 22) % 5 == 0, len(raw)
    levels = []
    for offset in range(22, len(raw), 5):
        first, last = struct.unpack(">IB", raw[offset : offset + 5])
        levels.append((first >> 31, first & 0x7FFFFFFF, last >> 4, last & 0x0F))
    return raw[:22], levels


def test_the_header_is_reserved_byte_forty_bits_of_filetime_and_the_guid():
    header, levels = decode(thread_index(TOKEN, START, []))
    assert header[0] == 0x01
    assert int.from_bytes(header[1:6], "big") == filetime(START) >> 24
    assert header[6:22] == bytes.fromhex(TOKEN[:32])
    assert levels == []


def test_one_response_level_per_reply_with_the_time_since_the_header():
    replies = [START + timedelta(minutes=5), START + timedelta(hours=3), START + timedelta(days=40)]
    header, levels = decode(thread_index(TOKEN, START, replies))
    header_time = int.from_bytes(header[1:6], "big") << 24
    assert [level[3] for level in levels] == [1, 2, 3]  # the sequence count
    for (dc, delta, random_bits, _), moment in zip(levels, replies, strict=True):
        assert dc == 0  # bits 18-48 of the difference fit in 31 bits
        assert delta == (filetime(moment) - header_time) >> 18
        assert 0 <= random_bits < 16
    # 2^18 FILETIME units are 26.2 ms, and the header keeps the start to 2^24 units (1.68 s):
    # the delta reads back as the three hours.
    assert 0 <= levels[1][1] * 2**18 / 10_000_000 - 3 * 3600 < 1.7


def test_a_reply_years_later_sets_the_dc_bit_and_uses_coarser_bits():
    much_later = START + timedelta(days=3 * 365)  # beyond 2^49 FILETIME units (~1.78 years)
    header, [(dc, delta, _, sequence)] = decode(thread_index(TOKEN, START, [much_later]))
    header_time = int.from_bytes(header[1:6], "big") << 24
    assert (dc, sequence) == (1, 1)
    assert delta == (filetime(much_later) - header_time) >> 23


def test_the_same_message_builds_the_same_index_and_replies_extend_it():
    replies = [START + timedelta(minutes=1), START + timedelta(minutes=9)]
    first = thread_index(TOKEN, START, replies[:1])
    second = thread_index(TOKEN, START, replies)
    assert thread_index(TOKEN, START, replies) == second  # a rebuilt message is identical
    assert base64.b64decode(second).startswith(base64.b64decode(first))
