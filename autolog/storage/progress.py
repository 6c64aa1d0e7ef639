"""The progress bar shown while close() or exit waits for snapshots (only when that takes > 1 s)."""
from __future__ import annotations

import sys
import time
from typing import Any


class FlushProgress:
    DELAY = 1.0

    def __init__(self, jobs: list[Any], enabled: bool = True):
        self.total_bytes = sum(j.size for j in jobs)
        self.total_jobs = len(jobs)
        self.enabled = enabled and self.total_jobs > 0
        self.started = time.monotonic()
        self.bar = None

    def __enter__(self) -> "FlushProgress":
        return self

    def update(self, remaining: list[Any]) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            if time.monotonic() - self.started < self.DELAY:
                return
            from tqdm import tqdm

            self.bar = tqdm(total=self.total_bytes, unit="B", unit_scale=True, unit_divisor=1024,
                            desc="autolog: storing snapshots", file=sys.stderr, leave=True)
        done = self.total_bytes - sum(j.size for j in remaining)
        self.bar.update(max(0, done - self.bar.n))
        self.bar.set_postfix_str(f"{self.total_jobs - len(remaining)}/{self.total_jobs} snapshots")

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()
