"""A Ctrl-C that lands inside autolog's part of a save: wherever it lands, the user's
KeyboardInterrupt is what they get, and nothing is left half done. Their checkpoint is the old file or
the new one (never an empty placeholder), the next save of that path does not hang on a lock the
interrupted one kept, and the saves after it are still recorded (tests/interrupts.py says how the
points are visited)."""
from __future__ import annotations

import io
import itertools
import threading
import time
from pathlib import Path

import torch

from autolog import Task
from autolog.binding import core
from interrupts import MARKS, interrupted_at
from pipeline_helpers import WAIT, assert_stored_tensor, output_snapshots, tensor

pytestmark = MARKS
STUCK = 10.0  # seconds: far beyond any save or fence here, far below the stall timeout


def save_interrupted_at(n: int, obj, path: Path, only: tuple | None = None) -> str | None:
    return interrupted_at(n, lambda: torch.save(obj, path), only)


def test_a_ctrl_c_anywhere_in_a_save_leaves_the_checkpoint_whole_and_the_path_free(local_store, work, copier, caplog):
    ckpt = work / "ckpt.pt"
    task = Task.init(project_name="pipeline", task_name="interrupted saves", output_uri=local_store)
    copier.hold()  # every previous snapshot unread: each save sets the old file aside
    torch.save(tensor(0), ckpt)
    assert copier.wait_for_calls(1)
    progress = {"where": "nowhere yet", "stored": [tensor(0)]}
    # One training thread makes every save (an interrupted save's leftovers are its thread's); a save
    # that hangs fails the test rather than hanging it.
    training = threading.Thread(target=_interrupted_saves, args=(ckpt, progress), daemon=True)
    training.start()
    training.join(timeout=WAIT)
    assert not training.is_alive(), f"a save hung after a Ctrl-C at {progress['where']}"
    if "error" in progress:
        raise progress["error"]
    assert len(progress["landed"]) > 20, progress["landed"]  # the points were found: the test exercised something
    copier.release.set()
    task.close()
    summary = " ".join(r.getMessage() for r in caplog.records if "not recorded" in r.getMessage())
    assert "KeyboardInterrupt while autolog queued it" in summary, summary  # interrupted saves named as such
    assert "database" not in summary.split("(once the database")[0], summary  # not blamed on the database

    snaps = [s for s in output_snapshots(task, "ckpt.pt") if s.status == "stored"]
    for expected in progress["stored"]:
        assert any(_holds(s, expected) for s in snaps), "an uninterrupted save was not stored"
    assert not [p for p in Path(local_store).rglob("*.aside")], "a set-aside file was left behind"


def _interrupted_saves(ckpt: Path, progress: dict) -> None:
    """Saves of ckpt, each interrupted one signal point further than the one before, until one runs to
    its end; then one more, not interrupted, which must be recorded."""
    on_disk, landed = tensor(0), []
    progress["landed"] = landed
    try:
        for step in itertools.count(1):
            start = time.monotonic()
            where = save_interrupted_at(step, tensor(step), ckpt)
            progress["where"] = where
            took = time.monotonic() - start
            assert took < STUCK, f"the save after a Ctrl-C at {progress['landed'][-1:]} waited {took:.0f} s"
            assert not getattr(core._nesting, "inside", False), f"Ctrl-C at {where}: this thread records no more saves"
            lock = core.path_lock(str(ckpt))
            assert lock.acquire(timeout=5), f"Ctrl-C at {where}: the path's lock was kept, the next save hangs"
            lock.release()
            assert ckpt.is_file(), f"Ctrl-C at {where}: the checkpoint is gone"
            now = torch.load(io.BytesIO(ckpt.read_bytes()))  # a load autolog does not record
            assert now.equal(on_disk) or now.equal(tensor(step)), f"Ctrl-C at {where}: the checkpoint is neither save"
            on_disk = now
            if where is None:
                break
            landed.append(where)
        torch.save(tensor(step + 1), ckpt)
        progress["stored"] += [tensor(step), tensor(step + 1)]
    except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
        progress["error"] = exc


def test_close_settles_a_set_aside_that_an_interrupted_save_left(local_store, work, copier):
    """A Ctrl-C after the save, as the wrapper goes to settle the file set aside for it: close() settles
    it (it is removed once its copy has been read), since no later save of the thread does."""
    ckpt = work / "ckpt.pt"
    task = Task.init(project_name="pipeline", task_name="interrupted, then closed", output_uri=local_store)
    copier.hold()
    torch.save(tensor(1), ckpt)
    assert copier.wait_for_calls(1)
    assert save_interrupted_at(1, tensor(2), ckpt, only=("call", "_settle", None)) is not None
    assert [p for p in Path(local_store).rglob("*.aside")]  # set aside for the save, not settled
    copier.release.set()
    task.close()

    assert torch.load(io.BytesIO(ckpt.read_bytes())).equal(tensor(2))
    (snap,) = output_snapshots(task, "ckpt.pt")  # the second save was interrupted before it was recorded
    assert_stored_tensor(snap, tensor(1))
    assert not [p for p in Path(local_store).rglob("*.aside")], "a set-aside file was left behind"


def test_a_ctrl_c_anywhere_in_a_load_leaves_the_path_free_and_later_loads_linked(local_store, work):
    """The same for torch.load: after each interrupted load, a save of the path does not wait for
    ever on the load's fence (a lineage job half queued), and a load that ends is linked to the
    model that produced the file."""
    ckpt = work / "ckpt.pt"
    producer = Task.init(project_name="pipeline", task_name="producer", output_uri=local_store)
    torch.save(tensor(1), ckpt)
    producer.close()
    (produced,) = producer.models["output"]
    task = Task.init(project_name="pipeline", task_name="interrupted loads", output_uri=local_store)
    progress: dict = {"where": "nowhere yet"}

    def loads() -> None:
        landed = []
        try:
            for step in itertools.count(1):
                where = interrupted_at(step, lambda: torch.load(ckpt, weights_only=True))
                progress["where"] = where
                assert not getattr(core._nesting, "inside", False), f"Ctrl-C at {where}: no more captures here"
                start = time.monotonic()
                assert task._runtime.pipeline.fence(str(ckpt)) is None  # waits for the load's hash, if any
                took = time.monotonic() - start  # a job nobody was woken for sits until the stall timeout (30 s)
                assert took < STUCK, f"Ctrl-C at {where}: the next save's fence waited {took:.0f} s"
                if where is None:
                    break
                landed.append(where)
        except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
            progress["error"] = exc
        progress["landed"] = landed

    training = threading.Thread(target=loads, daemon=True)
    training.start()
    training.join(timeout=WAIT)
    assert not training.is_alive(), f"a load, or the fence after it, hung after a Ctrl-C at {progress['where']}"
    if "error" in progress:
        raise progress["error"]
    assert len(progress["landed"]) > 10, progress["landed"]
    task.close()

    inputs = task.models["input"]
    assert [m.id for m in inputs] == [produced.id], [(m.name, m.origin) for m in inputs]


def _holds(snap, expected) -> bool:
    try:
        assert_stored_tensor(snap, expected)
    except AssertionError:
        return False
    return True
