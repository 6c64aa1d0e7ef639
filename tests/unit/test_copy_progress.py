"""storage.copy_progress: a hash that reads a staged copy while another thread is still writing it.
Real files and real threads; the digests are recomputed here from the bytes (blake3), not taken from
the code under test."""
from __future__ import annotations

import os
import threading

import pytest
from blake3 import blake3

from autolog.storage import collect_sources, objects
from autolog.storage.copy_progress import CopyAbandoned, CopyProgress, digest_behind
from autolog.storage.sources import open_sources

WAIT = 30.0  # safety net for waits that must succeed; never a timing assertion


def bytes_digest(data: bytes) -> str:
    return f"blake3:{blake3(data).hexdigest()}"


class StepCopier:
    """Writes `data` to `path` one step at a time, each step only once `go` is released, and reports
    each step to `progress` (as the stager's copy does)."""

    def __init__(self, progress: CopyProgress, path, data: bytes, step: int, start: int = 0):
        self.progress, self.path, self.data, self.step, self.start = progress, path, data, step, start
        self.go = threading.Semaphore(0)
        self.failed = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def fail(self) -> None:
        """The copy ends here, failed: its thread ends without writing the rest. (Left waiting for a
        `go`, its assertion fired 30 s later, in whichever test this pytest worker ran by then.)"""
        self.failed = True
        self.progress.end(whole=False)
        self.go.release()
        self.thread.join(WAIT)

    def _run(self) -> None:
        with open(self.path, "wb", buffering=0) as out:
            for offset in range(0, len(self.data), self.step):
                assert self.go.acquire(timeout=WAIT)
                if self.failed:
                    return
                chunk = self.data[offset:offset + self.step]
                out.write(chunk)
                self.progress.advance(len(chunk))


class Hashing:
    """digest_behind on a thread of its own: its result or its exception."""

    def __init__(self, *args, **kwargs):
        self.result: str | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=args, kwargs=kwargs, daemon=True)
        self.thread.start()

    def _run(self, *args, **kwargs) -> None:
        try:
            self.result = digest_behind(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            self.error = exc

    def join(self) -> "Hashing":
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the hash behind the copy never ended"
        return self


def test_the_hash_follows_the_copy_step_by_step_and_is_the_digest_of_the_bytes_written(tmp_path):
    data = os.urandom(10 * 4096 + 123)
    progress, seen = CopyProgress(), []
    copier = StepCopier(progress, tmp_path / "staged.bin", data, step=4096)
    copier.thread.start()
    hashing = Hashing(progress, str(tmp_path / "staged.bin"), 0, len(data), on_progress=seen.append)
    copier.go.release()  # one step only: the hash must read it before the next is written
    for step in range(1, 11):
        assert _wait_for(lambda: sum(seen) >= step * 4096), f"the hash did not read step {step} before the next"
        assert sum(seen) == step * 4096, seen  # never past what was copied
        copier.go.release()
    copier.thread.join(WAIT)  # the last, short step written
    progress.end(whole=True)
    assert hashing.join().error is None, hashing.error
    assert hashing.result == bytes_digest(data)
    assert sum(seen) == len(data)


def test_a_copy_that_fails_ends_the_wait_of_the_hash_behind_it(tmp_path):
    progress = CopyProgress()
    copier = StepCopier(progress, tmp_path / "staged.bin", os.urandom(8192), step=4096)
    copier.thread.start()
    hashing = Hashing(progress, str(tmp_path / "staged.bin"), 0, 8192)
    copier.go.release()  # half copied, then the copy fails
    assert _wait_for(lambda: progress.wait_copied(1) == 4096)
    copier.fail()
    assert isinstance(hashing.join().error, CopyAbandoned), hashing.error
    with pytest.raises(CopyAbandoned):
        progress.wait_whole()


def test_a_hash_waiting_for_a_file_whose_copy_has_not_begun_ends_when_the_copy_fails(tmp_path):
    progress = CopyProgress()
    hashing = Hashing(progress, str(tmp_path / "never-written.bin"), 0, 100)
    progress.end(whole=False)
    assert isinstance(hashing.join().error, CopyAbandoned), hashing.error


def test_only_the_first_end_counts_and_failure_wins_over_bytes_already_copied():
    progress = CopyProgress()
    progress.advance(10)
    progress.end(whole=False)
    progress.end(whole=True)  # a cleanup calling it again changes nothing
    with pytest.raises(CopyAbandoned):
        progress.wait_copied(5)  # the bytes are there, but the copy they belong to failed
    whole = CopyProgress()
    whole.advance(10)
    whole.end(whole=True)
    whole.end(whole=False)
    whole.wait_whole()
    assert whole.wait_copied(10) == 10


def test_a_whole_copy_shorter_than_the_hash_expects_is_an_error_not_a_wait(tmp_path):
    progress = CopyProgress()
    (tmp_path / "staged.bin").write_bytes(b"x" * 10)
    progress.advance(10)
    progress.end(whole=True)
    with pytest.raises(RuntimeError, match="the copy ended after 10 bytes; the hash needs 11"):
        digest_behind(progress, str(tmp_path / "staged.bin"), 0, 20)


def test_a_staged_file_shorter_than_its_copied_bytes_is_an_error(tmp_path):
    progress = CopyProgress()
    (tmp_path / "staged.bin").write_bytes(b"x" * 10)  # the copy said 20 were written
    progress.advance(20)
    with pytest.raises(RuntimeError, match="ends at 10 bytes although 20 were copied"):
        digest_behind(progress, str(tmp_path / "staged.bin"), 0, 20)


def test_an_empty_file_needs_no_copied_byte(tmp_path):
    progress = CopyProgress()
    assert digest_behind(progress, str(tmp_path / "not-needed.bin"), 0, 0) == bytes_digest(b"")


def test_a_folder_hashed_behind_its_copy_has_the_content_of_one_hashed_after_it(tmp_path):
    """Several files, one empty, copied in order by copy_out while hash_copies(behind=) reads them."""
    folder = tmp_path / "saved_model"
    files = {"a.bin": os.urandom(50_000), "empty.txt": b"", "sub/b.bin": os.urandom(70_001)}
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    sources = collect_sources(folder)
    after = objects.stage(open_sources(sources), str(tmp_path / "after"))

    opened = open_sources(sources)
    stats = [st for _, st in opened.handles]
    progress, result = CopyProgress(), {}
    targets = objects.staged_targets(sources, stats, str(tmp_path / "behind"))
    hashing = threading.Thread(target=lambda: result.update(
        content=objects.hash_copies(sources, targets, behind=progress)), daemon=True)
    hashing.start()
    try:
        assert objects.copy_out(opened, str(tmp_path / "behind"), on_progress=progress.advance) == targets
    finally:
        opened.close()
    progress.end(whole=True)
    hashing.join(WAIT)
    assert result["content"] == after
    assert {e["name"]: e["digest"] for e in result["content"].manifest} == {
        name: bytes_digest(data) for name, data in files.items()}


def _wait_for(condition, timeout: float = WAIT) -> bool:
    done = threading.Event()
    deadline = threading.Timer(timeout, done.set)
    deadline.start()
    try:
        while not done.is_set():
            if condition():
                return True
            done.wait(0.001)
        return False
    finally:
        deadline.cancel()
