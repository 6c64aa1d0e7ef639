"""Point 6: a run SIGKILLed while a snapshot is being copied or uploaded. Its snapshots are journaled
`pending`; the next Task.init warns about them; `autolog sync` stores each one (from the staged copy,
else from the unchanged source) or marks it `failed` with the reason, and marks the dead run failed."""
from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from autolog import Task
from pipeline_helpers import assert_stored_tensor, cli_json, files_under, snapshots_by_task, tensor, wait_for_file

CHILD = """
import sys
import threading
from pathlib import Path

import torch

import pipeline_helpers as h
from autolog import Task
from autolog.storage import objects

output_uri, ckpt, marker, stuck_in = sys.argv[1:5]
task = Task.init(project_name="pipeline", task_name="killed", output_uri=output_uri)
Path(marker + ".task").write_text(task.id)
if stuck_in == "copy":  # the third snapshot's copy out of ckpt stops half way, forever
    h.through_the_stager()
    original, stuck, calls = objects.kernel_copy, h.stuck_forever(marker), []

    def copy(src_fd, dst_fd, size, *rest):
        calls.append(size)
        if len(calls) < 3:
            return original(src_fd, dst_fd, size, *rest)
        # The first two are recorded by another worker: let it finish them before the "crash".
        pending = task._runtime.pipeline.pending
        h.wait_until(lambda: len(pending()) == 1 and pending()[0].journaled, "1 and 2 recorded, 3 journaled")
        return stuck(src_fd, dst_fd, size)

    objects.kernel_copy = copy
else:  # every upload hangs; the marker is written once all three are staged and uploading
    put = h.install_put_control()
    put.block()
    put.on_enter = lambda n: n == 3 and Path(marker).write_text("stuck")
for step in range(3):
    torch.save(h.tensor(step), ckpt)
threading.Event().wait()
"""

SAVES = 3


@dataclass
class Killed:
    task_id: str
    ckpt: Path


