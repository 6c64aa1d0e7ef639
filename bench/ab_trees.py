"""Side by side: 3 torch.save calls of one path with autolog from several source trees (commits),
plain and floor, interleaved in one run; prints each run and the medians.

    git worktree add /tmp/before <commit>
    python bench/ab_trees.py --megabytes 1024 --repeat 3 before=/tmp/before now=.

Each run is bench/workloads.py's save_calls in a fresh interpreter with PYTHONPATH set to the tree.
The runs' order is rotated each repetition (bench/run_order.py says why).
--started saves once Task.init's background start is over (run_bench.py's "autolog-started").
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from freed_pages import add_hold_option, freed_pages_held  # noqa: E402
from run_order import rotated  # noqa: E402  (bench/ is not a package)


def one_run(mode: str, tree: str, megabytes: int) -> dict:
    work, home = tempfile.mkdtemp(prefix="autolog-ab-"), tempfile.mkdtemp(prefix="autolog-ab-home-")
    env = dict(os.environ, AUTOLOG_HOME=home, PYTHONPATH=tree)
    for var in ("AUTOLOG_STRICT", "AUTOLOG_DB_URL", "AUTOLOG_CONFIG"):
        env.pop(var, None)
    try:
        proc = subprocess.run([sys.executable, str(HERE / "workloads.py"), "save_calls",
                               json.dumps(dict(mode=mode, megabytes=megabytes, saves=3, workdir=work))],
                              env=env, capture_output=True, text=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} from {tree} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("trees", nargs="+", help="name=path of a source tree holding autolog/")
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--started", action="store_true",
                        help="the trees save once Task.init's background start is over (autolog-started)")
    add_hold_option(parser)
    args = parser.parse_args()
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
