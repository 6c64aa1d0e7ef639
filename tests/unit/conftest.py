"""Fixtures of the unit tests (tests/conftest.py already isolates AUTOLOG_HOME for each test)."""
from __future__ import annotations

import pytest

from worker_clock import Clock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """snapshots/worker.py reads this clock instead of time.monotonic(); the test moves clock.now."""
    from autolog.snapshots import worker

    clock = Clock()
    monkeypatch.setattr(worker, "time", clock)
    return clock
