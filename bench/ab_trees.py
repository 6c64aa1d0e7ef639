"""Side by side: 3 torch.save calls of one path with autolog from several source trees (commits),
plain and floor, interleaved in one run; prints each run and the medians.

    git worktree add /tmp/before <commit>
    python bench/ab_trees.py --megabytes 1024 --repeat 3 before=/tmp/before now=.

Each run is bench/workloads.py's save_calls in a fresh interpreter with PYTHONPATH set to the tree.
The runs' order is rotated each repetition (bench/run_order.py says why).
--started saves once Task.init's background start is over (run_bench.py's "autolog-started").
--loads times torch.load of a file an earlier task saved instead (3 loads a run, the first right
after Task.init; run_bench.py's load rows), plain and each tree.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from freed_pages import add_hold_option, freed_pages_held  # noqa: E402
from fresh_run import run_workload  # noqa: E402
from run_order import rotated  # noqa: E402  (bench/ is not a package)


def one_run(mode: str, tree: str, megabytes: int) -> dict:
    work, home = tempfile.mkdtemp(prefix="autolog-ab-"), tempfile.mkdtemp(prefix="autolog-ab-home-")
    try:
        return run_workload("save_calls", dict(mode=mode, megabytes=megabytes, saves=3, workdir=work), tree, home)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


def compare_loads(trees: dict[str, str], megabytes: int, repeat: int) -> None:
    """First and later torch.load of one known file (an earlier task saved it, into the same home)."""
    work, home = tempfile.mkdtemp(prefix="autolog-ab-"), tempfile.mkdtemp(prefix="autolog-ab-home-")
    runs = dict({name: ("autolog", tree) for name, tree in trees.items()}, plain=("plain", str(HERE.parent)))
    times: dict[str, list[list[float]]] = {name: [] for name in runs}
    try:
        run_workload("produce_known_file", dict(megabytes=megabytes, workdir=work), str(HERE.parent), home)
        for repetition in range(repeat):
            for name in rotated(list(runs), repetition):
                mode, tree = runs[name]
                got = run_workload("load_lineage", dict(mode=mode, megabytes=megabytes, loads=3, workdir=work), tree, home)
                times[name].append(got["times"])
                print(f"{name}: loads {[round(t * 1000, 1) for t in got['times']]} ms", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    first = {name: statistics.median(t[0] for t in ts) for name, ts in times.items()}
    later = {name: statistics.median(statistics.median(t[1:]) for t in ts) for name, ts in times.items()}
    print(f"\n{megabytes} MB loads, medians of {repeat}:")
    for name in runs:
        print(f"  {name:>10}: 1st load {first[name] * 1000:.1f} ms ({first[name] / first['plain']:.2f}× plain), "
              f"later loads {later[name] * 1000:.1f} ms ({later[name] / later['plain']:.2f}× plain)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("trees", nargs="+", help="name=path of a source tree holding autolog/")
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--started", action="store_true",
                        help="the trees save once Task.init's background start is over (autolog-started)")
    parser.add_argument("--loads", action="store_true", help="time loads of a known file instead of saves")
    add_hold_option(parser)
    args = parser.parse_args()
    if args.loads:
        with freed_pages_held(args.hold_freed_pages):
            return compare_loads({name: os.path.abspath(path) for name, path in (t.split("=", 1) for t in args.trees)},
                                 args.megabytes, args.repeat)
    mode = "autolog-started" if args.started else "autolog"
    runs = {name: (mode, os.path.abspath(path)) for name, path in (t.split("=", 1) for t in args.trees)}
    runs.update(plain=("plain", str(HERE.parent)), floor=("floor", str(HERE.parent)))
    results: dict[str, list[dict]] = {name: [] for name in runs}
    with freed_pages_held(args.hold_freed_pages):
        for repetition in range(args.repeat):
            for name in rotated(list(runs), repetition):  # interleaved: drift hits every tree alike
                mode, tree = runs[name]
                result = one_run(mode, tree, args.megabytes)
                results[name].append(result)
                print(f"{name}: calls {[round(c, 3) for c in result['calls']]} s, "
                      f"persisted {result['persisted']:.2f} s", flush=True)
    floor = statistics.median(r["persisted"] for r in results["floor"])
    plain_later = statistics.median(statistics.median(r["calls"][1:]) for r in results["plain"])
    print(f"\n{args.megabytes} MB, medians of {args.repeat}:")
    for name, rs in results.items():
        later = statistics.median(statistics.median(r["calls"][1:]) for r in rs)
        persisted = statistics.median(r["persisted"] for r in rs)
        first = statistics.median(r['calls'][0] for r in rs)
        closed = [r["closed"] for r in rs if r.get("closed") is not None]  # close() after the last save
        print(f"  {name:>10}: 1st call {first * 1000:.1f} ms, later calls {later * 1000:.1f} ms "
              f"({later / plain_later:.2f}× plain), persisted {persisted:.3f} s ({persisted / floor:.2f}× floor)"
              + (f", close() {statistics.median(closed) * 1000:.0f} ms" if closed else ""))


if __name__ == "__main__":
    main()
