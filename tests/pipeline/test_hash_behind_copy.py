"""While someone waits for stored snapshots (close, flush), a large snapshot is hashed behind its copy
(storage/copy_progress.py): the hasher reads the staged copy step by step while the stager is still
writing it; while the training thread is saving, it is hashed after its copy, as smaller ones are.
Here every snapshot is large enough (hash_behind_bytes=0) and the copy goes 4 KiB per step once a
hash follows it (16 KiB before), held at its first step until the hash has read it: a copy that
fails under the hash, and a hash that fails under the copy, settle the snapshot once, with the real
cause, and the next saves are stored."""
from __future__ import annotations

import dataclasses
import logging
import threading

import pytest
import torch

from autolog import Task
from autolog.snapshots.pipeline import SnapshotPipeline
from autolog.storage import objects
from pipeline_helpers import assert_stored_tensor, files_under, output_snapshots, tensor

STEP_WAIT = 10.0  # seconds: a hash that does not follow the copy never reads before the copy goes on
N = 50_000  # floats: ~200 KB saved, ~49 copy steps of 4 KiB once a hash follows the copy
FOLLOWED_STEP = 4096  # bytes per copy step while a hash reads behind it; 4x as many while none does


class HeldCopy:
    """The stager's kernel_copy, 4 KiB per step once a hash follows it (16 KiB before); after the first step of a copy it tells `at_first_step`,
    waits (bounded) until the hash behind it has read some bytes, runs `after_first`, then goes on.
    Records per copy whether the hash had read by then."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.hashed = threading.Event()  # the hash behind the copy read some bytes (cleared per copy)
        self.at_first_step = threading.Event()
        self.followed: list[bool] = []  # per copy: the hash read its first step before the second
        self.after_first = lambda: None
        self.copying = None  # the CopyProgress of the copy under way
        self.steps: list[list[int]] = []  # per copy, the bytes of each step
        real_copy, real_digest = objects.kernel_copy, objects.digest_behind

        def kernel_copy(src_fd: int, dst_fd: int, size: int, on_progress=None, followed=None, handoff=None) -> int:
            steps: list[int] = []
            self.steps.append(steps)

            def stepped(count: int) -> None:
                if on_progress is not None:
                    on_progress(count)
                steps.append(count)
                if len(steps) == 1 and size > count:
                    self.at_first_step.set()
                    self.followed.append(self.hashed.wait(STEP_WAIT))
                    self.after_first()

            # Only this copy's own hash counts: the hash of the copy before may still be reading.
            self.copying = getattr(followed, "__self__", None)
            self.hashed.clear()
            return real_copy(src_fd, dst_fd, size, stepped, followed, handoff)

        def digest_behind(progress, path, start, size, algorithm="blake3", on_progress=None, handoff=None) -> str:
            def read(count: int) -> None:
                if progress is self.copying:
                    self.hashed.set()
                if on_progress is not None:
                    on_progress(count)

            return real_digest(progress, path, start, size, algorithm, read, handoff)

        monkeypatch.setattr(objects, "_COPY_STEP", 4 * FOLLOWED_STEP)
        monkeypatch.setattr(objects, "_FOLLOWED_COPY_STEP", FOLLOWED_STEP)
        monkeypatch.setattr(objects, "kernel_copy", kernel_copy)
        monkeypatch.setattr(objects, "digest_behind", digest_behind)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> HeldCopy:
    from autolog.snapshots import steps

    monkeypatch.setattr(steps, "read_inline", lambda job, limit: False)
    return HeldCopy(monkeypatch)


def _start(store: str, name: str) -> Task:
    task = Task.init(project_name="pipeline", task_name=name, output_uri=store)
    pipeline = task._runtime.pipeline
    pipeline.options = dataclasses.replace(pipeline.options, hash_behind_bytes=0)
    return task


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "autolog" and r.levelno >= logging.WARNING]


def test_once_close_waits_the_hash_reads_the_copy_being_written_and_the_digest_is_of_the_stored_bytes(
        any_store, held, work):
    task = _start(any_store, "behind")
    torch.save(tensor(1, N), work / "ckpt.pt")
    assert held.at_first_step.wait(STEP_WAIT)
    pipeline = task._runtime.pipeline
    (job,) = [j for j in pipeline.pending() if j is pipeline._copying]
    assert not job.hash_queued and not held.hashed.is_set(), "hashed beside the copy while the training thread saves"
    torch.save(tensor(2, N), work / "ckpt.pt")  # back to back: the first file is set aside
    task.close()  # the copy under way goes to the hasher; the next one is hashed as it is copied

    assert held.followed == [True, True], "the hash waited for the whole copy instead of reading behind it"
    first, second = held.steps
    assert first[0] == 4 * FOLLOWED_STEP, "a copy nobody reads behind goes in large steps"
    for steps in (first, second):  # from its second step on, the hash follows each copy
        assert set(steps[1:-1]) == {FOLLOWED_STEP} and steps[-1] <= FOLLOWED_STEP, steps
    for snap, step in zip(output_snapshots(task, "ckpt.pt"), (1, 2), strict=True):
        assert_stored_tensor(snap, tensor(step, N))


def test_a_source_changed_under_the_copy_fails_that_snapshot_once_while_its_hash_waits(
        any_store, held, work, staging_root, lenient):
    ckpt = work / "ckpt.pt"
    appended = []

    def write_in_place() -> None:  # once, under the first copy: a write autolog does not capture
        if not appended:
            appended.append(True)
            with open(ckpt, "ab") as f:
                f.write(b"written in place by someone else")

    held.after_first = write_in_place
    task = _start(any_store, "changed under the copy")
    torch.save(tensor(1, N), ckpt)
    task.flush()
    torch.save(tensor(2, N), ckpt)
    task.close()

    assert held.followed[0], "the hash was not reading behind the copy when the copy failed"
    first, second = output_snapshots(task, "ckpt.pt")
    assert first.status == "failed" and "changed while autolog was reading it" in first.reason, first.reason
    assert_stored_tensor(second, tensor(2, N))
    warnings = _warnings(lenient)
    assert len(warnings) == 2, warnings  # the failure once as it happens, then close()'s summary
    assert "1 snapshot(s) failed: ckpt.pt #1" in warnings[1], warnings
    assert files_under(staging_root) == []


def test_a_hash_that_fails_under_the_copy_settles_the_snapshot_once_the_copy_is_over(
        any_store, held, work, staging_root, monkeypatch, lenient):
    from autolog.storage import copy_progress

    real_digest = objects.digest_behind  # held's: it tells the copy that the hash read
    copy_ended = []

    def failing_digest(progress, path, start, size, algorithm="blake3", on_progress=None, handoff=None) -> str:
        def read(count: int) -> None:
            if on_progress is not None:
                on_progress(count)
            if not copy_ended:
                raise OSError("injected: the staged copy could not be read")

        return real_digest(progress, path, start, size, algorithm, read, handoff)

    real_end = copy_progress.CopyProgress.end

    def end(self, whole: bool) -> None:
        copy_ended.append(whole)
        real_end(self, whole)

    monkeypatch.setattr(objects, "digest_behind", failing_digest)
    monkeypatch.setattr(copy_progress.CopyProgress, "end", end)
    settled_before_the_copy_ended = []
    real_fail = SnapshotPipeline._fail

    def fail(self, job, exc, keep_pending=False):
        settled_before_the_copy_ended.append(not copy_ended)
        return real_fail(self, job, exc, keep_pending)

    monkeypatch.setattr(SnapshotPipeline, "_fail", fail)  # before the pipeline's workers take it
    task = _start(any_store, "hash fails under the copy")
    torch.save(tensor(1, N), work / "ckpt.pt")
    task.flush()
    copy_ended.clear()  # the next snapshot's hash fails too, until its copy is over: then it is not failed
    copy_ended.append(True)
    torch.save(tensor(2, N), work / "ckpt.pt")
    task.close()

    assert held.followed[0], "the hash was not reading behind the copy when it failed"
    assert settled_before_the_copy_ended == [False], "the failed hash settled its snapshot while the copy went on"
    first, second = output_snapshots(task, "ckpt.pt")
    assert first.status == "failed", (first.status, first.reason)
    assert first.reason == "OSError: injected: the staged copy could not be read", first.reason
    assert_stored_tensor(second, tensor(2, N))
    warnings = _warnings(lenient)
    assert len(warnings) == 2 and "1 snapshot(s) failed: ckpt.pt #1" in warnings[1], warnings
    assert files_under(staging_root) == []
