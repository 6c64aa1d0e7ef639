"""Saves with training between them: how long each snapshot takes to be stored, and whether the
training itself slows, plain torch.save against autolog from one or more source trees.

run_bench.py's saves come back to back with nothing between them. Here the training thread runs
Python for --train-ms between saves (a pure-Python loop: the worst case of a training loop's own
Python for the GIL, which autolog's stager and hasher must take back after each step of a copy or a
hash; bench/experiments/gil_convoy.py). Per run: the training's loops per second, each save call,
each snapshot's copy and hash, how long after its save each was stored (its row's stored_at), and
close(). The medians of copies, hashes and stored times leave out the last save's, which close()
waits for with no training beside it.

    python bench/experiments/train_between_saves.py --megabytes 200 --saves 5 --train-ms 400 --repeat 5 \\
        [--hold-freed-pages 60000] now=. [before=/tmp/before]
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
from run_order import rotated  # noqa: E402

WORKLOAD = r"""
import json, os, sys, time
work, bench = sys.argv[1], sys.argv[2]
sys.path.insert(0, bench)
from workloads import state_dict, time_calls

mode, megabytes, saves, train_ms = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
sd = state_dict(megabytes)
task = None
spans = {"copy": [], "hash_staged": []}  # each snapshot's copy and hash, in seconds
if mode == "autolog":
    from autolog.snapshots import steps

    for name in spans:
        time_calls(steps, name, lambda args, kwargs, start, end, name=name: spans[name].append(end - start))
    from autolog import Task
    task = Task.init(project_name="bench", task_name="train-between-saves", output_uri=os.path.join(work, "store"))
path = os.path.join(work, "model.pt")
import torch

loops, trained, calls, saved_at = 0, 0.0, [], []
start = time.perf_counter()
for i in range(saves):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < train_ms / 1000:  # the training's own Python
        for _ in range(1000):
            pass
        loops += 1
    trained += time.perf_counter() - t0
    sd["weight"][0] = i + 1
    t0 = time.perf_counter()
    torch.save(sd, path)
    calls.append(time.perf_counter() - t0)
    saved_at.append(time.time())
closed = None
if task is not None:
    t0 = time.perf_counter()
    task.close()
    closed = time.perf_counter() - t0
    snaps = sorted(task.models["output"][0].snapshots, key=lambda s: s.iteration)
    stored_after = [s.stored_at - at for s, at in zip(snaps, saved_at)]
else:
    stored_after = []
print(json.dumps({"loops_per_s": loops / trained, "calls": calls, "stored_after": stored_after, "closed": closed,
                  "copies": spans["copy"], "hashes": spans["hash_staged"], "total": time.perf_counter() - start,
                  "autolog": sys.modules["autolog"].__file__ if "autolog" in sys.modules else None}))
"""


def one_run(mode: str, tree: str, args: argparse.Namespace) -> dict:
    return run_fresh(WORKLOAD, [mode, str(args.megabytes), str(args.saves), str(args.train_ms)], tree)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("trees", nargs="+", help="name=path of a source tree holding autolog/")
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--saves", type=int, default=5)
    parser.add_argument("--train-ms", type=float, default=400)
    parser.add_argument("--repeat", type=int, default=5)
    add_hold_option(parser)
    args = parser.parse_args()
    runs = {name: ("autolog", os.path.abspath(path)) for name, path in (t.split("=", 1) for t in args.trees)}
    runs["plain"] = ("plain", str(BENCH.parent))
    results: dict[str, list[dict]] = {name: [] for name in runs}
    with freed_pages_held(args.hold_freed_pages):
        for repetition in range(args.repeat):
            for name in rotated(list(runs), repetition):
                mode, tree = runs[name]
                result = one_run(mode, tree, args)
                results[name].append(result)
                stored = ", ".join(f"{s * 1e3:.0f}" for s in result["stored_after"])
                spans = "".join(f", {what} {[round(x * 1e3) for x in result[what]]} ms"
                                for what in ("copies", "hashes") if result[what])
                print(f"{name}: loops/s {result['loops_per_s']:,.0f}, calls "
                      f"{[round(c * 1e3) for c in result['calls']]} ms{spans}, stored after [{stored}] ms, "
                      f"close() {(result['closed'] or 0) * 1e3:.0f} ms", flush=True)
    plain_loops = statistics.median(r["loops_per_s"] for r in results["plain"])
    print(f"\n{args.megabytes} MB x{args.saves}, {args.train_ms:.0f} ms of Python between saves, medians of {args.repeat}:")
    for name, rs in results.items():
        loops = statistics.median(r["loops_per_s"] for r in rs)
        calls = statistics.median(c for r in rs for c in r["calls"])
        line = f"{name:>8}: training {loops / plain_loops:.3f}x plain's loops/s, save call {calls * 1e3:.0f} ms"
        if runs[name][0] == "autolog":
            stored = statistics.median(s for r in rs for s in r["stored_after"][:-1])
            closed = statistics.median(r["closed"] for r in rs)
            copy = statistics.median(c for r in rs for c in r["copies"][:-1])
            hashed = statistics.median(h for r in rs for h in r["hashes"][:-1])
            line += (f"; while training: copy {copy * 1e3:.0f} ms, hash {hashed * 1e3:.0f} ms, stored "
                     f"{stored * 1e3:.0f} ms after its save; close() {closed * 1e3:.0f} ms")
        print(line)


if __name__ == "__main__":
    main()
