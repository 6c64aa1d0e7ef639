"""What close() or exit shows while it waits for snapshots (only when that takes over a second).

On a terminal, a tqdm bar. Anywhere else (a log file, a CI job, a notebook's captured stderr) a bar's
carriage-return updates would pile up: one line when waiting starts, one every 30 s at most, and
one when it ends.
"""
from __future__ import annotations

import sys
import time
from typing import Any


class FlushProgress:
    DELAY = 1.0
    LINE_EVERY = 30.0

    def __init__(self, jobs: list[Any], enabled: bool = True, stream: Any = None):
        self.stream = stream or sys.stderr
        self.total_bytes = sum(j.size for j in jobs)
        self.total_jobs = len(jobs)
        self.enabled = enabled and self.total_jobs > 0
        self.started = time.monotonic()
        self.bar = None
        self.last_line: float | None = None
        self.remaining: list[Any] = jobs

    def __enter__(self) -> "FlushProgress":
        return self

    def update(self, remaining: list[Any]) -> None:
        self.remaining = remaining
        if not self.enabled or time.monotonic() - self.started < self.DELAY:
            return
        if _is_terminal(self.stream):
            self._update_bar(remaining)
        elif self.last_line is None or time.monotonic() - self.last_line >= self.LINE_EVERY:
            waited = "" if self.last_line is None else f" (waiting for {time.monotonic() - self.started:.0f} s)"
            self._line(f"{self._state(remaining)}{waited}")

    def _update_bar(self, remaining: list[Any]) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total_bytes, unit="B", unit_scale=True, unit_divisor=1024,
                            desc="autolog: storing snapshots", file=self.stream, leave=True)
        done = self.total_bytes - sum(j.size for j in remaining)
        self.bar.update(max(0, done - self.bar.n))
        self.bar.set_postfix_str(f"{self.total_jobs - len(remaining)}/{self.total_jobs} snapshots")

    def _state(self, remaining: list[Any]) -> str:
        left = sum(j.size for j in remaining)
        return (f"{self.total_jobs - len(remaining)}/{self.total_jobs} done, "
                f"{_size(left)} of {_size(self.total_bytes)} left")

    def _line(self, text: str) -> None:
        self.last_line = time.monotonic()
        self.stream.write(f"autolog: storing snapshots: {text}\n")
        self.stream.flush()

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.last_line is not None:
            took = time.monotonic() - self.started
            self._line(f"stopped waiting after {took:.0f} s, {self._state(self.remaining)}" if self.remaining
                       else f"all {self.total_jobs} done in {took:.0f} s")


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
