"""What close() waits for while other busy processes share the cores: 3 saves of one path once
autolog's start is over (workloads.py's "autolog-started"), with N processes busy-looping beside the
run, from one or more source trees. They are started from this process, so they share its session and
scheduling group, as a job's own busy DataLoader workers or a second job in the same container do:
the stager and the hasher at a lower priority ([pipeline] worker_nice, snapshots/cpu_priority.py) then
get only the share their nice value leaves them. What they left undone, close() waits for; since
cpu_priority.Hurry, done at close()'s priority.

    python bench/experiments/busy_neighbours.py --busy 2 --megabytes 200 --repeat 5 now=. [before=/tmp/before]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from fresh_run import run_workload  # noqa: E402  (bench/ is not a package)


@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """count processes busy-looping while the block runs, started from this one (its session)."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for process in busy:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("trees", nargs="+", help="name=path of a source tree holding autolog/")
    parser.add_argument("--busy", type=int, default=2, help="processes busy-looping beside each run")
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    trees = dict(t.split("=", 1) for t in args.trees)
    results: dict[str, list[dict]] = {name: [] for name in trees}
    with busy_processes(args.busy):
        for _ in range(args.repeat):
            for name, tree in trees.items():
                work = tempfile.mkdtemp(prefix="autolog-busy-")
                try:
                    result = run_workload("save_calls", {"mode": "autolog-started", "megabytes": args.megabytes,
                                                         "saves": 3, "workdir": work}, os.path.abspath(tree),
                                          os.path.join(work, "home"))
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                results[name].append(result)
                print(f"{name}: close() {result['closed'] * 1e3:.0f} ms, persisted {result['persisted']:.2f} s", flush=True)
    print(f"\n{args.megabytes} MB x3 once started, {args.busy} busy processes beside, medians of {args.repeat}:")
    for name, rs in results.items():
        print(f"{name:>10}: close() {statistics.median(r['closed'] for r in rs) * 1e3:.0f} ms, "
              f"persisted {statistics.median(r['persisted'] for r in rs):.2f} s")


if __name__ == "__main__":
    main()
