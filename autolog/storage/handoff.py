"""Long loops of copy or hash steps that another thread can finish.

The pipeline's stager and hasher run at a lowered CPU priority (snapshots/cpu_priority.py), which a
thread cannot raise again without privileges. When someone waits for their work (close(), the fence,
room in the backlog), the rest of the loop they are in moves to a thread at the process's priority:
the loop is a generator of steps, which any thread can resume between two steps.
"""
from __future__ import annotations

from typing import Callable, Generator, Protocol, TypeVar

T = TypeVar("T")


class Handoff(Protocol):
    def wanted(self) -> bool:
        """Whether the calling thread should hand the rest of its work over now (cheap: asked each step)."""

    def run(self, work: Callable[[], T]) -> T:
        """work() on another thread; its result, or its exception raised here."""


def drive(steps: Generator[None, None, T], handoff: Handoff | None = None) -> T:
    """Run a generator of steps to its end and return its value; once handoff wants it, the remaining
    steps run on the handoff's thread."""
    try:
        while True:
            if handoff is not None and handoff.wanted():
                return handoff.run(lambda: drive(steps))
            next(steps)
    except StopIteration as end:
        return end.value
