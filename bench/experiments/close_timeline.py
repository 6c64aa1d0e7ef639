"""What close() waits for: a timeline of one run of 3 back-to-back torch.save calls of one path.

`bench/ab_trees.py` and `run_bench.py` time the save calls and everything persisted; this takes the
same workload (bench/workloads.py's save_calls: saves of one path, right after Task.init unless
--started) apart. Each run is a fresh interpreter in which autolog's steps are wrapped with timers
before Task.init: the database start (the wait for the script's imports and saves, the import and
the task's row, the list of installed packages), each snapshot's copy and hash, the recorder's
rounds, close()'s flush and the task's end. Times are ms from the first save's call.

    python bench/experiments/close_timeline.py --megabytes 200 --runs 5 [--started] [--hold-freed-pages 60000]
    python bench/experiments/close_timeline.py --started --busy 2 --runs 4   # beside 2 busy-looping processes

--busy N: N processes busy-looping beside the runs, in this session's scheduling group
(busy_neighbours.py says why that matters to the stager and the hasher at a lower priority).

Prints each run's timeline, then the median of each span over the runs.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
sys.path.insert(0, str(BENCH))
from freed_pages import add_hold_option, freed_pages_held  # noqa: E402  (bench/ is not a package)
from fresh_run import run_fresh  # noqa: E402
from busy_neighbours import busy_processes  # noqa: E402  (this folder: the script's own, first on sys.path)

WORKLOAD = r"""
import json, os, sys, threading, time
import torch

work, bench = sys.argv[1], sys.argv[2]
megabytes, started = int(sys.argv[3]), sys.argv[4] == "1"
sys.path.insert(0, bench)
from workloads import state_dict, time_calls, wait_for_start

spans = []  # (label, thread, start, end) in perf_counter seconds
origin = [None]


def timed(owner, name, label):
    time_calls(owner, name, lambda args, kwargs, start, end: spans.append(
        (label(*args, **kwargs) if callable(label) else label, threading.current_thread().name, start, end)))


# Nothing that imports SQLAlchemy (autolog.db.store) before Task.init: its import is part of the start.
import autolog.runtime, autolog.run_info
from autolog.snapshots import steps
from autolog.snapshots.pipeline import SnapshotPipeline
from autolog.runtime import TaskRuntime

seen = {}
def snapshot(job, *_, **__):
    return seen.setdefault(job.snapshot_id, f"#{len(seen) + 1}")

# Named wait_for_quiet_imports in trees before the start also waited for the script's saves.
quiet = "wait_for_quiet_script" if hasattr(autolog.runtime, "wait_for_quiet_script") else "wait_for_quiet_imports"
timed(autolog.runtime, quiet, "init: wait for the script's imports (and saves)")
timed(autolog.runtime, "retry_while_unreachable", "init: task row (imports SQLAlchemy, opens the database)")
timed(autolog.run_info, "installed_packages", "init: installed packages")
timed(steps, "copy", lambda job, *a, **k: f"copy {snapshot(job)}")
timed(steps, "hash_staged", lambda job, *a, **k: f"hash {snapshot(job)}")
timed(SnapshotPipeline, "_write_rows",
      lambda self, batch: f"recorder round: {len(batch)} pending row(s), {len(self._record_queue)} outcome(s) queued")
timed(SnapshotPipeline, "flush", "close: flush (waits for the snapshots)")
timed(TaskRuntime, "finish", "close: the task's end (joins init, row, checkpoint)")

sd = state_dict(megabytes)  # before Task.init, as workloads.save_calls
from autolog import Task
task = Task.init(project_name="bench", task_name="timeline", output_uri=os.path.join(work, "store"))
if started:
    wait_for_start(task)
path = os.path.join(work, "model.pt")
origin[0] = time.perf_counter()
for i in range(3):
    sd["weight"][0] = i + 1
    t0 = time.perf_counter()
    torch.save(sd, path)
    spans.append((f"save call {i + 1}", "MainThread", t0, time.perf_counter()))
t0 = time.perf_counter()
task.close()
spans.append(("close()", "MainThread", t0, time.perf_counter()))
o = origin[0]
print(json.dumps({"autolog": autolog.__file__,
                  "spans": [(label, thread, (s - o) * 1e3, (e - o) * 1e3) for label, thread, s, e in spans]}))
"""


def one_run(megabytes: int, started: bool, tree: str) -> list:
    return run_fresh(WORKLOAD, [str(megabytes), "1" if started else "0"], tree)["spans"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--started", action="store_true", help="save once Task.init's background start is over")
    parser.add_argument("--tree", default=str(BENCH.parent), help="the source tree holding autolog/ (default: this one)")
    parser.add_argument("--busy", type=int, default=0, help="processes busy-looping beside the runs")
    add_hold_option(parser)
    args = parser.parse_args()
    durations: dict[str, list[float]] = {}
    with freed_pages_held(args.hold_freed_pages), busy_processes(args.busy):
        for run in range(args.runs):
            spans = sorted(one_run(args.megabytes, args.started, os.path.abspath(args.tree)), key=lambda s: s[2])
            closed = next(s for s in spans if s[0] == "close()")
            print(f"run {run + 1}: persisted {closed[3]:.0f} ms, close() {closed[3] - closed[2]:.0f} ms")
            for label, thread, start, end in spans:
                print(f"  {start:8.1f} -> {end:8.1f} ms  {end - start:7.1f}  {thread:<18} {label}")
                key = label if not label.startswith("recorder") else "recorder round"
                durations.setdefault(key, []).append(end - start)
    print(f"\nmedians over {args.runs} runs (ms; a span that ran several times in a run counts each time):")
    for label, values in sorted(durations.items()):
        print(f"  {statistics.median(values):8.1f}  x{len(values):<3} {label}")


if __name__ == "__main__":
    main()
