"""The first save after Task.init costs the training thread no start-up: the snapshot workers are
started by Task.init's background thread (each Thread.start waits until its thread runs: eight of them
on the first save's path cost tens of milliseconds on a busy two-core machine)."""
from __future__ import annotations

import threading

import pytest
import torch

from autolog import Task
from pipeline_helpers import assert_stored_tensor, output_snapshots, tensor

@pytest.fixture
def thread_starts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(thread that called start, thread started) for every Thread.start from now on."""
    starts: list[tuple[str, str]] = []
    original = threading.Thread.start

    def recording_start(self: threading.Thread) -> None:
        starts.append((threading.current_thread().name, self.name))
        original(self)

    monkeypatch.setattr(threading.Thread, "start", recording_start)
    return starts


def test_the_first_save_starts_no_thread_on_the_training_thread(local_store, work, thread_starts):
    task = Task.init(project_name="pipeline", task_name="first save", output_uri=local_store)
    Task.get_task(task_id=task.id)  # the task's row exists: the init thread got past starting the workers
    before = len(thread_starts)
    torch.save(tensor(1), work / "ckpt.pt")
    by_the_save = thread_starts[before:]
    task.close()

    assert not by_the_save, f"the first save started threads on the training thread: {by_the_save}"
    started_by_init = [started for caller, started in thread_starts[:before] if caller == "autolog-init"]
    assert "autolog-stager" in started_by_init and "autolog-recorder" in started_by_init
    [snap] = output_snapshots(task, "ckpt.pt")
    assert_stored_tensor(snap, tensor(1))


@pytest.mark.parametrize("saves", [1, 5])
def test_saves_racing_the_init_thread_are_all_stored_by_one_set_of_workers(local_store, work, saves, thread_starts):
    task = Task.init(project_name="pipeline", task_name="racing saves", output_uri=local_store)
    for step in range(saves):  # at once: the init thread may not have started the workers yet
        torch.save(tensor(step), work / "ckpt.pt")
    task.close()

    workers = sorted(started for _, started in thread_starts if started not in ("autolog-init", "autolog-scalars"))
    assert "autolog-stager" in workers and len(workers) == len(set(workers)), f"workers started twice: {workers}"
    snaps = output_snapshots(task, "ckpt.pt")
    assert [s.seq for s in snaps] == list(range(1, saves + 1))
    for step, snap in enumerate(snaps):
        assert_stored_tensor(snap, tensor(step))


def test_a_task_that_captures_nothing_starts_no_snapshot_worker(local_store, thread_starts):
    task = Task.init(project_name="pipeline", task_name="no capture", output_uri=local_store,
                     auto_connect_frameworks=False)
    Task.get_task(task_id=task.id)
    task.close()

    assert [started for _, started in thread_starts if started.startswith("autolog-stager")] == []


def test_workers_that_could_not_be_started_ahead_are_started_by_the_first_save(local_store, work, monkeypatch,
                                                                               thread_starts):
    from autolog.snapshots.pipeline import SnapshotPipeline

    def refuse(self: SnapshotPipeline) -> None:
        raise RuntimeError("can't start new thread")  # what threading says when a process is at its limit

    monkeypatch.setattr(SnapshotPipeline, "start_workers", refuse)
    task = Task.init(project_name="pipeline", task_name="no head start", output_uri=local_store)
    Task.get_task(task_id=task.id)  # the row exists: the init thread went on after the refusal
    torch.save(tensor(3), work / "ckpt.pt")
    task.close()

    assert ("MainThread", "autolog-stager") in thread_starts
    [snap] = output_snapshots(task, "ckpt.pt")
    assert_stored_tensor(snap, tensor(3))
