"""Where bench/many_saves.py's time goes: N torch.save calls of one small file with autolog, timing
each snapshot's file creation in the recorder (BlobStore.put_bytes, and the mkdir of its folder)
while the saving loop runs and after it (close()), in one fresh interpreter per round.

    python bench/experiments/recorder_file_costs.py --saves 10000 --rounds 3

The README's 10,000-saves row reads it: small snapshots are read on the training thread and
published by the recorder, one new folder and one new file each.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WORKLOAD = r"""
import json, os, statistics, sys, time
import torch
from autolog import Task
from autolog.storage import blobstore

saves, work = int(sys.argv[1]), sys.argv[2]
phase = "loop"
timings = {"loop": {"put_bytes": [], "mkdir": []}, "close": {"put_bytes": [], "mkdir": []}}


def timed(name, call):
    def run(*args, **kwargs):
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            timings[phase][name].append(time.perf_counter() - started)
    return run


blobstore.BlobStore.put_bytes = timed("put_bytes", blobstore.BlobStore.put_bytes)
blobstore._make_folder = timed("mkdir", blobstore._make_folder)
state = {"w": torch.zeros(64)}
task = Task.init(project_name="bench", task_name="recorder-file-costs", output_uri=os.path.join(work, "store"))
started = time.perf_counter()
for i in range(saves):
    state["w"][0] = i
    torch.save(state, os.path.join(work, "m.pt"))
loop = time.perf_counter() - started
phase = "close"
task.close()
close = time.perf_counter() - started - loop
result = {"loop_s": loop, "close_s": close}
for ph, calls in timings.items():
    for name, seconds in calls.items():
        result[f"{ph}_{name}_count"] = len(seconds)
        result[f"{ph}_{name}_median_us"] = statistics.median(seconds) * 1e6 if seconds else None
print(json.dumps(result))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--saves", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for round_number in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="autolog-recorder-costs-") as work:
            env = dict(os.environ, AUTOLOG_HOME=os.path.join(work, "home"), PYTHONPATH=str(ROOT))
            env.pop("AUTOLOG_STRICT", None)
            proc = subprocess.run([sys.executable, "-c", WORKLOAD, str(args.saves), work], env=env,
                                  capture_output=True, text=True, timeout=3600)
            if proc.returncode != 0:
                raise SystemExit(proc.stderr[-3000:])
            r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"round {round_number}: loop {r['loop_s']:.2f} s, close {r['close_s']:.2f} s; recorder file creation "
              f"while saving: {r['loop_put_bytes_count']} snapshots, put_bytes median {r['loop_put_bytes_median_us'] or 0:.0f} us, "
              f"mkdir {r['loop_mkdir_median_us'] or 0:.0f} us; during close(): {r['close_put_bytes_count']} snapshots, "
              f"put_bytes median {r['close_put_bytes_median_us'] or 0:.0f} us, mkdir {r['close_mkdir_median_us'] or 0:.0f} us")


if __name__ == "__main__":
    main()
