"""How fast this machine writes a save, depending on what becomes of the file it replaces: the noise
floor under `run_bench.py`'s save ratios.

    python bench/page_cache_growth.py                  # 10 and 200 MB, 5 rounds
    python bench/page_cache_growth.py --sizes 10 --rounds 9
    python bench/page_cache_growth.py --write-split     # one os.write, new pages against freed ones

A plain save of one path, back to back, truncates the old file: its page-cache pages are freed and the
write takes pages again. A back-to-back save whose previous snapshot is still being read cannot free
them (autolog sets the old file aside; a synchronous copy would have to finish first), so the page
cache grows by one file per save, as it does when each save writes a new path. On this project's VM
the two differ by more than autolog's own costs, and not always in the same direction (dirty-page
writeback, memory the VM hands back to its host: the run prints how much, where the kernel says). Each
pattern runs in a fresh interpreter, interleaved, medians of the rounds.

Patterns, each `--saves` torch.save calls of one state dict:
    same path     one path, truncated by each save (what a plain training loop does)
    new path      a new file each save, the old ones kept (the cache grows by one file per save)
    set aside     one path, the old file renamed away before each save (autolog's back-to-back save)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

REPORTED = "/sys/module/page_reporting/parameters/reported_kib"
PATTERNS = ("same path", "new path", "set aside")


def one_run(pattern: str, megabytes: int, saves: int) -> list[float]:
    import time

    import torch

    sd = {"weight": torch.zeros(megabytes * (1 << 20) // 4)}
    times = []
    with tempfile.TemporaryDirectory(prefix="autolog-pages-") as work:
        path = os.path.join(work, "model.pt")
        for i in range(saves):
            sd["weight"][0] = i + 1
            target = os.path.join(work, f"model.{i}.pt") if pattern == "new path" else path
            if pattern == "set aside" and os.path.exists(path):
                os.rename(path, os.path.join(work, f"aside.{i}.pt"))
            t0 = time.perf_counter()
            torch.save(sd, target)
            times.append(time.perf_counter() - t0)
    return times


def write_split(megabytes: int, rounds: int) -> None:
    """open / write / close of one os.write of `megabytes`, each timed apart: into a new file, then into
    that file truncated by the open (the write takes the pages the truncation just freed)."""
    import time

    data = bytes(megabytes << 20)
    print(f"{megabytes} MB, one os.write each (open / write / close, ms):")
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="autolog-pages-") as work:
            cells = []
            for name, label in (("a", "new file"), ("b", "new file"), ("a", "truncated")):
                t0 = time.perf_counter()
                fd = os.open(os.path.join(work, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                t1 = time.perf_counter()
                os.write(fd, data)
                t2 = time.perf_counter()
                os.close(fd)
                t3 = time.perf_counter()
                cells.append(f"{label} {(t1 - t0) * 1000:.1f} / {(t2 - t1) * 1000:.1f} / {(t3 - t2) * 1000:.1f}")
            print("  " + " | ".join(cells))


def reported_kib() -> int | None:
    try:
        with open(REPORTED) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,200", help="state dict sizes in MB, comma-separated")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--saves", type=int, default=10)
    parser.add_argument("--write-split", action="store_true", help=write_split.__doc__.split(":")[0])
    args = parser.parse_args()
    if args.write_split:
        for mb in (int(s) for s in args.sizes.split(",")):
            write_split(mb, args.rounds)
        return
    before = reported_kib()
    print("| state dict | pattern | median save (after the first) | MB/s | vs same path |")
    print("|---|---|---|---|---|")
    for mb in (int(s) for s in args.sizes.split(",")):
        medians: dict[str, list[float]] = {p: [] for p in PATTERNS}
        for _ in range(args.rounds):
            for pattern in PATTERNS:  # interleaved: drift hits every pattern alike
                out = subprocess.run([sys.executable, __file__, "--one", json.dumps([pattern, mb, args.saves])],
                                     check=True, capture_output=True, text=True).stdout
                medians[pattern].append(statistics.median(json.loads(out)[1:]))
        same = statistics.median(medians["same path"])
        for pattern in PATTERNS:
            m = statistics.median(medians[pattern])
            print(f"| {mb} MB | {pattern} | {m * 1000:.1f} ms | {mb / m:.0f} | {m / same:.2f}× |")
    after = reported_kib()
    if before is not None and after is not None:
        print(f"\nMemory this VM reported free to its host during the run: {(after - before) / 1024:.0f} MB")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(one_run(*json.loads(sys.argv[2]))))
    else:
        main()
