"""Point 3: a file modified in place (by a write autolog does not capture) while the stager reads it is
never stored as a mix of old and new bytes: the snapshot is `failed` with the reason, one warning."""
from __future__ import annotations

import logging

import pytest
import torch

from autolog import Task
from autolog.storage.sources import SourceChangedError
from pipeline_helpers import files_under, output_snapshots, tensor


@pytest.fixture
def modified_while_read(copier, work):
    """Every copy out of work/ckpt.pt first appends to that file: an in-place write mid-read."""
    ckpt = work / "ckpt.pt"

    def append(_call: int) -> None:
        with open(ckpt, "ab") as f:
            f.write(b"written in place by someone else")

    copier.before_copy = append
    return ckpt


def _store_root(uri: str) -> str:
    return uri.removeprefix("local://")


def test_in_place_change_fails_the_snapshot_with_one_warning_and_a_summary_at_close(any_store, staging_root, modified_while_read,
                                                            monkeypatch, caplog):
    from autolog import safety

    monkeypatch.delenv("AUTOLOG_STRICT")
    monkeypatch.setattr(safety, "_reported", set())  # warnings are once per kind and process
    caplog.set_level(logging.WARNING, logger="autolog")
    task = Task.init(project_name="pipeline", task_name="in place", output_uri=any_store)
    torch.save(tensor(1), modified_while_read)
    task.close()  # not strict: no exception

    (snap,) = output_snapshots(task, "ckpt.pt")
    assert snap.status == "failed"
    assert "changed while autolog was reading it" in snap.reason
    assert snap.uri is None
    assert files_under(_store_root(any_store)) == [], "bytes were stored for a snapshot that changed mid-read"
    assert files_under(staging_root) == []
    # One warning when it happens, and close() sums up what failed (naming the snapshot and why).
    warnings = [r.getMessage() for r in caplog.records if r.name == "autolog" and r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "changed while autolog was reading it" in warnings[0]
    assert "1 snapshot(s) failed: ckpt.pt #1" in warnings[1] and "changed while autolog was reading" in warnings[1]
    assert task.status == "completed"


def test_in_place_change_raises_at_close_when_strict(local_store, modified_while_read):
    task = Task.init(project_name="pipeline", task_name="in place strict", output_uri=local_store)
    torch.save(tensor(1), modified_while_read)
    with pytest.raises(SourceChangedError, match="changed while autolog was reading it"):
        task.close()

    (snap,) = output_snapshots(task, "ckpt.pt")
    assert snap.status == "failed"
    assert files_under(local_store) == []


def test_in_place_change_raises_at_flush_when_strict(local_store, modified_while_read):
    task = Task.init(project_name="pipeline", task_name="in place strict flush", output_uri=local_store)
    torch.save(tensor(1), modified_while_read)
    with pytest.raises(SourceChangedError):
        task.flush()
    assert task.flush() is True  # reported once, not again
    task.close()


def test_a_path_only_snapshot_changed_while_hashed_is_failed_not_recorded_with_that_digest(work, monkeypatch):
    """output_uri=None records the path and the digest: of a file written in place meanwhile, the
    digest (of bytes that were never saved) was recorded beside the saved size, and a later load of
    the changed file was linked to this snapshot. (A file over the inline limit: smaller ones are
    read on the training thread, and that read is checked.)"""
    from autolog.snapshots import identity, steps

    monkeypatch.setattr(steps, "read_inline", lambda job, limit: False)

    ckpt, real = work / "ckpt.pt", identity.fd_digest

    def appended_first(fd: int, *args) -> str:
        with open(ckpt, "ab") as f:
            f.write(b"written in place by someone else")
        return real(fd, *args)

    monkeypatch.setattr(identity, "fd_digest", appended_first)
    task = Task.init(project_name="pipeline", task_name="in place, path only", output_uri=None)
    torch.save(tensor(1), ckpt)
    with pytest.raises(SourceChangedError, match="its digest was not recorded"):
        task.close()

    (snap,) = output_snapshots(task, "ckpt.pt")
    assert snap.status == "failed"
    assert snap.digest is None
