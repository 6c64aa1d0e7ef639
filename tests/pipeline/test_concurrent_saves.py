"""Two threads saving one path take turns: every save is one snapshot holding exactly the bytes that
save wrote, none fails, and none holds the other thread's bytes (issue: 20 of 60 failed as "modified in
place", 10 stored the other thread's bytes)."""
from __future__ import annotations

import threading

import pytest
import torch

from autolog import Task
from pipeline_helpers import WAIT, load_object, output_snapshots


@pytest.mark.parametrize("size", [16, 100_000], ids=["small", "staged"])  # read inline, and through the stager
def test_two_threads_saving_one_path_each_snapshot_holds_one_save(size, any_store, work):
    task = Task.init(project_name="pipeline", task_name="two threads", output_uri=any_store)
    path = work / "shared.pt"
    start = threading.Barrier(2)

    def train(thread: int) -> None:
        start.wait()
        for step in range(30):
            torch.save(torch.full((size,), float(thread * 1000 + step)), path)

    threads = [threading.Thread(target=train, args=(i,)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive(), "a save never returned"
    task.close()

    snaps = output_snapshots(task, "shared.pt")
    assert len(snaps) == 60
    assert [s.status for s in snaps] == ["stored"] * 60, [(s.seq, s.status, s.reason) for s in snaps]
    values = []
    for snap in snaps:
        tensor = load_object(snap)
        assert torch.all(tensor == tensor[0]), f"snapshot {snap.seq} mixes two saves"
        values.append(int(tensor[0]))
    assert sorted(values) == sorted(t * 1000 + s for t in (1, 2) for s in range(30))
