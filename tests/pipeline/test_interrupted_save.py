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
import wrapt

from autolog import Task
from autolog.binding import core
from autolog.binding.spec import Arg, Save
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
    def load(step: int) -> str | None:
        return interrupted_at(step, lambda: torch.load(ckpt, weights_only=True))

    def fence_is_free(where: str | None) -> None:
        start = time.monotonic()
        assert task._runtime.pipeline.fence(str(ckpt)) is None  # waits for the load's hash, if any
        took = time.monotonic() - start  # a job nobody was woken for sits until the stall timeout (30 s)
        assert took < STUCK, f"Ctrl-C at {where}: the next save's fence waited {took:.0f} s"

    landed = _each_ctrl_c(load, fence_is_free, "a load, or the fence after it,")
    assert len(landed) > 10, landed
    task.close()

    inputs = task.models["input"]
    assert [m.id for m in inputs] == [produced.id], [(m.name, m.origin) for m in inputs]


def _each_ctrl_c(attempt, after, what: str) -> list[str]:
    """attempt(n) makes a call with a Ctrl-C at autolog's n-th point, for n = 1, 2, ... until one runs to
    its end, each followed by after(where it landed), in a training thread (a call that hangs fails the
    test rather than hanging it): where they landed."""
    progress: dict = {"where": "nowhere yet", "landed": []}

    def run() -> None:
        try:
            for step in itertools.count(1):
                where = progress["where"] = attempt(step)
                assert not getattr(core._nesting, "inside", False), f"Ctrl-C at {where}: no more captures here"
                after(where)
                if where is None:
                    return
                progress["landed"].append(where)
        except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
            progress["error"] = exc

    training = threading.Thread(target=run, daemon=True)
    training.start()
    training.join(timeout=WAIT)
    assert not training.is_alive(), f"{what} hung after a Ctrl-C at {progress['where']}"
    if "error" in progress:
        raise progress["error"]
    return progress["landed"]


def _holds(snap, expected) -> bool:
    try:
        assert_stored_tensor(snap, expected)
    except AssertionError:
        return False
    return True


def _write_config(folder: str) -> None:
    Path(folder).mkdir(exist_ok=True)
    (Path(folder) / "config.json").write_text("{}")


# A save_pretrained, declared as the Transformers binding declares one: the folder waits to settle.
save_pretrained = wrapt.FunctionWrapper(_write_config, core.make_wrapper(
    Save("tests", "Model.save_pretrained", path=Arg(0, "folder"), settle=True), "Test", "test"))


def test_a_ctrl_c_anywhere_in_a_save_into_a_waiting_folder_leaves_both_locks_free(local_store, work, config):
    """torch.save into a folder waiting to settle holds the folder's lock too: after a Ctrl-C anywhere,
    neither lock is kept (the timer and close() would wait for ever), and the folder is still stored."""
    config(capture={"settle_seconds": 30})
    folder = work / "checkpoint"
    task = Task.init(project_name="pipeline", task_name="interrupted joins", output_uri=local_store)

    def save(step: int) -> str | None:
        save_pretrained(str(folder))  # a new wait each time: the save after it joins it
        return save_interrupted_at(step, tensor(step), folder / "optimizer.pt")

    def locks_are_free(where: str | None) -> None:
        for path in (folder, folder / "optimizer.pt"):
            lock = core.path_lock(str(path))
            assert lock.acquire(timeout=5), f"Ctrl-C at {where}: the lock of {path} was kept"
            lock.release()

    landed = _each_ctrl_c(save, locks_are_free, "a save")
    assert len(landed) > 20, landed
    task.close()
    snaps = output_snapshots(task, "checkpoint")
    assert snaps and all(s.status == "stored" for s in snaps), [(s.seq, s.status, s.reason) for s in snaps]
    assert "optimizer.pt" in {f["name"] for f in snaps[-1].files}  # the last save, not interrupted, joined
