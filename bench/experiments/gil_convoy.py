"""How a training thread busy in Python slows the stager's copy and the hasher's hash, by step size.

Each copy or hash step is one call that releases the GIL (copy_file_range, a read, a BLAKE3 update);
to start the next step the worker must take the GIL back. While another thread runs Python (a
training loop's own Python, an import), CPython hands the GIL over only when that thread has held it
for the switch interval (5 ms): every step then waits up to 5 ms, however fast the step itself is.
This times a copy (objects.kernel_copy) and a hash (hashing.file_digest) of one file alone and beside
a thread that runs Python without pause, for several step sizes, and how far that thread got.

    python bench/experiments/gil_convoy.py [--megabytes 200,1024] [--repeat 5] [--dir DIR] [--child-hash]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from autolog.storage import hashing, objects  # noqa: E402

MIB = 1 << 20


class Busy:
    """A thread running Python without pause (a training loop's glue) until stopped; counts its loops."""

    def __init__(self) -> None:
        self.loops = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for _ in range(1000):
                pass
            self.loops += 1

    def __enter__(self) -> "Busy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def timed_copy(src: str, dst: str, size: int) -> float:
    s, d = os.open(src, os.O_RDONLY), os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        start = time.perf_counter()
        objects.kernel_copy(s, d, size)
        return time.perf_counter() - start
    finally:
        os.close(s)
        os.close(d)
        os.remove(dst)


def timed_hash(src: str) -> float:
    start = time.perf_counter()
    hashing.file_digest(src)
    return time.perf_counter() - start


CHILD_HASH = """
import sys
from blake3 import blake3
hasher, buffer = blake3(), bytearray(8 << 20)
with open(sys.argv[1], "rb", buffering=0) as f:
    while size := f.readinto(buffer):
        hasher.update(memoryview(buffer)[:size])
print(hasher.hexdigest())
"""


def timed_child_hash(src: str) -> float:
    """The same hash in a child process of its own (started for it): the worker thread only waits."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", CHILD_HASH, src], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", default="200,1024")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where the files go (default: the temp folder)")
    parser.add_argument("--copy-steps", default="8,64", help="MiB per copy call")
    parser.add_argument("--hash-steps", default="8,32", help="MiB per hash read")
    parser.add_argument("--child-hash", action="store_true",
                        help="also hash in a child process started for each hash (8 MiB reads)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="autolog-convoy-", dir=args.dir)
    print(f"switch interval {sys.getswitchinterval() * 1e3:.0f} ms; medians of {args.repeat}; "
          "busy loops/s: how fast the Python thread ran beside the step")
    try:
        for megabytes in (int(m) for m in args.megabytes.split(",")):
            size = megabytes * MIB
            src = os.path.join(work, "src.bin")
            with open(src, "wb") as f:
                for _ in range(megabytes):
                    f.write(os.urandom(MIB))
            cases = [("copy", step, lambda: timed_copy(src, os.path.join(work, "dst.bin"), size))
                     for step in map(int, args.copy_steps.split(","))]
            cases += [("hash", step, lambda: timed_hash(src)) for step in map(int, args.hash_steps.split(","))]
            if args.child_hash:
                cases.append(("hash in a child process,", 8, lambda: timed_child_hash(src)))
            for what, step, run in cases:
                objects._COPY_STEP = hashing.HASH_STEP = step * MIB
                alone, beside, loops = [], [], []
                for _ in range(args.repeat):
                    alone.append(run())
                    with Busy() as busy:
                        time.sleep(0.05)  # the busy thread holds the GIL as a training loop does
                        before, start = busy.loops, time.perf_counter()
                        beside.append(run())
                        loops.append((busy.loops - before) / (time.perf_counter() - start))
                print(f"{megabytes:5d} MB {what} {step:3d} MiB steps: alone {statistics.median(alone) * 1e3:6.0f} ms, "
                      f"beside busy Python {statistics.median(beside) * 1e3:6.0f} ms "
                      f"(busy loops/s {statistics.median(loops):,.0f})")
            os.remove(src)
    finally:
        for name in os.listdir(work):
            os.remove(os.path.join(work, name))
        os.rmdir(work)


if __name__ == "__main__":
    main()
