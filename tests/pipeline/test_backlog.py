"""Point 4: the backlog of staged-but-not-uploaded bytes is bounded. `block` makes a further save wait
until uploads make room (nothing lost); `coalesce` never makes a save wait: it drops superseded,
not-yet-uploaded snapshots (recorded `skipped`) and keeps the newest."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from autolog import Task
from pipeline_helpers import (WAIT, assert_stored_tensor, files_under, no_snapshot_being_read, object_path,
                              output_snapshots, save_in_thread, tensor, wait_until)


@pytest.fixture
def snapshot_size(tmp_path) -> int:
    """Bytes of one checkpoint file (every step's tensor has the same size; a.pt and b.pt alike)."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    sizes = set()
    for name in ("a.pt", "b.pt"):
        torch.save(tensor(0), scratch / name)  # no task yet: not captured
        sizes.add((scratch / name).stat().st_size)
    assert len(sizes) == 1
    return sizes.pop()


@pytest.fixture
def backlog_for_two(config, snapshot_size):
    """config(policy): a backlog bound that holds two snapshots, not three."""
    def write(policy: str) -> None:
        config(pipeline={"backlog_bytes": 2 * snapshot_size + snapshot_size // 2, "backlog_policy": policy})

    return write


def test_block_policy_makes_a_further_save_wait_until_uploads_make_room(remote_store, work, put, backlog_for_two):
    backlog_for_two("block")
    put.block()
    task = Task.init(project_name="pipeline", task_name="block", output_uri=remote_store)
    a, b = work / "a.pt", work / "b.pt"
    torch.save(tensor(1), a)  # an empty backlog always takes one snapshot
    assert put.wait_for_calls(1)
    second = save_in_thread(tensor(2), b)
    second.join(timeout=WAIT)
    assert not second.is_alive(), "the second snapshot should fit in the backlog"
    assert put.wait_for_calls(2)

    third = save_in_thread(tensor(3), a)
    third.join(timeout=1.0)
    assert third.is_alive(), "the save returned although the backlog is full"
    put.release()
    third.join(timeout=WAIT)
    assert not third.is_alive(), "the save stayed blocked after the uploads finished"
    task.close()

    first, last = output_snapshots(task, "a.pt")
    assert_stored_tensor(first, tensor(1))
    assert_stored_tensor(last, tensor(3))
    (only,) = output_snapshots(task, "b.pt")
    assert_stored_tensor(only, tensor(2))
    assert len(put.calls) == 3


def test_coalesce_policy_never_blocks_and_keeps_the_newest(remote_store, work, put, backlog_for_two, staging_root,
                                                           monkeypatch):
    backlog_for_two("coalesce")
    started_by_training = []
    original_start = threading.Thread.start

    def recording_start(self: threading.Thread) -> None:
        if threading.current_thread().name == "training":
            started_by_training.append(self.name)
        original_start(self)

    monkeypatch.setattr(threading.Thread, "start", recording_start)
    put.block()
    task = Task.init(project_name="pipeline", task_name="coalesce", output_uri=remote_store)
    ckpt = work / "ckpt.pt"
    steps = 8
    returned = []

    def train() -> None:
        for step in range(steps):
            torch.save(tensor(step), ckpt)
            returned.append(step)
            # Let the stager catch up, so which snapshots were superseded does not depend on timing.
            wait_until(lambda: no_snapshot_being_read(task), "the stager copied and hashed the snapshot")

    training = threading.Thread(target=train, name="training", daemon=True)
    training.start()
    training.join(timeout=15)  # eight saves of a few KB: a save that waits on the held uploads never returns
    blocked = training.is_alive()
    saves_done, in_flight = len(returned), len(put.calls)
    put.release()  # uploads resume (also unblocks a stuck save, so the test ends either way)
    training.join(timeout=WAIT)
    assert not blocked, (f"save #{saves_done + 1} of a single path blocked under backlog_policy = coalesce "
                         f"(uploads held, {in_flight} in flight)")
    task.close()

    snaps = output_snapshots(task, "ckpt.pt")
    assert [s.seq for s in snaps] == list(range(1, steps + 1))
    assert_stored_tensor(snaps[-1], tensor(steps - 1))
    skipped = [s for s in snaps if s.status == "skipped"]
    assert started_by_training == [], "a save started a thread to finish the snapshot it superseded"
    assert skipped, f"nothing was coalesced although every upload was held: {[(s.seq, s.status, s.reason) for s in snaps]} in flight {in_flight}"
    for snap in snaps:
        assert snap.status in ("stored", "skipped"), (snap.seq, snap.status, snap.reason)
        if snap.status == "skipped":
            assert "coalesce" in snap.reason
            assert snap.uri is None
        else:
            assert_stored_tensor(snap, tensor(snap.seq - 1))
    stored_objects = {object_path(s.uri) for s in snaps if s.status == "stored"}
    assert set(files_under(remote_store.removeprefix("local://"))) == stored_objects
    assert files_under(staging_root) == [], "staged copies left behind"



class SlowToPickle:
    """Part of a save that lasts `seconds`: meanwhile the earlier snapshot is staged into the backlog."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __reduce__(self):
        time.sleep(self.seconds)
        return (dict, ())


def test_a_save_waiting_for_room_right_after_task_init_has_the_row_written_at_once(config, work):
    """Room is made by publishing, which needs the task's row; the start of Task.init otherwise waits
    while the script is inside a save (quiet_start.py), for up to 5 s."""
    n = 1 << 17  # 512 KiB of float32: copied by the stager, not read on the training thread
    config(pipeline={"backlog_bytes": 4 * n + 4 * n // 2, "backlog_policy": "block"})
    task = Task.init(project_name="pipeline", task_name="room at start", output_uri=str(work / "store"))
    torch.save(tensor(1, n), work / "a.pt")
    start = time.monotonic()
    torch.save({"t": tensor(2, n), "slow": SlowToPickle(0.5)}, work / "a.pt")  # then waits for the first's room
    took = time.monotonic() - start
    task.close()
    assert took < 3.0
    assert [s.iteration for s in output_snapshots(task, "a.pt")] == [1, 2]
