"""The upstream filter's verdict from its headers (mail/spam_headers.py): pure, no app."""

from __future__ import annotations

import pytest

from mail.spam_headers import headers_of, upstream_verdict


def verdict(*headers: str, threshold: float | None = None) -> str | None:
    raw = ("\r\n".join(["From: a@b.example", *headers, "", "Body, X-Spam-Flag: YES"])).encode()
    return upstream_verdict(headers_of(raw), threshold)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ((), None),
        (("X-Spam-Flag: YES",), "X-Spam-Flag: YES"),
        (("X-Spam-Flag: yes",), "X-Spam-Flag: YES"),
        (("X-Spam-Flag: NO",), None),
        (
            ("X-Spam-Status: Yes, score=7.1 required=5.0 tests=BAYES_99",),
            "X-Spam-Status: Yes, score=7.1",
        ),
        (("X-Spam-Status: Yes,\r\n\tscore=12 required=5.0",), "X-Spam-Status: Yes, score=12"),
        (("X-Spam-Status: Yes",), "X-Spam-Status: Yes"),
        (("X-Spam-Status: No, score=-1.9 required=5.0",), None),
        (
            ("X-Spamd-Result: default: True [15.20 / 15.00]; BAYES_SPAM(5.10)",),
            "rspamd: spam (score 15.2 / 15.0)",
        ),
        (("X-Spamd-Result: default: False [7.10 / 15.00]; R_DKIM_ALLOW(-0.20)",), None),
        (("X-Spamd-Result: garbage",), None),
        # A sender's forged "NO" does not hide the filter's own "YES".
        (("X-Spam-Flag: NO", "X-Spam-Flag: YES"), "X-Spam-Flag: YES"),
    ],
)
def test_the_filters_own_yes_or_no(headers, expected):
    assert verdict(*headers) == expected


def test_a_threshold_also_makes_spam_of_a_lower_rspamd_score():
    header = "X-Spamd-Result: default: False [7.10 / 15.00]"
    assert verdict(header, threshold=6.0) == "rspamd score 7.1 ≥ 6.0"
    assert verdict(header, threshold=7.1) == "rspamd score 7.1 ≥ 7.1"
    assert verdict(header, threshold=7.2) is None
    # rspamd's own True stays spam under a higher threshold.
    assert verdict("X-Spamd-Result: default: True [15.20 / 15.00]", threshold=20.0) == (
        "rspamd: spam (score 15.2 / 15.0)"
    )


def test_the_body_is_never_read():
    assert verdict() is None  # "X-Spam-Flag: YES" is in the body only
