"""retry_while_unreachable: a database that is down is retried for the whole of [db] retry_seconds."""
from __future__ import annotations

import time

import pytest

from autolog.errors import DatabaseUnreachableError
from autolog.snapshots.database_guard import retry_while_unreachable


class Down:
    """A database call that fails as unreachable until `up_after` seconds have passed."""

    def __init__(self, up_after: float = float("inf")):
        self.start, self.up_after, self.tries = time.monotonic(), up_after, 0

    def __call__(self) -> str:
        self.tries += 1
        if time.monotonic() - self.start < self.up_after:
            raise DatabaseUnreachableError("connection refused")
        return "row written"


def test_a_database_that_stays_down_is_retried_until_the_seconds_are_up():
    down = Down()
    with pytest.raises(DatabaseUnreachableError):
        retry_while_unreachable(down, 1.2)
    # backoff 0.25, 0.5, then 0.45 of the 1.0 step: the last try at 1.2 s, not given up at 0.75 s
    assert time.monotonic() - down.start >= 1.2
    assert down.tries == 4


def test_a_database_back_just_before_the_end_is_used():
    down = Down(up_after=1.1)
    assert retry_while_unreachable(down, 1.2) == "row written"


def test_other_errors_are_not_retried():
    tries = []

    def refused() -> None:
        tries.append(1)
        raise ValueError("a constraint failed")

    with pytest.raises(ValueError):
        retry_while_unreachable(refused, 5)
    assert tries == [1]
