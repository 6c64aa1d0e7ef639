"""Where a first torch.save call's extra time goes with autolog: the wrapper's own parts, or torch's writer.

run_bench.py's first 10 MB save call is 1.19x plain (+1.2 ms). Each run here is a fresh interpreter
that saves a 10 MB state dict 3 times to one path, timing each call whole and in parts: torch's own
writer (`torch.serialization._save`, the pickler and the zip records), and with autolog the wrapper's
two calls into the run (`CaptureRecorder.before_save`: the path's fence; `CaptureRecorder.saved`:
finding and opening the saved file, the job, waking the copier). What is left of a call is torch's
file handling around its writer plus the wrapper's Python between those calls.

    python bench/experiments/first_save_parts.py [--megabytes 10] [--repeat 9] [--hold-freed-pages 60000]

Modes: plain; autolog (saves right after Task.init); autolog-started (once the background start is
over). The modes' order is rotated each repetition (bench/run_order.py). Prints the medians of each
part for the first save and for the later two.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
sys.path.insert(0, str(BENCH))
from freed_pages import add_hold_option, freed_pages_held  # noqa: E402  (bench/ is not a package)
from fresh_run import run_fresh  # noqa: E402
from run_order import rotated  # noqa: E402

WORKLOAD = r"""
import json, os, sys, time
import torch
import torch.serialization

work, bench, mode, megabytes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, bench)
from workloads import state_dict, time_calls, wait_for_start

parts = {}


def timed(owner, name, label):
    time_calls(owner, name, lambda args, kwargs, start, end: parts.__setitem__(
        label, parts.get(label, 0.0) + end - start))


timed(torch.serialization, "_save", "torch writer")
sd = state_dict(megabytes)
module = None
if mode != "plain":
    from autolog import Task
    from autolog.capture import CaptureRecorder
    timed(CaptureRecorder, "before_save", "fence")
    timed(CaptureRecorder, "saved", "saved()")
    task = Task.init(project_name="bench", task_name="first save", output_uri=os.path.join(work, "store"))
    if mode == "autolog-started":
        wait_for_start(task)
    import autolog
    module = autolog.__file__
path = os.path.join(work, "model.pt")
calls = []
for i in range(3):
    sd["weight"][0] = i + 1
    parts.clear()
    start = time.perf_counter()
    torch.save(sd, path)
    whole = time.perf_counter() - start
    calls.append({"call": whole * 1e3, **{k: v * 1e3 for k, v in parts.items()},
                  "rest": (whole - sum(parts.values())) * 1e3})
if mode != "plain":
    task.close()
print(json.dumps({"autolog": module, "calls": calls}))
"""

MODES = ("plain", "autolog", "autolog-started")
PARTS = ("call", "torch writer", "fence", "saved()", "rest")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--tree", default=str(BENCH.parent), help="the source tree holding autolog/ (default: this one)")
    add_hold_option(parser)
    args = parser.parse_args()
    runs: dict[str, list[list[dict]]] = {mode: [] for mode in MODES}
    with freed_pages_held(args.hold_freed_pages):
        for repetition in range(args.repeat):
            for mode in rotated(list(MODES), repetition):
                calls = run_fresh(WORKLOAD, [mode, str(args.megabytes)], str(Path(args.tree).resolve()))["calls"]
                runs[mode].append(calls)
                print(f"{mode:>16}: " + " | ".join(
                    " ".join(f"{k} {v:.2f}" for k, v in call.items()) for call in calls), flush=True)
    print(f"\n{args.megabytes} MB, medians of {args.repeat} runs (ms):")
    for which, pick in (("1st call", lambda calls: calls[:1]), ("later calls", lambda calls: calls[1:])):
        print(f"  {which}:")
        for mode in MODES:
            cells = []
            for part in PARTS:
                values = [call[part] for calls in runs[mode] for call in pick(calls) if part in call]
                if values:
                    cells.append(f"{part} {statistics.median(values):.2f}")
            print(f"    {mode:>16}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
