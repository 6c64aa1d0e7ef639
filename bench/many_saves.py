"""Cost per captured save: N torch.save calls of one small file, plain and with autolog, side by side.

    python bench/many_saves.py                 # 10,000 saves, 3 rounds, medians
    python bench/many_saves.py --saves 2000 --rounds 5 --distinct
    python bench/many_saves.py --rounds 5 --hold-freed-pages 60000   # this VM's page reporting held back
    python bench/many_saves.py --rounds 5 --also before=/tmp/before  # autolog from another tree too

Each round runs plain, floor and autolog, each in a fresh interpreter. "total" is the loop plus
close() (autolog stores every snapshot before close returns). Target (issue: a run that cannot
wedge): autolog total <= 1.5x plain total. "floor" is what keeping every snapshot costs at the least,
as in run_bench.py's table: each plain save followed by a copy of the file into a new folder of its
own (os.mkdir + shutil.copyfile), synchronously, with no database and no hash.

Every round's folders are kept until all rounds are done: on ext4 without a journal, files created
within a minute or more of a mass deletion cost several times more (bench/experiments/inode_reuse.py),
and deleting one round's 10,000 snapshots before the next made that round's close() 5-15 s instead
of ~1 s. For the same reason, leave a few minutes between two runs of this bench on such a disk.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from freed_pages import add_hold_option, freed_pages_held  # noqa: E402  (bench/ is not a package)

WORKLOAD = r"""
import json, os, shutil, sys, time
import torch

mode, saves, distinct, work = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
state = {"w": torch.zeros(64)}
task = None
if mode == "autolog":
    from autolog import Task
    task = Task.init(project_name="bench", task_name="many-saves", output_uri=os.path.join(work, "store"))
start = time.perf_counter()
for i in range(saves):
    state["w"][0] = i
    path = os.path.join(work, f"m{i}.pt" if distinct else "m.pt")
    torch.save(state, path)
    if mode == "floor":
        folder = os.path.join(work, "store", str(i))
        os.makedirs(folder)
        shutil.copyfile(path, os.path.join(folder, "m.pt"))
loop = time.perf_counter() - start
if task is not None:
    task.close()
total = time.perf_counter() - start
stored = 0
if task is not None:
    stored = sum(1 for m in task.models["output"] for s in m.snapshots if s.status == "stored")
print(json.dumps({"loop": loop, "total": total, "stored": stored}))
"""


def run(mode: str, saves: int, distinct: bool, work: str, tree: str = str(HERE.parent)) -> dict:
    return run_workload(WORKLOAD, [mode, str(saves), "1" if distinct else "0", work], work, tree)


def run_workload(workload: str, argv: list[str], work: str, tree: str = str(HERE.parent)) -> dict:
    """workload (Python source) in a fresh interpreter importing autolog from `tree`, its AUTOLOG_HOME
    in the new folder work; the JSON of its last output line."""
    os.mkdir(work)
    env = dict(os.environ, AUTOLOG_HOME=os.path.join(work, "home"), PYTHONPATH=tree)
    env.pop("AUTOLOG_STRICT", None)
    # cwd: `python -c` puts the current folder first on sys.path, ahead of PYTHONPATH
    proc = subprocess.run([sys.executable, "-c", workload, *argv], env=env, capture_output=True, text=True,
                          timeout=3600, cwd=work)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--saves", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--distinct", action="store_true", help="a new path per save instead of one path")
    parser.add_argument("--also", action="append", default=[], metavar="NAME=TREE",
                        help="also run autolog from another source tree, in each round (an A/B)")
    add_hold_option(parser)
    args = parser.parse_args()
    trees = {"plain": str(HERE.parent), "floor": str(HERE.parent), "autolog": str(HERE.parent)}
    trees.update((f"autolog {name}", os.path.abspath(tree)) for name, tree in (a.split("=", 1) for a in args.also))
    rows: dict[str, list[dict]] = {mode: [] for mode in trees}
    with freed_pages_held(args.hold_freed_pages), tempfile.TemporaryDirectory(prefix="autolog-many-saves-") as work:
        for round_ in range(args.rounds):
            for n, mode in enumerate(trees):
                rows[mode].append(run(mode.split()[0], args.saves, args.distinct, os.path.join(work, f"{n}-{round_}"),
                                      trees[mode]))
    plain = statistics.median(r["total"] for r in rows["plain"])
    floor = statistics.median(r["total"] for r in rows["floor"])
    auto = statistics.median(r["total"] for r in rows["autolog"])
    loop = statistics.median(r["loop"] for r in rows["autolog"])
    stored = min(r["stored"] for r in rows["autolog"])
    paths = "distinct paths" if args.distinct else "one path"
    print(f"{args.saves} saves of a small file ({paths}), median of {args.rounds}: plain {plain:.2f} s, "
          f"autolog {auto:.2f} s to close ({loop:.2f} s in the loop) = {auto / plain:.2f}x plain; "
          f"{(auto - plain) / args.saves * 1e3:.3f} ms per save; snapshots stored: {stored}/{args.saves}")
    print(f"floor (each save copied into a folder of its own, synchronously) {floor:.2f} s = {floor / plain:.2f}x plain; "
          f"autolog = {auto / floor:.2f}x the floor")
    for mode in list(trees)[3:]:
        other = statistics.median(r["total"] for r in rows[mode])
        print(f"{mode}: {other:.2f} s to close = {other / plain:.2f}x plain")
    for mode, runs in rows.items():
        print(f"  {mode} rounds, total (loop): " + ", ".join(f"{r['total']:.2f} ({r['loop']:.2f})" for r in runs))


if __name__ == "__main__":
    main()
