"""The threads that copy and hash a snapshot's bytes give the CPU to the training first
(snapshots/cpu_priority.py): in a real task saving a real checkpoint, the stager and the hasher run at
[pipeline] worker_nice (10 by default) while the task's other threads and the training thread keep the
process's priority; worker_nice = 0 keeps the process's for them too. The snapshot is stored either way.
Once close() waits, the rest of the copy and the hash go on at its priority (cpu_priority.Hurry)."""
from __future__ import annotations

import os
import sys
import threading

import pytest
import torch

from autolog import Task
from autolog.storage import hashing, objects
from pipeline_helpers import assert_stored_tensor, output_snapshots, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a per-thread nice value is Linux's")

BYTE_WORKERS = ("autolog-stager", "autolog-hasher")
OTHER_WORKERS = ("autolog-recorder", "autolog-lineage", "autolog-coalescer")
BASE = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())  # pytest may itself run under nice


def priorities() -> dict[str, int]:
    return {t.name: os.getpriority(os.PRIO_PROCESS, t.native_id) for t in threading.enumerate()
            if t.name.startswith(BYTE_WORKERS + OTHER_WORKERS)}


def save_and_read_priorities(store: str, work, name: str) -> tuple[Task, dict[str, int], torch.Tensor]:
    weights = torch.arange(200_000, dtype=torch.float32)  # 800 KB: copied by the stager, not read inline
    task = Task.init(project_name="pipeline", task_name=name, output_uri=store)
    torch.save(weights, work / "ckpt.pt")
    assert task.flush(), "the snapshot was not stored"
    seen = priorities()  # before close(): the workers end with their task
    return task, seen, weights


def test_the_stager_and_the_hasher_run_at_a_lower_priority_than_the_training(local_store, work):
    if BASE >= 10:
        pytest.skip(f"this process already runs at nice {BASE}")
    task, seen, weights = save_and_read_priorities(local_store, work, "priority")
    task.close()
    assert set(seen) == set(BYTE_WORKERS + OTHER_WORKERS), seen
    assert {name: seen[name] for name in BYTE_WORKERS} == {name: 10 for name in BYTE_WORKERS}
    assert {name: seen[name] for name in OTHER_WORKERS} == {name: BASE for name in OTHER_WORKERS}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == BASE
    [snap] = output_snapshots(task, "ckpt.pt")
    assert_stored_tensor(snap, weights)


def test_worker_nice_0_keeps_the_processs_priority(local_store, work, config):
    config(pipeline={"worker_nice": 0})
    task, seen, weights = save_and_read_priorities(local_store, work, "process priority")
    task.close()
    assert set(seen) == set(BYTE_WORKERS + OTHER_WORKERS) and set(seen.values()) == {BASE}, seen
    [snap] = output_snapshots(task, "ckpt.pt")
    assert_stored_tensor(snap, weights)


def where() -> tuple[str, int]:
    return threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_once_close_waits_the_rest_of_the_copy_and_the_hash_run_at_its_priority(local_store, work, monkeypatch):
    """The copy's first step holds until close() waits for the snapshot; every later copy step and the
    hash then run on a hurry thread at the process's priority, and the stored bytes are the saved ones."""
    if BASE >= 10:
        pytest.skip(f"this process already runs at nice {BASE}")
    weights = torch.arange(2_000_000, dtype=torch.float32)  # 8 MB: 8 copy steps of 1 MiB
    monkeypatch.setattr(objects, "_COPY_STEP", 1 << 20)
    task = Task.init(project_name="pipeline", task_name="hurried", output_uri=local_store)
    hurry = task._runtime.pipeline._hurry
    copies: list[tuple[str, int]] = []
    hashes: list[tuple[str, int]] = []
    copying = threading.Event()

    def noted(real_step):
        def step(src_fd: int, dst_fd: int, offset: int, count: int) -> int:
            copies.append(where())
            if len(copies) == 1:
                copying.set()
                wait_until(lambda: hurry._waiters > 0, "close() to wait for the snapshot")
            return real_step(src_fd, dst_fd, offset, count)
        return step

    class NotedHasher:
        def __init__(self, hasher):
            self.hasher = hasher

        def update(self, data) -> None:
            if threading.current_thread().name.startswith("autolog-"):
                hashes.append(where())
            self.hasher.update(data)

        def hexdigest(self) -> str:
            return self.hasher.hexdigest()

    monkeypatch.setattr(objects, "_copy_file_range", noted(objects._copy_file_range))
    monkeypatch.setattr(objects, "_sendfile", noted(objects._sendfile))
    real_hasher = hashing.new_hasher
    monkeypatch.setattr(hashing, "new_hasher", lambda *args: NotedHasher(real_hasher(*args)))
    torch.save(weights, work / "ckpt.pt")
    assert copying.wait(30), "the copy never started"
    task.close()

    assert copies[0] == ("autolog-stager", 10)
    assert len(copies) >= 8 and {(name.rsplit("-", 1)[0], nice) for name, nice in copies[1:]} == \
        {("autolog-hurry", BASE)}, copies
    assert hashes and {(name.rsplit("-", 1)[0], nice) for name, nice in hashes} == {("autolog-hurry", BASE)}, hashes
    [snap] = output_snapshots(task, "ckpt.pt")
    assert_stored_tensor(snap, weights)
