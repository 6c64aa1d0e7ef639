"""How many full garbage collections `import torch` runs after a top-of-script Task.init(), and what
they cost, depending on how many objects the script made before (a list of N empty lists), against
the same script without autolog. Fresh interpreters, interleaved; medians.

    python bench/experiments/gc_phase.py --rounds 3

ARCHITECTURE.md ("Start-up and the garbage collector") reads it: autolog's objects alive at the
script's top move those collections, and by how much depends on everything else alive then.
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

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import gc, json, os, sys, time
start = time.perf_counter()
held = [[] for _ in range(int(sys.argv[3]))]
if sys.argv[1] == "autolog":
    from autolog import Task
    task = Task.init(project_name="bench", task_name="gc-phase", output_uri=os.path.join(sys.argv[2], "store"))
init = time.perf_counter()
full = gc.get_stats()[2]["collections"]
import torch
end = time.perf_counter()
print(json.dumps({"start": end - start, "torch": end - init, "full": gc.get_stats()[2]["collections"] - full}))
"""

HELD = (0, 5_000, 10_000, 20_000, 40_000)


def run(mode: str, held: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="autolog-gc-phase-") as work:
        env = dict(os.environ, AUTOLOG_HOME=os.path.join(work, "home"), PYTHONPATH=str(ROOT))
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed packages run: from cached bytecode
        # cwd: `python -c` puts the current folder first on sys.path, ahead of PYTHONPATH
        out = subprocess.run([sys.executable, "-c", SCRIPT, mode, work, str(held)], env=env, check=True,
                             capture_output=True, text=True, cwd=work).stdout
        return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs: dict[tuple[int, str], list[dict]] = {(held, mode): [] for held in HELD for mode in ("plain", "autolog")}
    for _ in range(args.rounds):
        for held, mode in runs:
            runs[(held, mode)].append(run(mode, held))
    for held in HELD:
        plain = statistics.median(r["start"] for r in runs[(held, "plain")])
        for mode in ("plain", "autolog"):
            rs = runs[(held, mode)]
            start = statistics.median(r["start"] for r in rs)
            print(f"{held:>6} objects before, {mode:>7}: start {start * 1000:6.1f} ms (+{(start - plain) * 1000:5.1f}), "
                  f"import torch {statistics.median(r['torch'] for r in rs) * 1000:6.1f} ms, "
                  f"full collections in it {sorted(set(r['full'] for r in rs))}")


if __name__ == "__main__":
    main()
