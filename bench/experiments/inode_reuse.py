"""Why bench/many_saves.py's close() took 0.7 s in some runs and 5-15 s in others on the 2-core VM:
creating files right after many were deleted, on ext4 without a journal.

    python bench/experiments/inode_reuse.py --pairs 10000

Creates N (folder + file) pairs, the way the recorder publishes N small snapshots, in a fresh
folder; deletes them all; creates N more at once. On ext4 with no journal (this VM's root: no
/proc/fs/jbd2 entry for it), the inode allocator skips every inode deleted in the last 60 s (360 s
while its inode table block is dirty): `recently_deleted()` in fs/ext4/ialloc.c, one buffer lookup
per skipped inode, which `perf record -g` showed as 58% of a slow close(). Each allocation then
scans past the inodes just freed, and the second round costs far more than the first. A journaled
ext4, XFS or tmpfs shows no difference. The many-saves bench deleted the previous round's folders
(10,000 snapshot folders and files) just before the next round: that, not autolog, was the slow close.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time


def create(root: str, pairs: int) -> float:
    started = time.perf_counter()
    for i in range(pairs):
        folder = os.path.join(root, f"s{i}")
        os.mkdir(folder)
        fd = os.open(os.path.join(folder, "m.pt"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.write(fd, b"x" * 1500)
        os.close(fd)
    return (time.perf_counter() - started) / pairs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--dir", default=None, help="where to create them (default: the temp folder)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="autolog-inode-reuse-", dir=args.dir)
    try:
        first, second = os.path.join(work, "first"), os.path.join(work, "second")
        os.mkdir(first)
        fresh = create(first, args.pairs)
        started = time.perf_counter()
        shutil.rmtree(first)
        removed = time.perf_counter() - started
        os.mkdir(second)
        again = create(second, args.pairs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    journals = sorted(os.listdir("/proc/fs/jbd2")) if os.path.isdir("/proc/fs/jbd2") else []
    print(f"{args.pairs} folder+file pairs in {work}: {fresh:.0f} us per pair in a fresh folder; all removed in "
          f"{removed:.2f} s; then {again:.0f} us per pair ({again / fresh:.1f}x). Devices with an ext4 journal: "
          f"{', '.join(journals) or 'none'}")


if __name__ == "__main__":
    main()
