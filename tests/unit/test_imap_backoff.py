"""Backoff after network errors: 1, 2, 4 ... minutes, never more than 30."""

from datetime import timedelta

from jobs.imap_poll import MAX_BACKOFF_MINUTES, backoff_delay


def test_the_wait_doubles_from_one_minute_up_to_thirty():
    waits = [backoff_delay(n) / timedelta(minutes=1) for n in range(1, 9)]
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]
    assert MAX_BACKOFF_MINUTES == 30


def test_a_long_outage_stays_at_thirty_minutes():
    assert backoff_delay(10_000) == timedelta(minutes=30)
    assert backoff_delay(0) == timedelta(minutes=1)  # a count never recorded still waits
