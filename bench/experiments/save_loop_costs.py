"""Where the time of bench/many_saves.py goes: N torch.save calls of one small file, each in a fresh
interpreter, three ways side by side:

    plain      no autolog
    autolog    as users run it: the recorder thread writes rows and files while the loop runs
    held       the recorder held back until the loop ends: the loop then costs only the training
               thread's own work per save (the wrapper, reading and hashing the file, queuing it)

What-ifs (--modes), each one cost taken away from "autolog", to size what cutting it could give:

    no-full-gc no full garbage collection during the loop (its threshold raised: a test only)
    no-files   the recorder writes rows but no files (BlobStore.put_bytes does nothing: a test only)

For each: the loop, close() (the recorder's work left for it), the garbage collector's time and full
collections during the loop, the wrapper's share (CaptureRecorder.saved) per save, and CPU time per
save: the training thread's during the loop, the recorder's over the loop and close().

    python bench/experiments/save_loop_costs.py --saves 10000 --rounds 3
    python bench/experiments/save_loop_costs.py --dir /dev/shm     # tmpfs: no disk in the way
    python bench/experiments/save_loop_costs.py --dir /dev/shm --modes plain,autolog,no-full-gc,no-files
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from many_saves import run_workload  # noqa: E402  (bench/ is not a package)

WORKLOAD = r"""
import gc, json, os, sys, threading, time
import torch
mode, saves, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
collected = {"seconds": 0.0, "full": 0, "started": 0.0}

def on_gc(phase, info):
    if phase == "start":
        collected["started"] = time.perf_counter()
    else:
        collected["seconds"] += time.perf_counter() - collected["started"]
        collected["full"] += info["generation"] == 2

task, wrapper, recorder_cpu = None, [], [0.0]
if mode != "plain":
    from autolog import Task, capture
    from autolog.snapshots import pipeline, worker
    from autolog.storage import blobstore
    release = threading.Event()
    one = worker.Worker._one

    def timed_one(self):
        started = time.thread_time()
        try:
            one(self)
        finally:
            if self.name == "autolog-recorder":
                recorder_cpu[0] += time.thread_time() - started

    worker.Worker._one = timed_one
    if mode == "no-files":
        blobstore.BlobStore.put_bytes = lambda self, data, key: self.url(key)
    if mode == "held":
        write_rows = pipeline.SnapshotPipeline._write_rows
        pipeline.SnapshotPipeline._write_rows = lambda self, batch: (release.wait(), write_rows(self, batch))[1]
    saved = capture.CaptureRecorder.saved

    def timed_saved(*args, **kwargs):
        started = time.perf_counter()
        try:
            return saved(*args, **kwargs)
        finally:
            wrapper.append(time.perf_counter() - started)

    capture.CaptureRecorder.saved = timed_saved
    task = Task.init(project_name="bench", task_name="save-loop-costs", output_uri=os.path.join(work, "store"))
state, path = {"w": torch.zeros(64)}, os.path.join(work, "m.pt")
if task is not None:
    time.sleep(1.0)  # the background start over: only the saves' own work is measured
recorder_cpu[0] = 0.0
if mode == "no-full-gc":
    gc.set_threshold(gc.get_threshold()[0], gc.get_threshold()[1], 1_000_000)
gc.callbacks.append(on_gc)
started, cpu = time.perf_counter(), time.thread_time()
for i in range(saves):
    state["w"][0] = i
    torch.save(state, path)
loop, cpu = time.perf_counter() - started, time.thread_time() - cpu
gc.callbacks.remove(on_gc)
close = 0.0
if task is not None:
    release.set()
    started = time.perf_counter()
    task.close()
    close = time.perf_counter() - started
print(json.dumps({"loop": loop, "close": close, "gc": collected["seconds"], "full": collected["full"],
                  "wrapper_us": sum(wrapper) / saves * 1e6 if wrapper else 0.0,
                  "train_cpu_us": cpu / saves * 1e6, "recorder_cpu_us": recorder_cpu[0] / saves * 1e6}))
"""


def run(mode: str, saves: int, work: str) -> dict:
    return run_workload(WORKLOAD, [mode, str(saves), work], work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--saves", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the files go (default: the temp folder)")
    parser.add_argument("--modes", default="plain,autolog,held",
                        help="comma-separated, plain first: plain, autolog, held, no-full-gc, no-files")
    args = parser.parse_args()
    modes = args.modes.split(",")
    if modes[0] != "plain" or not set(modes) <= {"plain", "autolog", "held", "no-full-gc", "no-files"}:
        parser.error("--modes: plain first, then any of autolog, held, no-full-gc, no-files")
    rows: dict[str, list[dict]] = {mode: [] for mode in modes}
    # Kept until the end: deleting a round's snapshots slows the next round's file creation on some
    # filesystems (inode_reuse.py).
    with tempfile.TemporaryDirectory(prefix="autolog-save-loop-", dir=args.dir) as work:
        for round_ in range(args.rounds):
            for mode in rows:
                rows[mode].append(run(mode, args.saves, os.path.join(work, f"{mode}-{round_}")))
    plain = statistics.median(r["loop"] for r in rows["plain"])
    print(f"{args.saves} saves of a small file, medians of {args.rounds} rounds (per save: microseconds)")
    for mode, runs in rows.items():
        loop, close = (statistics.median(r[k] for r in runs) for k in ("loop", "close"))
        gc_s, full = statistics.median(r["gc"] for r in runs), statistics.median(r["full"] for r in runs)
        wrapper = statistics.median(r["wrapper_us"] for r in runs)
        train, recorder = (statistics.median(r[k] for r in runs) for k in ("train_cpu_us", "recorder_cpu_us"))
        print(f"  {mode:10s} loop {loop:6.2f} s ({loop / args.saves * 1e6:5.0f}/save, {loop / plain:4.2f}x plain), "
              f"close {close:5.2f} s, total {(loop + close) / plain:4.2f}x plain; gc in the loop {gc_s:4.2f} s "
              f"({full:.0f} full); CaptureRecorder.saved {wrapper:5.1f}/save; CPU/save: training thread "
              f"{train:5.1f}, recorder {recorder:5.1f}")


if __name__ == "__main__":
    main()
