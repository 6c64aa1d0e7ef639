"""How fast the Python a captured save runs after it goes, by what came just before it.

A 10 MB save's call costs ~0.3-0.4 ms more with autolog (README, "First save call"), most of it
`CaptureRecorder.saved`, whose parts cost a few µs each when timed in a loop. This times one fixed
piece of that work (`collect_sources` of a file, a staging name, a snapshot id, an open + fstat +
close) right after different things: nothing (the loop), a 10 MB copy in memory, a 10 MB write to a
file, a 5 ms sleep, many cheap system calls; then the real `saved()` of back-to-back 10 MB
`torch.save` calls of a started task.

    python bench/experiments/python_after_save.py [--dir DIR] [--repeat 41]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid

import numpy as np

from autolog.db import new_time_ordered_id
from autolog.storage import collect_sources

TEN_MB = 10 << 20


def piece(path: str) -> float:
    """µs of a fixed part of what saved() does on the training thread."""
    started = time.perf_counter_ns()
    collect_sources(path)
    uuid.uuid4().hex
    new_time_ordered_id()
    fd = os.open(path, os.O_RDONLY)
    os.fstat(fd)
    os.close(fd)
    return (time.perf_counter_ns() - started) / 1000


def after_each(before, path: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        before()
        times.append(piece(path))
    return statistics.median(times)


def saved_calls(work: str, repeat: int) -> list[float]:
    """µs of CaptureRecorder.saved in each of `repeat` back-to-back 10 MB saves of one path."""
    import torch

    from autolog import Task
    from autolog.capture import CaptureRecorder

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from workloads import wait_for_start

    times: list[float] = []
    original = CaptureRecorder.saved

    def timed(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter_ns()
        try:
            return original(self, *args, **kwargs)
        finally:
            times.append((time.perf_counter_ns() - started) / 1000)

    CaptureRecorder.saved = timed  # type: ignore[method-assign]
    task = Task.init(project_name="bench", task_name="python-after-save", output_uri=os.path.join(work, "store"))
    wait_for_start(task)
    state = {"weight": torch.zeros(TEN_MB // 4)}
    for i in range(repeat):
        state["weight"][0] = i + 1
        torch.save(state, os.path.join(work, "model.pt"))
    task.close()
    CaptureRecorder.saved = original  # type: ignore[method-assign]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default=None, help="where the files go (default: the temp folder)")
    parser.add_argument("--repeat", type=int, default=41)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="autolog-python-after-save-", dir=args.dir)
    os.environ["AUTOLOG_HOME"] = os.path.join(work, "home")  # its task goes into a store of its own
    try:
        path = os.path.join(work, "saved.pt")
        with open(path, "wb") as f:
            f.write(b"x" * 4096)
        source, target = np.ones(TEN_MB, dtype=np.uint8), np.empty(TEN_MB, dtype=np.uint8)

        def write_file() -> None:
            with open(os.path.join(work, "written.bin"), "wb") as f:
                f.write(source)

        def system_calls() -> None:
            for _ in range(1000):
                os.getppid()

        cases = [("nothing (a loop)", lambda: None), ("a 10 MB copy in memory", lambda: np.copyto(target, source)),
                 ("a 10 MB write to a file", write_file), ("a 5 ms sleep", lambda: time.sleep(0.005)),
                 ("1,000 getppid() calls", system_calls), ("nothing again", lambda: None)]
        print(f"the same piece of saved()'s work, median of {args.repeat}, right after:")
        for name, before in cases:
            print(f"  {name:26} {after_each(before, path, args.repeat):7.1f} µs")
        times = saved_calls(work, args.repeat)
        print(f"CaptureRecorder.saved in {args.repeat} back-to-back 10 MB torch.save calls: first {times[0]:.0f} µs, "
              f"median of the others {statistics.median(times[1:]):.0f} µs (range {min(times[1:]):.0f}-{max(times[1:]):.0f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
