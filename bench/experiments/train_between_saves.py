"""Saves with training between them: whether the training slows, how long each snapshot takes to be
stored, and the whole run's time, plain torch.save and the floor (each save copied synchronously)
against autolog from one or more source trees, side by side.

run_bench.py's saves come back to back with nothing between them. Here the training thread trains
between saves, for --train-ms or for a fixed --steps (then the totals compare: the same work, to the
end of close()): with `--training python` (the default) a pure-Python loop, the worst case of a
training loop's own Python for the GIL, which autolog's stager and hasher must take back after each
step of a copy or a hash (bench/experiments/gil_convoy.py); with `--training torch` real training
steps of a small MLP on the CPU (forward, backward, SGD step): torch's kernels give the GIL up and
use every core, as a CPU training job's do, so a copy or a hash on one core holds up each parallel
region (snapshots/cpu_priority.py). Per run: the training's steps per second, a step's p99 and
longest time, each save call, each snapshot's copy and hash, how long after its save each was stored
(its row's stored_at), close() and the total. The medians of copies, hashes and stored times leave
out the last save's, which close() waits for with no training beside it. --started: autolog's
background start (SQLAlchemy, the task's row) is over before the clock starts. --torch-threads 1 on
a machine of 2 or more cores leaves a core idle, as a GPU job's training does.

    python bench/experiments/train_between_saves.py --training torch --steps 200 --started --repeat 9 \\
        --hold-freed-pages 60000 now=. [before=/tmp/before]
    python bench/experiments/train_between_saves.py --megabytes 200 --saves 5 --train-ms 400 now=.
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
import json, os, shutil, sys, time
work, bench = sys.argv[1], sys.argv[2]
sys.path.insert(0, bench)
from workloads import state_dict, time_calls, wait_for_start

mode, megabytes, saves, train_ms = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
training, fixed_steps, started, threads = sys.argv[7], int(sys.argv[8]), sys.argv[9] == "1", int(sys.argv[10])
os.makedirs(os.path.join(work, "store"))
sd = state_dict(megabytes)
task = None
spans = {"copy": [], "hash_staged": []}  # each snapshot's copy and hash, in seconds
if mode == "autolog":
    from autolog.snapshots import steps

    for name in spans:
        time_calls(steps, name, lambda args, kwargs, start, end, name=name: spans[name].append(end - start))
    from autolog import Task
    task = Task.init(project_name="bench", task_name="train-between-saves", output_uri=os.path.join(work, "store"))
    if started:  # the steady state: the background start (SQLAlchemy, the task's row) is over
        wait_for_start(task)
path = os.path.join(work, "model.pt")
import torch

if training == "torch":
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU(),
                              torch.nn.Linear(512, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    xs, ys = torch.randn(64, 256), torch.randint(0, 10, (64,))

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xs), ys).backward()
        opt.step()
else:
    def step():
        for _ in range(1000):
            pass
for _ in range(20):  # warm-up: torch's first steps allocate and pick kernels
    step()

loops, trained, calls, saved_at, step_times = 0, 0.0, [], [], []
start = time.perf_counter()
for i in range(saves):
    t0 = time.perf_counter()
    while (loops < (i + 1) * fixed_steps) if fixed_steps else (time.perf_counter() - t0 < train_ms / 1000):
        s0 = time.perf_counter()
        step()
        step_times.append(time.perf_counter() - s0)
        loops += 1
    trained += time.perf_counter() - t0
    sd["weight"][0] = i + 1
    t0 = time.perf_counter()
    torch.save(sd, path)
    calls.append(time.perf_counter() - t0)
    saved_at.append(time.time())
    if mode == "floor":
        shutil.copyfile(path, os.path.join(work, "store", f"model.{i}.pt"))
closed = None
if task is not None:
    t0 = time.perf_counter()
    task.close()
    closed = time.perf_counter() - t0
    snaps = sorted(task.models["output"][0].snapshots, key=lambda s: s.iteration)
    stored_after = [s.stored_at - at for s, at in zip(snaps, saved_at)]
else:
    stored_after = []
step_times.sort()
print(json.dumps({"loops_per_s": loops / trained, "step_p99": step_times[int(len(step_times) * 0.99)],
                  "step_max": step_times[-1], "calls": calls, "stored_after": stored_after, "closed": closed,
                  "copies": spans["copy"], "hashes": spans["hash_staged"], "total": time.perf_counter() - start,
                  "autolog": sys.modules["autolog"].__file__ if "autolog" in sys.modules else None}))
"""


def one_run(mode: str, tree: str, args: argparse.Namespace) -> dict:
    return run_fresh(WORKLOAD, [mode, str(args.megabytes), str(args.saves), str(args.train_ms),
                                     args.training, str(args.steps), "1" if args.started else "0",
                                     str(args.torch_threads)], tree)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("trees", nargs="+", help="name=path of a source tree holding autolog/")
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--saves", type=int, default=5)
    parser.add_argument("--train-ms", type=float, default=400)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, default=0,
                        help="a fixed number of training steps between saves instead of --train-ms: compare the totals")
    parser.add_argument("--started", action="store_true",
                        help="autolog's background start is over before the clock starts (else it runs beside the training)")
    parser.add_argument("--training", choices=("python", "torch"), default="python",
                        help="between saves: a pure-Python loop, or training steps of a small MLP")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="torch's threads for --training torch (default: torch's, one per core); fewer leave cores idle, as a GPU job does")
    add_hold_option(parser)
    args = parser.parse_args()
    runs = {name: ("autolog", os.path.abspath(path)) for name, path in (t.split("=", 1) for t in args.trees)}
    runs["plain"] = ("plain", str(BENCH.parent))
    runs["floor"] = ("floor", str(BENCH.parent))
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
                print(f"{name}: total {result['total']:.2f} s, loops/s {result['loops_per_s']:,.0f}, calls "
                      f"{[round(c * 1e3) for c in result['calls']]} ms{spans}, stored after [{stored}] ms, "
                      f"close() {(result['closed'] or 0) * 1e3:.0f} ms", flush=True)
    plain_loops = statistics.median(r["loops_per_s"] for r in results["plain"])
    plain_total = statistics.median(r["total"] for r in results["plain"])
    floor_total = statistics.median(r["total"] for r in results["floor"])
    between = f"{args.steps} steps" if args.steps else f"{args.train_ms:.0f} ms"
    print(f"\n{args.megabytes} MB x{args.saves}, {between} of {args.training} training between saves, "
          f"medians of {args.repeat} (total: to the end of close(); floor: each save copied synchronously):")
    for name, rs in results.items():
        loops = statistics.median(r["loops_per_s"] for r in rs)
        calls = statistics.median(c for r in rs for c in r["calls"])
        total = statistics.median(r["total"] for r in rs)
        line = (f"{name:>10}: total {total:.2f} s ({total / plain_total:.3f}x plain, {total / floor_total:.3f}x floor), "
                f"training {loops / plain_loops:.3f}x plain's loops/s, a step's p99 "
                f"{statistics.median(r['step_p99'] for r in rs) * 1e3:.1f} ms, longest "
                f"{max(r['step_max'] for r in rs) * 1e3:.1f} ms, save call {calls * 1e3:.0f} ms")
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
