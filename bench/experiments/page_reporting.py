"""Which runs of a save meet pages this VM must take back from its host, and why.

    python bench/experiments/page_reporting.py                   # 200 MB, 5 rounds
    python bench/experiments/page_reporting.py --megabytes 10 --rounds 9
    python bench/experiments/page_reporting.py --hold-freed-pages 60000   # as on a machine without

Each run first writes and deletes 3 files of the state dict's size (what the previous bench run
leaves behind: its files, deleted at its end), then waits one of three ways, then starts a fresh
interpreter that saves the state dict once: plain, plain-late (plain, --late seconds into its run:
later than autolog's save comes in its run), autolog right after Task.init, autolog once its
background start is over (run_bench.py's "autolog-started"), or the same with the save not captured
(autolog-unwrapped: Task.init(auto_connect_frameworks=False)):

    none        starts at once
    sync        os.sync() first
    sync+1s     os.sync() and a 1 s pause (what a "settle" step between bench runs would do)

It prints the median first save call, the saving thread's CPU time during it (time.thread_time), how
far into its run the save came, and where its pages could come from: the free pages on the saving
thread's CPU's own list (Linux's per-CPU page lists, /proc/zoneinfo) just before the save, and how
many runs found fewer there than the file needs. The last lines split all runs by that.

On this project's VM the guest gives freed memory back to its host (virtio-balloon free page
reporting) and a page taken back costs ~10 us at its first write, charged to the writing thread: such
a save takes several times longer, nearly all of it its own CPU (perf: 83-87% in
copy_folio_from_iter_atomic, the copy into new page-cache pages; a 200 MB file is written as 100 2 MB
folios). Its kernel reports a page as soon as it reaches the shared free lists; pages kept on a CPU's
own list are not reported. 2026-11-30, 200 MB: plain 76-80 ms in every case, autolog-started 91-544 ms
by the wait, autolog-unwrapped as slow (so not autolog's wrapper). Then with the per-CPU lists shown
(2026-11-30, later, --rounds 3): runs whose saving CPU's list held the file, median 77 ms (25 runs);
held less, 419 ms (20 runs); the list was short in 1 of 9 plain runs, 0 of 9 plain-late, 3 of 9
autolog, 8 of 9 autolog-started and 8 of 9 autolog-unwrapped. With --hold-freed-pages 60000
(bench/freed_pages.py: freed pages wait that long before they are reported), every mode's median
76-85 ms, and runs whose list was short 80 ms. (The list is read before the save, the CPU after it:
a thread moved mid-save is counted on its last CPU.)
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from freed_pages import add_hold_option, freed_pages_held  # noqa: E402  (bench/ is not a package)
from many_saves import run_workload  # noqa: E402

WORKLOAD = r"""
import time
started = time.perf_counter()
import json, os, sys
import torch
mode, megabytes, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
state = {"w": torch.zeros(megabytes * (1 << 18))}
task = None
if mode == "plain-late":  # as late as autolog-started's save comes in its run
    time.sleep(float(sys.argv[4]))
if mode.startswith("autolog"):
    from autolog import Task
    task = Task.init(project_name="bench", task_name="page-reporting", output_uri=os.path.join(work, "store"),
                     auto_connect_frameworks=mode != "autolog-unwrapped")
if mode in ("autolog-started", "autolog-unwrapped"):
    from bench.workloads import wait_for_start  # the repository's root is on PYTHONPATH
    wait_for_start(task)
ready = time.perf_counter() - started


def per_cpu_free_mb():  # the free pages on each CPU's own list (the Normal zone's: page cache's)
    pagesets = open("/proc/zoneinfo").read().split("zone   Normal")[1].split("pagesets")[1]
    return [int(line.split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20 for line in pagesets.splitlines() if "count:" in line]


lists = per_cpu_free_mb()
cpu, wall = time.thread_time(), time.perf_counter()
torch.save(state, os.path.join(work, "model.pt"))
cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
on = int(open("/proc/thread-self/stat").read().rsplit(")", 1)[1].split()[36])  # field 39: its CPU
if task is not None:
    task.close()
print(json.dumps({"call": wall, "cpu": cpu, "ready": ready, "list_mb": lists[on], "lists_mb": lists}))
"""

MODES = ("plain", "plain-late", "autolog", "autolog-started", "autolog-unwrapped")
WAITS = {"none": (False, 0.0), "sync": (True, 0.0), "sync+1s": (True, 1.0)}


def previous_run(megabytes: int) -> None:
    """3 files of that size written, then deleted: the pages a bench run frees at its end."""
    folder = tempfile.mkdtemp(prefix="autolog-previous-")
    block = b"\1" * (megabytes << 20)
    for i in range(3):
        with open(os.path.join(folder, f"f{i}"), "wb") as out:
            out.write(block)
    shutil.rmtree(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--late", type=float, default=1.0,
                        help="seconds plain-late waits before its save (autolog-started's start, about)")
    add_hold_option(parser)
    args = parser.parse_args()
    with freed_pages_held(args.hold_freed_pages):
        results = rounds(args)
    report(args, results)


def rounds(args: argparse.Namespace) -> dict[tuple[str, str], list[dict]]:
    results: dict[tuple[str, str], list[dict]] = {}
    root = tempfile.mkdtemp(prefix="autolog-page-reporting-")
    try:
        for round_number in range(args.rounds):
            for mode in MODES:
                for wait, (sync, pause) in WAITS.items():
                    previous_run(args.megabytes)
                    if sync:
                        os.sync()
                    time.sleep(pause)
                    work = os.path.join(root, f"{round_number}-{mode}-{wait}")
                    results.setdefault((mode, wait), []).append(run_workload(
                        WORKLOAD, [mode, str(args.megabytes), work, str(args.late)], work))
                    shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results


def report(args: argparse.Namespace, results: dict[tuple[str, str], list[dict]]) -> None:
    print(f"{args.megabytes} MB, first save call after 3 x {args.megabytes} MB written and deleted, "
          f"medians of {args.rounds}:")
    for (mode, wait), runs in results.items():
        calls = [r["call"] * 1000 for r in runs]
        cpu = statistics.median(r["cpu"] * 1000 for r in runs)
        ready = statistics.median(r["ready"] for r in runs)
        short = sum(r["list_mb"] < args.megabytes for r in runs)
        print(f"  {mode:>17}, {wait:>7}: {statistics.median(calls):7.1f} ms (runs {min(calls):.0f}-{max(calls):.0f}), "
              f"saving thread's CPU {cpu:.1f} ms, saved {ready:.2f} s into its run, "
              f"its CPU's list short in {short} of {len(runs)}")
    every = [r for runs in results.values() for r in runs]
    for label, runs in (("held the file", [r for r in every if r["list_mb"] >= args.megabytes]),
                        ("held less", [r for r in every if r["list_mb"] < args.megabytes])):
        if runs:
            calls = [r["call"] * 1000 for r in runs]
            print(f"runs whose saving CPU's list {label}: {len(runs)}, median {statistics.median(calls):.0f} ms "
                  f"(runs {min(calls):.0f}-{max(calls):.0f})")


if __name__ == "__main__":
    main()
