"""CopyProgress: how far the copy of a snapshot into its staging folder has got, so that its hash can
read the staged copy behind the copy instead of after it.

For a large snapshot the copy and the hash take about as long each, and close() waits for both after
the last save. Hashing the staged copy step by step as the copy writes it took 20-23% off the two
from 200 MB up on the project's VM (`bench/experiments/copy_hash_overlap.py`, "hash behind the
copy"). The digest is still of the bytes written to the staged copy, which nobody else writes (not
of the user's file, which a later write could change under the hash). A copy that fails, or finds
its source changed, ends the wait with CopyAbandoned: whoever copied settles the snapshot.
"""
from __future__ import annotations

import os
import threading
from typing import Callable, Generator

from .handoff import Handoff, drive
from .hashing import HASH_STEP, IDENTITY, new_hasher


class CopyAbandoned(Exception):
    """The copy being hashed ended without every byte copied and checked: the hash is moot."""


class CopyProgress:
    """Bytes copied so far of a snapshot's files, counted in the order they are copied. Its waits have
    no timeout: whoever copies calls end() however the copy ends (the pipeline's stager does so in
    its worker's cleanup), so they last as long as the copy."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._copied = 0
        self._whole: bool | None = None  # None while copying; then whether every byte was copied and checked
        self._followed = False  # a hash has started reading behind the copy

    def follow(self) -> None:
        """A hash starts reading behind the copy."""
        self._followed = True

    def followed(self) -> bool:
        """Whether a hash reads behind the copy (the copy then goes in the hash's steps)."""
        return self._followed

    def advance(self, count: int) -> None:
        with self._cond:
            self._copied += count
            self._cond.notify_all()

    def end(self, whole: bool) -> None:
        """The copy is over (only the first call counts, so a cleanup may call it again)."""
        with self._cond:
            if self._whole is None:
                self._whole = whole
                self._cond.notify_all()

    def wait_copied(self, count: int) -> int:
        """Bytes copied, once at least `count` are; CopyAbandoned as soon as the copy has failed."""
        with self._cond:
            self._cond.wait_for(lambda: self._copied >= count or self._whole is not None)
            if self._whole is False:
                raise CopyAbandoned("the copy being hashed failed")
            if self._copied < count:
                raise RuntimeError(f"the copy ended after {self._copied} bytes; the hash needs {count}")
            return self._copied

    def wait_whole(self) -> None:
        """Until the copy is over; CopyAbandoned unless every byte was copied and checked."""
        with self._cond:
            self._cond.wait_for(lambda: self._whole is not None)
            if not self._whole:
                raise CopyAbandoned("the copy being hashed failed")


def digest_behind(progress: CopyProgress, path: str, start: int, size: int, algorithm: str = IDENTITY,
                  on_progress: Callable[[int], None] | None = None, handoff: Handoff | None = None) -> str:
    """Digest of the staged file `path` (size bytes, the copy's bytes start..start+size), read as the
    copy writes it. handoff: who may finish the hash (handoff.py)."""
    return drive(_digest_behind_steps(progress, path, start, size, algorithm, on_progress), handoff)


def _digest_behind_steps(progress: CopyProgress, path: str, start: int, size: int, algorithm: str,
                         on_progress: Callable[[int], None] | None) -> Generator[None, None, str]:
    hasher = new_hasher(algorithm)
    progress.follow()
    if size:
        progress.wait_copied(start + 1)  # its copy has begun: the file exists
        with open(path, "rb", buffering=0) as staged:
            buffer = bytearray(min(HASH_STEP, size))
            view = memoryview(buffer)
            done = 0
            while done < size:
                ready = min(progress.wait_copied(start + done + 1) - start, size)
                while done < ready:
                    read = os.preadv(staged.fileno(), [view[:min(HASH_STEP, ready - done)]], done)
                    if read == 0:
                        raise RuntimeError(f"{path} ends at {done} bytes although {ready} were copied")
                    hasher.update(view[:read])
                    done += read
                    if on_progress is not None:
                        on_progress(read)
                    yield
    return f"{algorithm}:{hasher.hexdigest()}"
