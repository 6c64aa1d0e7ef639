"""What hashing a snapshot beside its copy would save: the stager copies a saved file (kernel copy),
then the hasher reads the copy (today, one after the other: what close() waits for after the last
save); or the hasher reads the source while the stager copies it (both from the page cache); or one
thread reads the source into a buffer, hashes the buffer and writes it (one pass, the digest still of
the bytes written, but no kernel copy); or the hasher reads the copy itself, following the copier
step by step.

    python bench/experiments/copy_hash_overlap.py --megabytes 10 200 --repeat 9

Each repetition writes a new file of that size (as a save does), then times both ways on it, in
alternating order; medians. Uses autolog's own kernel_copy and BLAKE3 reads.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time

from autolog.storage.copy_progress import CopyProgress, digest_behind
from autolog.storage.hashing import HASH_STEP, fd_digest, file_digest, new_hasher
from autolog.storage.objects import kernel_copy


def copy(src: str, dst: str) -> None:
    fd = os.open(src, os.O_RDONLY)
    try:
        with open(dst, "wb") as out:
            kernel_copy(fd, out.fileno(), os.fstat(fd).st_size)
    finally:
        os.close(fd)


def one_after_the_other(src: str, dst: str) -> float:
    started = time.perf_counter()
    copy(src, dst)
    file_digest(dst)
    return time.perf_counter() - started


def side_by_side(src: str, dst: str) -> float:
    started = time.perf_counter()
    fd = os.open(src, os.O_RDONLY)
    try:
        hasher = threading.Thread(target=fd_digest, args=(fd,))
        hasher.start()
        copy(src, dst)
        hasher.join()
    finally:
        os.close(fd)
    return time.perf_counter() - started


def behind_the_copy(src: str, dst: str) -> float:
    """The hasher reads the copy itself, following the copier step by step (autolog's own
    CopyProgress and digest_behind, as the pipeline runs them while close() waits); checked against
    a digest of the source."""
    started = time.perf_counter()
    progress, digest = CopyProgress(), []
    size = os.path.getsize(src)
    hasher = threading.Thread(target=lambda: digest.append(digest_behind(progress, dst, 0, size)))
    fd = os.open(src, os.O_RDONLY)
    try:
        with open(dst, "wb") as out:
            hasher.start()
            kernel_copy(fd, out.fileno(), size, progress.advance)
        progress.end(whole=True)
        hasher.join()
    finally:
        progress.end(whole=False)  # a copy that raised: the hasher stops waiting
        os.close(fd)
    elapsed = time.perf_counter() - started
    if digest != [file_digest(src)]:
        raise AssertionError("the digest behind the copy differs from the source's")
    return elapsed


def one_pass(src: str, dst: str) -> float:
    started = time.perf_counter()
    fd = os.open(src, os.O_RDONLY)
    try:
        buffer = bytearray(min(HASH_STEP, os.fstat(fd).st_size + 1))
        view, hasher = memoryview(buffer), new_hasher()
        with open(dst, "wb", buffering=0) as out:
            while size := os.readv(fd, [buffer]):
                hasher.update(view[:size])
                written = 0
                while written < size:
                    written += out.write(view[written:size])
    finally:
        os.close(fd)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=int, nargs="+", default=[10, 200])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="autolog-copy-hash-", dir=args.dir)
    try:
        for megabytes in args.megabytes:
            data = os.urandom(1 << 20) * megabytes
            ways = [("one after the other", one_after_the_other), ("side by side", side_by_side),
                    ("one pass", one_pass), ("hash behind the copy", behind_the_copy)]
            times: dict[str, list[float]] = {name: [] for name, _ in ways}
            for i in range(args.repeat):
                src = os.path.join(work, f"saved-{megabytes}-{i}.pt")
                with open(src, "wb") as f:
                    f.write(data)
                for name, way in ways[i % len(ways):] + ways[:i % len(ways)]:  # each way first in turn
                    times[name].append(way(src, os.path.join(work, f"staged-{megabytes}-{i}-{len(times[name])}.pt")))
            print(f"{megabytes} MB, medians of {args.repeat}: " + ", ".join(
                f"{name} {statistics.median(t) * 1e3:.1f} ms" for name, t in times.items()))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