@pytest.fixture
def kill_mid_snapshot(spawn, work, tmp_path):
    """kill_mid_snapshot(output_uri, stuck_in): run CHILD until its 3rd snapshot is stuck, then SIGKILL it."""
    def run(output_uri: str, stuck_in: str) -> Killed:
        ckpt, marker = work / "ckpt.pt", tmp_path / "stuck"
        proc = spawn(CHILD, output_uri, ckpt, marker, stuck_in)
        wait_for_file(marker, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()  # reaped: its pid is gone, as after a real crash
        assert proc.returncode == -signal.SIGKILL
        return Killed(task_id=Path(f"{marker}.task").read_text(), ckpt=ckpt)

    return run


def _modify(path: Path) -> None:
    torch.save(tensor(99), path)  # no task running here: not captured


def _assert_each_stored_or_failed(snaps: list) -> None:
    for snap in snaps:
        assert snap.status in ("stored", "failed"), (snap.seq, snap.status, snap.reason)
        if snap.status == "stored":
            assert_stored_tensor(snap, tensor(snap.seq - 1))
        else:
            assert snap.reason


@pytest.mark.parametrize("scenario", ["local-source-unchanged", "local-source-modified", "remote-staged-copy"])
def test_autolog_sync_finishes_a_killed_run(scenario, kill_mid_snapshot, local_store, remote_store, env, caplog):
    remote = scenario.startswith("remote")
    killed = kill_mid_snapshot(remote_store if remote else local_store, stuck_in="upload" if remote else "copy")

    (snaps,) = snapshots_by_task(killed.task_id).values()
    assert [s.status for s in snaps] == (["pending"] * 3 if remote else ["stored", "stored", "pending"])
    if remote:
        assert all(s.stage_uri and Path(s.stage_uri).is_dir() for s in snaps), "staged copies should be journaled"
    if scenario != "local-source-unchanged":
        _modify(killed.ckpt)  # only the staged copies (if any) still hold what was saved

    # Another run starting before the sync hears about the unfinished snapshots.
    caplog.set_level(logging.WARNING, logger="autolog")
    Task.init(project_name="pipeline", task_name="next run", output_uri=None).close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("not finished" in w and killed.task_id[:8] in w and "autolog sync" in w for w in warnings), warnings

    report = cli_json(env, "sync")

    assert report["tasks_marked_failed"] == [killed.task_id]
    assert report["still_running"] == []
    (snaps,) = snapshots_by_task(killed.task_id).values()
    _assert_each_stored_or_failed(snaps)
    if scenario == "local-source-modified":
        assert [s.status for s in snaps] == ["stored", "stored", "failed"]
        assert "changed" in snaps[-1].reason
        assert [f["seq"] for f in report["failed"]] == [3]
    else:
        assert [s.status for s in snaps] == ["stored"] * SAVES
        assert [s["seq"] for s in report["stored"]] == ([1, 2, 3] if remote else [3])
    killed_task = Task.get_task(task_id=killed.task_id)
    assert killed_task.status == "failed"
    assert "killed" in killed_task._record.status_message

    assert cli_json(env, "sync") == {"stored": [], "failed": [], "still_running": [], "tasks_marked_failed": []}


def test_sync_leaves_no_partial_copy_of_a_killed_run_in_the_store(kill_mid_snapshot, local_store, env):
    """The half-written staging folder of the killed copy (next to its key, in the output_uri) goes too."""
    killed = kill_mid_snapshot(local_store, stuck_in="copy")
    cli_json(env, "sync")

    (snaps,) = snapshots_by_task(killed.task_id).values()
    assert [s.status for s in snaps] == ["stored"] * SAVES
    stored = {Path(s.uri) for s in snaps}
    leftovers = [str(p) for p in files_under(local_store) if p not in stored]
    assert leftovers == [], "partial copies left in the output_uri"


SET_ASIDE_CHILD = """
import sys
import threading
from pathlib import Path

import torch

import pipeline_helpers as h
from autolog import Task
from autolog.storage import objects

output_uri, ckpt, marker = sys.argv[1:4]
task = Task.init(project_name="pipeline", task_name="killed with a file set aside", output_uri=output_uri)
Path(marker + ".task").write_text(task.id)
h.through_the_stager()
objects.kernel_copy = h.stuck_forever(marker + ".copying")  # snapshot 1's copy stops half way, forever
torch.save(h.tensor(0), ckpt)
h.wait_until(lambda: Path(marker + ".copying").exists(), "the copy of snapshot 1 is stuck")
torch.save(h.tensor(1), ckpt)  # snapshot 1 is unread: its file is renamed aside, this save writes a new one
pending = task._runtime.pipeline.pending
h.wait_until(lambda: len(pending()) == 2 and all(job.journaled for job in pending()), "both saves journaled")
Path(marker).write_text("ready")
threading.Event().wait()
"""


def killed_with_a_file_set_aside(spawn, work: Path, local_store: str, tmp_path: Path) -> str:
    """SET_ASIDE_CHILD's run, SIGKILLed with both saves pending: its task id."""
    marker = tmp_path / "stuck"
    proc = spawn(SET_ASIDE_CHILD, local_store, work / "ckpt.pt", marker)
    wait_for_file(marker, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return Path(f"{marker}.task").read_text()


def test_sync_stores_a_snapshot_from_the_file_set_aside_for_it(spawn, work, local_store, env, tmp_path):
    """Killed after a save set the previous snapshot's file aside (its copy unread): the path holds the
    newer save, the saved bytes of the older one are only in `<staging>.aside`. sync stores both."""
    task_id = killed_with_a_file_set_aside(spawn, work, local_store, tmp_path)
    (snaps,) = snapshots_by_task(task_id).values()
    assert [s.status for s in snaps] == ["pending", "pending"]
    aside = Path(snaps[0].stage_uri + ".aside")
    assert aside.is_file(), "the first save's file should have been set aside"

    report = cli_json(env, "sync")

    assert [s["seq"] for s in report["stored"]] == [1, 2] and report["failed"] == []
    (snaps,) = snapshots_by_task(task_id).values()
    assert [s.status for s in snaps] == ["stored", "stored"]
    assert_stored_tensor(snaps[0], tensor(0))  # from the file set aside
    assert_stored_tensor(snaps[1], tensor(1))  # from the path, unchanged since
    assert not aside.exists(), "the file set aside is removed once its snapshot is settled"


def test_two_syncs_at_once_never_undo_each_others_stored_snapshot(spawn, work, local_store, tmp_path, monkeypatch):
    """Two `autolog sync` at once (a cron job and a user): the one that got there second found the file
    set aside already removed by the first, called the snapshot unrecoverable, deleted its stored
    object and marked it failed. A sync settles only a row that is still pending."""
    from autolog.context import default_context
    from autolog.snapshots import sync as snapshot_sync

    task_id = killed_with_a_file_set_aside(spawn, work, local_store, tmp_path)
    original, other = snapshot_sync._set_aside_source, {}

    def the_other_sync_first(snap):  # the second sync looks for the file just after the first one ended
        if "report" not in other:
            other["report"] = None  # the other sync's own look goes straight through
            other["report"] = snapshot_sync.sync(default_context())
        return original(snap)

    monkeypatch.setattr(snapshot_sync, "_set_aside_source", the_other_sync_first)
    second = snapshot_sync.sync(default_context())

    assert [s.seq for s in other["report"].stored] == [1, 2]
    assert second.failed == [], second.failed
    (snaps,) = snapshots_by_task(task_id).values()
    assert [s.status for s in snaps] == ["stored", "stored"]
    assert_stored_tensor(snaps[0], tensor(0))
    assert_stored_tensor(snaps[1], tensor(1))


KILLED_BEFORE_STORED = """
import os, signal, sys
import torch
import pipeline_helpers as h
from autolog import Task
from autolog.db.store import MetadataStore
from autolog.snapshots import steps

output_uri, ckpt, when = sys.argv[1:4]
task = Task.init(project_name="pipeline", task_name="killed before stored", output_uri=output_uri)
print(task.id, flush=True)
if "from memory" not in when and "read at once" not in when:  # a small file is read at the save
    h.through_the_stager()

def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if when.startswith("copied"):  # copied (or read), checked and hashed: the recorder was about to put it in place
    steps.publish_local = killed
else:  # in place at its key: the recorder was about to say so
    finish = MetadataStore.finish_snapshots

    def finish_unless_stored(self, updates, *args, **kwargs):
        if any(values.get("status") == "stored" for _, values in updates):
            killed()
        return finish(self, updates, *args, **kwargs)

    MetadataStore.finish_snapshots = finish_unless_stored
torch.save(h.tensor(1), ckpt)
task.flush()
"""


@pytest.mark.parametrize("when", ["copied", "put in place", "put in place from memory"])
def test_sync_stores_a_local_snapshot_whose_run_died_before_its_row_said_stored(when, spawn, work, local_store, env):
    """Its copy was complete and checked, and the run's next save overwrote the file, as it may once
    the copy is read. sync failed the snapshot and deleted that copy (a local staged copy had no
    copied marker; one already at its key had no journaled digest, and re-publishing over it failed)."""
    ckpt = work / "ckpt.pt"
    proc = spawn(KILLED_BEFORE_STORED, local_store, ckpt, when)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    task_id = out.split()[0]
    _modify(ckpt)  # the next save

    report = cli_json(env, "sync")

    (snaps,) = snapshots_by_task(task_id).values()
    assert [(s.status, s.reason and "sync" in s.reason) for s in snaps] == [("stored", True)], snaps[0].reason
    assert [s["seq"] for s in report["stored"]] == [1]
    assert_stored_tensor(snaps[0], tensor(1))
    assert [p for p in files_under(local_store) if p != Path(snaps[0].uri)] == [], "left in the output_uri"


GAVE_UP_IN_CLOSE = """
import sys, time
from pathlib import Path
import pipeline_helpers as h
import torch
from autolog import Task

output_uri, ckpt, closed, release = sys.argv[1:5]
task = Task.init(project_name="pipeline", task_name="gave up", output_uri=output_uri)
put = h.install_put_control()
put.block()
torch.save(h.tensor(3), ckpt)
task.close()  # the upload makes no progress: close() gives up (stall_timeout), the row stays pending
h.write_marker(closed, task.id)
while not Path(release).exists():  # the process goes on: a notebook, a sweep's next trial
    time.sleep(0.05)
put.release()
pending = task._runtime.pipeline.pending
h.wait_until(lambda: not pending(), "the process finished its own work on the snapshot")
"""


def test_sync_leaves_the_snapshots_of_a_closed_task_whose_process_lives_on_to_that_process(
        spawn, work, remote_store, tmp_path, config, env):
    """close() gave up on a stalled upload ("run autolog sync"), but its process lives on and still
    finishes the upload. sync took the task for dead (it was no longer running), stored the snapshot
    too, and the live process then wrote the row failed over sync's stored."""
    config(pipeline={"stall_timeout": 1.0})
    ckpt, closed, release = work / "ckpt.pt", tmp_path / "closed", tmp_path / "release"
    proc = spawn(GAVE_UP_IN_CLOSE, remote_store, ckpt, closed, release)
    wait_for_file(closed, proc)
    task_id = closed.read_text()

    report = cli_json(env, "sync")

    (snaps,) = snapshots_by_task(task_id).values()
    assert report["stored"] == [] and [s["id"] for s in report["still_running"]] == [snaps[0].id]
    release.write_text("go")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    (snaps,) = snapshots_by_task(task_id).values()
    assert snaps[0].status == "stored", snaps[0].reason
    assert_stored_tensor(snaps[0], tensor(3))
    assert cli_json(env, "sync")["still_running"] == []


def test_sync_stores_from_the_path_only_the_bytes_that_were_saved(spawn, work, local_store, env):
    """A small save is read (and hashed) at once, and its journal row keeps that digest: a file at its
    path with the same size and mtime but other bytes (a clock too coarse to tell two saves apart)
    is not stored as it, as size and mtime alone let through."""
    ckpt = work / "ckpt.pt"
    proc = spawn(KILLED_BEFORE_STORED, local_store, ckpt, "copied (read at once)")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    task_id = out.split()[0]
    (snaps,) = snapshots_by_task(task_id).values()
    assert snaps[0].digest, "the journal row has no digest"
    saved = ckpt.stat()
    _modify(ckpt)  # the same size: another tensor of the same shape
    os.utime(ckpt, ns=(saved.st_atime_ns, saved.st_mtime_ns))
    assert ckpt.stat().st_size == saved.st_size

    report = cli_json(env, "sync")

    (snaps,) = snapshots_by_task(task_id).values()
    assert snaps[0].status == "failed" and "changed after the save" in snaps[0].reason, snaps[0].reason
    assert [f["seq"] for f in report["failed"]] == [1]
    assert files_under(local_store) == []


KILLED_WHILE_COPYING = """
import sys, threading
from pathlib import Path
import wrapt
import pipeline_helpers as h
from autolog import Task
from autolog.binding.core import make_wrapper
from autolog.binding.spec import Arg, Computed, Save
from autolog.storage import objects

output_uri, target, marker = sys.argv[1:4]

def write_folder(folder):  # a Trainer's final save: the model's files beside its own checkpoint-N folders
    for name in ("config.json", "model.safetensors"):
        Path(folder, name).write_bytes(name.encode() * 100)

def write_model(path):  # an ONNX model with its external data beside it
    Path(path).write_bytes(b"graph" * 100)
    Path(path + ".data").write_bytes(b"tensors" * 100)

declared = {
    "folder": (write_folder, Save("tests", "save", path=Arg(0, "folder"), exclude=("checkpoint-*",))),
    "file with companions": (write_model, Save("tests", "save", path=Arg(0, "path"),
                                               companions=Computed(lambda call: [call.args[0] + ".data"]))),
}
write, patch = declared[sys.argv[4]]
save = wrapt.FunctionWrapper(write, make_wrapper(patch, "Test", "test"))
task = Task.init(project_name="pipeline", task_name="killed while copying", output_uri=output_uri)
print(task.id, flush=True)
h.through_the_stager()
objects.kernel_copy = h.stuck_forever(marker + ".copy")
save(target)
pending = task._runtime.pipeline.pending
h.wait_until(lambda: Path(marker + ".copy").exists() and pending()[0].journaled, "journaled, its copy stuck")
Path(marker).write_text("killable")
threading.Event().wait()
"""


@pytest.mark.parametrize("saved", ["folder", "file with companions"])
def test_sync_stores_a_snapshot_of_several_files_from_those_it_held_unchanged(saved, spawn, work, local_store, env,
                                                                              tmp_path):
    """The run was killed half way through the copy: sync stores the snapshot from the files it held, a
    folder's (its checkpoint-* folder was not part of it, and still is not) or a model's and its
    external data's."""
    marker = tmp_path / "stuck"
    if saved == "folder":
        target, files = work / "output", ["config.json", "model.safetensors"]
        (target / "checkpoint-5").mkdir(parents=True)
        (target / "checkpoint-5" / "optimizer.pt").write_bytes(b"adam")
    else:
        target, files = work / "model.onnx", ["model.onnx", "model.onnx.data"]
    proc = spawn(KILLED_WHILE_COPYING, local_store, target, marker, saved)
    wait_for_file(marker, proc)
    task_id = proc.stdout.readline().split()[0]
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    report = cli_json(env, "sync")

    (snaps,) = snapshots_by_task(task_id).values()
    assert [s.status for s in snaps] == ["stored"], snaps[0].reason
    assert [s["seq"] for s in report["stored"]] == [1]
    assert sorted(f["name"] for f in snaps[0].files) == files
    stored = Path(snaps[0].uri)
    assert sorted(p.name for p in stored.rglob("*") if p.is_file()) == files
