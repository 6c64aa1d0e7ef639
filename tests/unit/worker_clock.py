"""A clock the test moves, standing in for the `time` module of autolog/snapshots/worker.py (the
heartbeat, a wait's Watch, the supervisor's restarts): see the `clock` fixture in conftest.py."""
from __future__ import annotations


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now
