"""The stat cache (snapshots/identity.py) answers "which bytes are in this file" without reading it, so
its key must change whenever the bytes can have: a rewrite in place keeps the device, the inode and,
for a checkpoint of the same tensors, the size. mtime tells those rewrites apart; ctime still does when
the rewrite restores the old mtime (a copy with preserved times), because no one can set ctime.

Each test rewrites a file in place with other bytes of the same size (a captured save, or a plain write
between two tasks), with its mtime set explicitly, then loads it: the load must link the snapshot
holding the bytes now in the file, never the one the cache saw before."""
from __future__ import annotations

import os
import time

import pytest
import torch

from autolog import Task
from pipeline_helpers import WAIT, output_snapshots, tensor

T1 = 1_600_000_000 * 10**9 + 123_456_789  # distinct mtimes, set explicitly: a rewrite within one
T2 = T1 + 7 * 10**9                        # clock tick of a coarse filesystem keeps the old mtime


def _save_in_place(task: Task, path: os.PathLike, step: int) -> os.stat_result:
    """torch.save over the existing file (same inode, same size), stored before it returns."""
    before = os.stat(path) if os.path.exists(path) else None
    torch.save(tensor(step), path)
    assert task.flush(), "snapshot not stored"
    after = os.stat(path)
    if before is not None:
        assert (after.st_dev, after.st_ino, after.st_size) == (before.st_dev, before.st_ino, before.st_size), \
            "not a rewrite in place of the same size: the test would not exercise the stat cache"
    return after


def _set_mtime(path: os.PathLike, mtime_ns: int, ctime_after_ns: int | None = None) -> os.stat_result:
    """os.utime to mtime_ns; with ctime_after_ns, repeat it until the inode's change time (which utime
    sets to the kernel's coarse clock) has moved past that value. Polls the file, never sleeps."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        os.utime(path, ns=(mtime_ns, mtime_ns))
        st = os.stat(path)
        if ctime_after_ns is None or st.st_ctime_ns != ctime_after_ns:
            assert st.st_mtime_ns == mtime_ns
            return st
    raise AssertionError(f"ctime of {path} never moved past {ctime_after_ns} in {WAIT} s")


def _linked_snapshots(task: Task) -> list[str]:
    assert task.flush(), "lineage of the loads not recorded"
    return [load.snapshot_id for load in task._ctx.store.loads_by_task(task.id)]


def test_a_rewrite_in_place_of_the_same_size_is_a_new_load(local_store, work):
    ckpt = work / "ckpt.pt"
    task = Task.init(project_name="pipeline", task_name="stat key mtime", output_uri=local_store)
    _save_in_place(task, ckpt, 1)
    _set_mtime(ckpt, T1)
    assert torch.equal(torch.load(ckpt, weights_only=True), tensor(1))

    _save_in_place(task, ckpt, 2)  # seq 2: other bytes, same inode and size
    _set_mtime(ckpt, T2)
    assert torch.equal(torch.load(ckpt, weights_only=True), tensor(2))

    first, second = output_snapshots(task, "ckpt.pt")
    assert first.digest != second.digest
    assert _linked_snapshots(task) == [first.id, second.id], "the second load was taken for the first bytes"
    task.close()


def test_a_rewrite_in_place_that_restores_the_mtime_is_told_apart_by_ctime(local_store, work):
    ckpt = work / "ckpt.pt"
    task = Task.init(project_name="pipeline", task_name="stat key ctime", output_uri=local_store)
    _save_in_place(task, ckpt, 1)
    loaded_stat = _set_mtime(ckpt, T1)
    assert torch.equal(torch.load(ckpt, weights_only=True), tensor(1))

    _save_in_place(task, ckpt, 2)
    # The same mtime as the load above saw: only the inode's change time tells the rewrite apart.
    now = _set_mtime(ckpt, T1, ctime_after_ns=loaded_stat.st_ctime_ns)
    key = lambda st: (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)  # noqa: E731
    assert key(now) == key(loaded_stat) and now.st_ctime_ns != loaded_stat.st_ctime_ns
    assert torch.equal(torch.load(ckpt, weights_only=True), tensor(2))

    first, second = output_snapshots(task, "ckpt.pt")
    assert first.digest != second.digest
    assert _linked_snapshots(task) == [first.id, second.id], "a rewrite with a restored mtime went unseen"
    task.close()


@pytest.mark.parametrize("restore_mtime", [False, True], ids=["new-mtime", "restored-mtime"])
def test_a_later_task_hashes_a_file_rewritten_in_place_again(local_store, work, restore_mtime):
    """The cache outlives a task (it is per process and per host): a later task's first load of the
    rewritten file finds the old stat in it and must still not take the old bytes."""
    a, b = work / "a.pt", work / "b.pt"
    first = Task.init(project_name="pipeline", task_name="writes a and b", output_uri=local_store)
    _save_in_place(first, a, 1)
    _save_in_place(first, b, 2)
    loaded_stat = _set_mtime(a, T1)
    assert torch.equal(torch.load(a, weights_only=True), tensor(1))  # a's stat and digest now cached
    [a_snap], [b_snap] = output_snapshots(first, "a.pt"), output_snapshots(first, "b.pt")
    assert _linked_snapshots(first) == [a_snap.id]
    first.close()

    with open(a, "r+b") as f:  # b's bytes into a, in place, by no framework call: nothing captures it
        f.write(b.read_bytes())
    if restore_mtime:
        now = _set_mtime(a, T1, ctime_after_ns=loaded_stat.st_ctime_ns)
    else:
        now = _set_mtime(a, T2)
    assert (now.st_ino, now.st_size) == (loaded_stat.st_ino, loaded_stat.st_size)

    second = Task.init(project_name="pipeline", task_name="loads a", output_uri=local_store)
    assert torch.equal(torch.load(a, weights_only=True), tensor(2))
    assert _linked_snapshots(second) == [b_snap.id], "the load of a was taken for a's old bytes"
    second.close()
