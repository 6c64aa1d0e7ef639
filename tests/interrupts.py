"""Ctrl-C at each point where CPython could raise it, in autolog's frames, in turn.

CPython runs a signal's handler only at certain points: when a call has returned (the exception then
belongs to the call instruction: the callee's work is done, its result lost), at a function's start
and at a backward jump. A profile function raises KeyboardInterrupt at each of the first two, in
autolog's frames, in turn: at a C function's return (its result dropped, as a signal's handler
would drop it) and at a call of autolog's code. Backward jumps (loops) are not visited.
"""
from __future__ import annotations

import os
import sys
import types
from typing import Callable

import pytest

import autolog

AUTOLOG_DIR = os.path.dirname(autolog.__file__) + os.sep
# For a test module: where the points are known to be these, and what Python itself does there.
MARKS = [
    pytest.mark.skipif(sys.version_info >= (3, 12), reason="written against CPython 3.10-3.11's signal points and "
                       "profile functions (3.12 runs them through sys.monitoring)"),
    # Raised where a generator is being closed, Python itself reports the KeyboardInterrupt as
    # unraisable ("Exception ignored") and goes on, as it does for a real Ctrl-C there.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def _ours(frame: types.FrameType) -> bool:
    return frame.f_code.co_filename.startswith(AUTOLOG_DIR)


class Interrupter:
    """A profile function that raises KeyboardInterrupt at the n-th signal point of autolog's frames."""

    def __init__(self, n: int, only: tuple | None = None):
        self.n, self.seen, self.where, self.only = n, 0, None, only

    def __call__(self, frame: types.FrameType, event: str, arg: object) -> None:
        if event not in ("c_return", "call") or not _ours(frame):
            return
        if self.only is not None and (event, frame.f_code.co_name, getattr(arg, "__name__", None)) != self.only:
            return
        self.seen += 1
        if self.seen == self.n:
            what = getattr(arg, "__qualname__", arg) if event == "c_return" else "start"
            self.where = f"{frame.f_code.co_filename[len(AUTOLOG_DIR):]}:{frame.f_lineno} {frame.f_code.co_name}, {what}"
            raise KeyboardInterrupt(self.where)


def interrupted_at(n: int, call: Callable[[], object], only: tuple | None = None) -> str | None:
    """call() with a Ctrl-C at autolog's n-th signal point (only: those of one kind, ("c_return",
    function, C function) or ("call", function, None)): where it landed, or None when the call has
    fewer points (it then ran to its end)."""
    interrupter = Interrupter(n, only)
    sys.setprofile(interrupter)
    try:
        call()
    except KeyboardInterrupt:
        return interrupter.where
    finally:
        sys.setprofile(None)
    return None
