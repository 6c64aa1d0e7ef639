"""LazyEvent: threading.Event's set / is_set / wait, with the Event made only once a thread waits.

Thousands of small snapshots can be in flight at once (a save loop that outruns the recorder), each
with two events that are seldom waited for. A threading.Event is eight objects the garbage collector
tracks (its Condition, lock, deque and bound methods): with them, 10,000 saves in flight cost the
training thread several full collections. A LazyEvent is one object until someone waits.
"""
from __future__ import annotations

import threading

from ..forking import on_fork

_lock = threading.Lock()  # one for all: held for a few bytecodes, never while waiting


class LazyEvent:
    __slots__ = ("_flag", "_event")

    def __init__(self) -> None:
        self._flag = False
        self._event: threading.Event | None = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        with _lock:
            self._flag = True
            event = self._event
        if event is not None:
            event.set()

    def wait(self, timeout: float | None = None) -> bool:
        with _lock:
            if self._flag:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)


def _new_lock_in_child() -> None:
    global _lock
    _lock = threading.Lock()


on_fork("snapshots.events", after_in_child=_new_lock_in_child)
