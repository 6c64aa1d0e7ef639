"""Points 1 and 2: a save never loses or mixes the bytes of the previous save of the same path, and a
snapshot survives the user renaming or deleting the file right after the save returned."""
from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
import torch
import wrapt

from autolog import Task
from autolog.binding.core import make_wrapper
from autolog.binding.spec import Arg, Save, Writes
from autolog.storage.hashing import bytes_digest
from frameworks import require_framework
from pipeline_helpers import WAIT, assert_stored_tensor, output_snapshots, save_in_thread, tensor, wait_until


def test_back_to_back_saves_of_one_path_are_twenty_distinct_snapshots(any_store, work):
    ckpt = work / "ckpt.pt"
    task = Task.init(project_name="pipeline", task_name="fence", output_uri=any_store)
    for step in range(20):
        torch.save(tensor(step), ckpt)  # overwrites the file the previous snapshot is read from
    task.close()

    snaps = output_snapshots(task, "ckpt.pt")
    assert [s.seq for s in snaps] == list(range(1, 21))
    assert len({s.digest for s in snaps}) == 20, "two snapshots hold the same bytes: a save overwrote a read"
    assert len({s.uri for s in snaps}) == 20
    for step, snap in enumerate(snaps):
        assert_stored_tensor(snap, tensor(step))


@pytest.mark.parametrize("action", ["rename", "delete"])
def test_file_renamed_or_deleted_before_it_was_read_is_still_stored(any_store, work, stager, action):
    ckpt = work / "ckpt.pt"
    task = Task.init(project_name="pipeline", task_name=f"{action} after save", output_uri=any_store)
    stager.hold()
    torch.save(tensor(7), ckpt)
    assert stager.wait_for_calls(1), "the stager never picked up the snapshot"
    # The stager has the snapshot and is held before touching it: not a byte read yet.
    if action == "rename":
        os.rename(ckpt, work / "renamed.pt")
    else:
        os.remove(ckpt)
    assert not ckpt.exists()
    stager.release.set()
    task.close()

    (snap,) = output_snapshots(task, "ckpt.pt")
    assert snap.reason is None
    assert_stored_tensor(snap, tensor(7))


def test_a_save_of_a_path_whose_snapshot_is_unread_sets_the_old_file_aside(local_store, work, copier):
    """The second save of a path does not wait for the copy of the first: the first file is renamed
    aside (its copy reads through its own handle) and the save writes a new file, with the old file's
    permission bits, as an overwrite would have kept them. Both snapshots hold their own bytes."""
    ckpt = work / "ckpt.pt"
    task = Task.init(project_name="pipeline", task_name="set aside", output_uri=local_store)
    copier.hold()
    torch.save(tensor(1), ckpt)
    os.chmod(ckpt, 0o640)
    assert copier.wait_for_calls(1)
    second = save_in_thread(tensor(2), ckpt)
    second.join(timeout=WAIT)
    assert not second.is_alive(), "the second save waited for the copy of the first"
    assert torch.load(ckpt).equal(tensor(2))
    assert stat.S_IMODE(os.stat(ckpt).st_mode) == 0o640
    copier.release.set()
    task.close()

    first, last = output_snapshots(task, "ckpt.pt")
    assert_stored_tensor(first, tensor(1))
    assert_stored_tensor(last, tensor(2))
    assert not [p for p in Path(local_store).rglob("*.aside")], "a set-aside file was left behind"


def test_a_save_does_not_wait_for_an_unread_snapshot_whose_file_is_no_longer_at_the_path(local_store, work, copier):
    """The copy reads the old file through its own handle: once another file stands at the path (the
    script wrote one by rename, or a save whose recording was interrupted did), writing the path cannot
    touch those bytes, and the next save has nothing to wait for."""
    ckpt = work / "ckpt.pt"
    task = Task.init(project_name="pipeline", task_name="replaced", output_uri=local_store)
    copier.hold()
    torch.save(tensor(1), ckpt)
    assert copier.wait_for_calls(1)
    (work / "tmp.pt").write_bytes(b"written by the script")
    os.replace(work / "tmp.pt", ckpt)
    second = save_in_thread(tensor(2), ckpt)
    second.join(timeout=10)  # it waits for ever (the copy is held) if it waits at all
    assert not second.is_alive(), "the save waited for the copy of a file that was no longer at its path"
    copier.release.set()
    task.close()

    first, last = output_snapshots(task, "ckpt.pt")
    assert_stored_tensor(first, tensor(1))
    assert_stored_tensor(last, tensor(2))


def _write_folder(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    torch.save(tensor(1), os.path.join(folder, "model.pt"))  # nested in the folder's save: not recorded
    Path(folder, "config.json").write_text("{}")


# A save of a whole folder, declared as a binding declares one (a SavedModel, a save_pretrained)
save_folder = wrapt.FunctionWrapper(_write_folder, make_wrapper(Save("tests", "Folder.save", path=Arg(0, "folder")),
                                                                "Test", "test"))


def _folder_saved_with_its_copy_held(store, copier, folder: Path, name: str):
    """A task that saved folder (save_folder), its copy held: the task."""
    task = Task.init(project_name="pipeline", task_name=name, output_uri=store)
    copier.hold()
    save_folder(str(folder))
    assert copier.wait_for_calls(1)
    return task


def _waits_until_read(copier, why: str, call, *args) -> None:
    """call(*args), in a thread, still waits a second later (the copy is held) and ends once it is not."""
    thread = threading.Thread(target=call, args=args, daemon=True)
    thread.start()
    thread.join(timeout=1)
    assert thread.is_alive(), why
    copier.release.set()
    thread.join(timeout=WAIT)
    assert not thread.is_alive()


def test_a_save_of_a_file_inside_a_folder_whose_snapshot_is_unread_waits_for_that_read(local_store, work, copier):
    """torch.save(..., "export/model.pt") right after the export folder was saved: the file is one of
    the folder snapshot's, still to be copied, and torch.save truncates it in place. The save waits
    until the folder's copy has read it (it waited only for a snapshot of its own path)."""
    folder = work / "export"
    task = _folder_saved_with_its_copy_held(local_store, copier, folder, "file in a folder")
    first = (folder / "model.pt").read_bytes()
    _waits_until_read(copier, "the save overwrote a file the folder's copy had not read",
                      torch.save, tensor(2), folder / "model.pt")
    task.close()

    [snap] = output_snapshots(task, "export")
    assert snap.status == "stored", snap.reason
    assert {f["name"]: f["digest"] for f in snap.files}["model.pt"] == bytes_digest(first)
    stored = Path(task.models["output"]["export"].get_local_copy())
    assert (stored / "model.pt").read_bytes() == first
    assert_stored_tensor(output_snapshots(task, "model.pt")[0], tensor(2))


@pytest.mark.parametrize("through", ["a link to the folder", "a link to the file", "a hard link to the file"])
def test_a_save_through_a_symlink_into_a_folder_whose_snapshot_is_unread_waits_for_that_read(
        local_store, work, copier, through):
    """The export folder saved, its copy not yet read; then torch.save(x, "latest/model.pt") where
    latest -> export (or "weights.pt" -> export/model.pt, or a hard link to it): the same file, by
    another name, truncated in place. The save waits for the folder's copy as it does by the folder's own name; without that the
    copy found model.pt changing and the folder's snapshot was reported not stored."""
    folder = work / "export"
    task = _folder_saved_with_its_copy_held(local_store, copier, folder, f"save through {through}")
    first = (folder / "model.pt").read_bytes()
    if through == "a link to the folder":
        (work / "latest").symlink_to(folder, target_is_directory=True)
        target = work / "latest" / "model.pt"
    elif through == "a link to the file":
        (work / "weights.pt").symlink_to(folder / "model.pt")
        target = work / "weights.pt"
    else:
        os.link(folder / "model.pt", work / "weights.pt")
        target = work / "weights.pt"
    _waits_until_read(copier, "the save through a symlink overwrote a file the folder's copy had not read",
                      torch.save, tensor(2), target)
    task.close()

    [snap] = output_snapshots(task, "export")
    assert snap.status == "stored", snap.reason
    assert {f["name"]: f["digest"] for f in snap.files}["model.pt"] == bytes_digest(first)
    assert torch.equal(torch.load(folder / "model.pt", weights_only=True), tensor(2))


def test_a_folder_saved_by_another_name_over_an_unread_snapshot_of_its_file_waits_for_that_read(
        local_store, work, copier):
    """torch.save(x, "export/model.pt") recorded, its copy not yet read; then the folder saved through a
    symlink to it (save_pretrained("latest"), latest -> export), rewriting model.pt in place: the folder's
    save waits for the file's copy, as it does when it names the folder itself."""
    folder = work / "export"
    folder.mkdir()
    (work / "latest").symlink_to(folder, target_is_directory=True)
    task = Task.init(project_name="pipeline", task_name="folder by another name", output_uri=local_store)
    copier.hold()
    torch.save(tensor(1), folder / "model.pt")
    assert copier.wait_for_calls(1)
    _waits_until_read(copier, "the folder's save through a symlink rewrote a file whose copy had not read it",
                      save_folder, str(work / "latest"))
    task.close()
    assert_stored_tensor(output_snapshots(task, "model.pt")[0], tensor(1))
    assert [s.status for s in output_snapshots(task, "latest")] == ["stored"]


def test_a_folder_saved_into_a_subfolder_of_an_unread_folder_snapshot_waits_for_that_read(local_store, work, copier):
    """save_pretrained("out") holds out/best/ from before; save_pretrained("out/best") right after
    rewrites those files in place: it waits until the copy of "out" has read them."""
    folder = work / "out"
    _write_folder(str(folder / "best"))  # before the task: not a save of this run
    old = (folder / "best" / "model.pt").read_bytes()
    task = _folder_saved_with_its_copy_held(local_store, copier, folder, "folder in a folder")
    _waits_until_read(copier, "the save rewrote files the outer folder's copy had not read",
                      save_folder, str(folder / "best"))
    task.close()

    [snap] = output_snapshots(task, "out")
    assert snap.status == "stored", snap.reason
    assert {f["name"]: f["digest"] for f in snap.files}["best/model.pt"] == bytes_digest(old)
    assert output_snapshots(task, "best")[0].status == "stored"


def test_a_folder_saved_over_a_file_whose_snapshot_is_unread_waits_for_that_read(local_store, work, copier):
    """torch.save(x, "export/model.pt") recorded, then the whole export folder saved, rewriting that file
    in place (a save nested in the folder's is not fenced itself): the folder's save waits for the file's
    copy. The same for a save of a file that a load is reading too: it waits for the folder's copy as well."""
    folder = work / "export"
    folder.mkdir()
    task = Task.init(project_name="pipeline", task_name="folder over a file", output_uri=local_store)
    copier.hold()
    torch.save(tensor(1), folder / "model.pt")
    assert copier.wait_for_calls(1)
    _waits_until_read(copier, "the folder's save rewrote a file whose copy had not read it", save_folder, str(folder))
    task.flush()  # read is not yet recorded stored (CI saw it pending here)
    assert_stored_tensor(output_snapshots(task, "model.pt")[0], tensor(1))

    copier.hold()
    save_folder(str(folder))  # unread: holds model.pt
    torch.load(folder / "model.pt")  # a load of the file: its own fence key, read for its lineage
    _waits_until_read(copier, "the save waited for the load's read only, not for the folder's copy",
                      torch.save, tensor(3), folder / "model.pt")
    task.close()
    assert [s.status for s in output_snapshots(task, "export")] == ["stored", "stored"]
    assert_stored_tensor(output_snapshots(task, "model.pt")[-1], tensor(3))


def _write_card(path: str) -> None:
    Path(path).write_text("# a card written after the save")


# Trainer.create_model_card, declared as the Transformers binding declares it (path: the card's)
create_model_card = wrapt.FunctionWrapper(_write_card, make_wrapper(
    Writes("tests", "create_model_card", path=Arg(0, "path")), "Test", "test"))


def test_a_declared_write_of_a_file_an_unread_folder_snapshot_holds_waits_for_that_read(local_store, work, copier):
    """A second run into the same output_dir: its final save holds the card the first run wrote, and the
    card is written anew right after: it waits until the folder's copy has read the old one."""
    folder = work / "out"
    folder.mkdir()
    (folder / "README.md").write_text("# the first run's card")
    task = _folder_saved_with_its_copy_held(local_store, copier, folder, "card")
    _waits_until_read(copier, "the card was rewritten before the folder's copy read it",
                      create_model_card, str(folder / "README.md"))
    task.close()
    [snap] = output_snapshots(task, "out")
    assert snap.status == "stored", snap.reason
    assert {f["name"]: f["digest"] for f in snap.files}["README.md"] == bytes_digest(b"# the first run's card")
    assert [m.name for m in task.models["output"]] == ["out"]  # the write records nothing


def test_a_save_beside_a_folder_whose_snapshot_is_unread_does_not_wait(local_store, work, copier):
    folder = work / "export"
    task = Task.init(project_name="pipeline", task_name="file beside a folder", output_uri=local_store)
    copier.hold()
    save_folder(str(folder))
    assert copier.wait_for_calls(1)
    for path in (folder / "new.pt", work / "export-2" / "model.pt", work / "model.pt"):
        path.parent.mkdir(exist_ok=True)
        beside = save_in_thread(tensor(3), path)
        beside.join(timeout=WAIT)
        assert not beside.is_alive(), f"a save of {path} waited for the copy of the folder"
    copier.release.set()
    task.close()


class _RaisesBeforeWriting:
    """A pickle_module whose name torch.save reads before it opens the file: `during` runs, then the
    save raises without having written a byte."""

    def __init__(self, during):
        self._during = during

    @property
    def __name__(self):
        self._during()
        raise ValueError("the save failed before writing")


def _saved_with_its_copy_held(store, copier, ckpt, name):
    """A task that saved tensor(1) at ckpt, its copy held: (task, that snapshot's job, the file's bytes)."""
    task = Task.init(project_name="pipeline", task_name=name, output_uri=store)
    copier.hold()
    torch.save(tensor(1), ckpt)
    assert copier.wait_for_calls(1)
    (first,) = task._runtime.pipeline.pending()
    return task, first, ckpt.read_bytes()


@pytest.mark.parametrize("copy_ends", ["after the failed save", "during the failed save"])
def test_a_save_that_raised_before_writing_leaves_the_old_file_set_aside_for_it_in_place(
        local_store, work, copier, copy_ends):
    """Without autolog, a save that raises before opening its path leaves the old file as it was. The
    file set aside for that save is put back, even when its copy was read meanwhile (the stager
    removed it then, and the user's checkpoint was left an empty file)."""
    ckpt = work / "ckpt.pt"
    task, first, old = _saved_with_its_copy_held(local_store, copier, ckpt, "set aside, failed save")

    def copy_ends_now():
        if copy_ends == "during the failed save":
            copier.release.set()
            wait_until(first.done.is_set, "the first snapshot's end")

    with pytest.raises(ValueError, match="failed before writing"):
        torch.save(tensor(2), ckpt, pickle_module=_RaisesBeforeWriting(copy_ends_now))
    assert ckpt.read_bytes() == old, f"the old checkpoint is now {len(ckpt.read_bytes())} bytes"
    copier.release.set()
    task.close()

    (snap,) = output_snapshots(task, "ckpt.pt")
    assert_stored_tensor(snap, tensor(1))
    assert not [p for p in Path(local_store).rglob("*.aside")], "a set-aside file was left behind"


def test_two_failed_saves_in_a_row_keep_the_old_file_when_the_copy_ends_between_them(
        local_store, work, copier, monkeypatch):
    """The second failed save sets the same file aside again, under the same name; the copy ends just
    after that rename, before the fence hands the new set-aside to the snapshot, so the stager tells
    the first one (settled: its file was put back). It removed the file the second save then needed
    back, and the checkpoint was left an empty file."""
    from autolog.snapshots import pipeline

    ckpt = work / "ckpt.pt"
    task, first, old = _saved_with_its_copy_held(local_store, copier, ckpt, "set aside twice")
    renames = []

    def set_aside_then_the_copy_ends(*args, **kwargs):
        entry = original(*args, **kwargs)
        renames.append(entry)
        if len(renames) == 2:  # a thread switch right after the rename: the stager reads the file to its end
            copier.release.set()
            wait_until(first.done.is_set, "the first snapshot's end")
        return entry

    original = pipeline.set_aside
    monkeypatch.setattr(pipeline, "set_aside", set_aside_then_the_copy_ends)
    for attempt in range(2):
        with pytest.raises(ValueError, match="failed before writing"):
            torch.save(tensor(2), ckpt, pickle_module=_RaisesBeforeWriting(lambda: None))
        assert ckpt.read_bytes() == old, f"after failed save {attempt + 1} the checkpoint is {len(ckpt.read_bytes())} bytes"
    assert len(renames) == 2 and None not in renames
    task.close()

    (snap,) = output_snapshots(task, "ckpt.pt")
    assert_stored_tensor(snap, tensor(1))
    assert not [p for p in Path(local_store).rglob("*.aside")], "a set-aside file was left behind"


def test_a_keras_save_told_not_to_overwrite_leaves_the_old_model(local_store, work, copier, monkeypatch):
    """Model.save(path, overwrite=False) asks first, and returns without writing when the answer is no.
    The placeholder made the path exist (so Keras asked, as it would have of the old file), and the
    save's normal return left it there: the user's model became an empty file."""
    keras = require_framework("keras")
    path = work / "model.keras"
    task = Task.init(project_name="pipeline", task_name="keras declined overwrite", output_uri=local_store)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    copier.hold()
    model.save(path)
    assert copier.wait_for_calls(1)
    old = path.read_bytes()
    asked = []
    monkeypatch.setattr("builtins.input", lambda prompt="": asked.append(prompt) or "n")

    assert model.save(path, overwrite=False) is None
    assert asked, "Keras did not ask before overwriting"
    assert path.read_bytes() == old, f"the model is now {len(path.read_bytes())} bytes"
    copier.release.set()
    task.close()

    snaps = output_snapshots(task, "model.keras")
    assert snaps and all(s.status == "stored" and s.size == len(old) for s in snaps)
    assert keras.models.load_model(path).count_params() == model.count_params()
    assert not [p for p in Path(local_store).rglob("*.aside")], "a set-aside file was left behind"


@pytest.mark.parametrize("kind", ["hard link", "symlink"])
def test_fence_waits_for_the_read_of_a_file_that_cannot_be_set_aside(local_store, work, copier, kind):
    """A file with a second name (hard link) or reached through a symlink is never renamed: that would
    cut the other name off its bytes. Its second save waits until the previous snapshot was read."""
    real = work / "real.pt"
    ckpt = work / "ckpt.pt"
    if kind == "symlink":
        ckpt.symlink_to(real)
    task = Task.init(project_name="pipeline", task_name=f"fence {kind}", output_uri=local_store)
    copier.hold()
    torch.save(tensor(1), ckpt)
    if kind == "hard link":
        os.link(ckpt, real)
    first_bytes = ckpt.read_bytes()
    assert copier.wait_for_calls(1)
    second = save_in_thread(tensor(2), ckpt)
    second.join(timeout=0.5)
    assert second.is_alive(), "the second save overwrote the file before its previous snapshot was read"
    assert ckpt.read_bytes() == first_bytes
    copier.release.set()
    second.join(timeout=WAIT)
    assert not second.is_alive()
    task.close()

    assert real.read_bytes() == ckpt.read_bytes(), "the other name no longer shows the file's bytes"
    first, last = output_snapshots(task, "ckpt.pt")
    assert_stored_tensor(first, tensor(1))
    assert_stored_tensor(last, tensor(2))


def test_the_fence_waits_for_the_read_of_the_previous_snapshot_never_its_upload(remote_store, work, put):
    """A file that cannot be set aside (a second name) makes the next save of its path wait until its
    snapshot was read into the staging copy; the upload of that copy, however slow, is not waited for."""
    ckpt, other_name = work / "ckpt.pt", work / "other-name.pt"
    task = Task.init(project_name="pipeline", task_name="upload off the fence", output_uri=remote_store)
    put.block()
    torch.save(tensor(1), ckpt)
    os.link(ckpt, other_name)
    second = save_in_thread(tensor(2), ckpt)
    second.join(timeout=10)  # a read of a few bytes; waiting for the held upload would last until it stalls
    blocked = second.is_alive()
    put.release()
    second.join(timeout=WAIT)
    assert not blocked, "a save waited for the upload of the previous snapshot of its path"
    task.close()
    for snap, step in zip(output_snapshots(task, "ckpt.pt"), (1, 2), strict=True):
        assert_stored_tensor(snap, tensor(step))


def test_the_fence_waits_for_the_copy_of_the_previous_snapshot_never_its_hash(any_store, work, hasher):
    """Hashing runs on a thread of its own: while the first snapshot's hash is held, the second snapshot
    is copied and a third save of the path goes on (with one thread for both, it waited for the hash)."""
    ckpt = work / "ckpt.pt"
    task = Task.init(project_name="pipeline", task_name="hash off the fence", output_uri=any_store)
    hasher.hold()
    torch.save(tensor(1), ckpt)
    assert hasher.wait_for_calls(1), "the first snapshot was never hashed"
    torch.save(tensor(2), ckpt)
    third = save_in_thread(tensor(3), ckpt)
    third.join(timeout=WAIT)
    assert not third.is_alive(), "a save waited for the hash of an earlier snapshot of its path"
    hasher.release.set()
    task.close()

    for snap, step in zip(output_snapshots(task, "ckpt.pt"), (1, 2, 3), strict=True):
        assert_stored_tensor(snap, tensor(step))


def test_a_save_autolog_does_not_record_still_protects_the_previous_snapshot_of_its_path(local_store, work, copier):
    """auto_connect_frameworks turns recording off for one framework, never the protection of another's
    snapshot: joblib (not recorded) overwriting a file torch.save just wrote, before it was read, writes
    a new file while the old one is read from where it was set aside."""
    joblib = require_framework("joblib")
    ckpt = work / "model.bin"
    task = Task.init(project_name="pipeline", task_name="filtered fence", output_uri=local_store,
                     auto_connect_frameworks={"joblib": False})
    copier.hold()
    torch.save(tensor(1), ckpt)
    first_inode = os.stat(ckpt).st_ino
    assert copier.wait_for_calls(1)
    other = threading.Thread(target=joblib.dump, args=({"not": "recorded"}, ckpt))
    other.start()
    other.join(timeout=WAIT)
    assert not other.is_alive()
    assert joblib.load(ckpt) == {"not": "recorded"}
    assert os.stat(ckpt).st_ino != first_inode, "the unrecorded save wrote over the file being read"
    copier.release.set()
    task.close()

    [snap] = output_snapshots(task, "model.bin")
    assert snap.status == "stored"
    assert_stored_tensor(snap, tensor(1))


def test_a_save_that_stopped_waiting_on_a_stalled_copy_names_the_overwrite_as_the_cause(
        local_store, work, copier, config, caplog, monkeypatch):
    """The copy of a hard-linked file's snapshot (which cannot be set aside) makes no progress: the next
    save of the path stops waiting after stall_timeout and overwrites the file. That earlier snapshot
    then fails, and its reason says why (a later save overwrote it unread), not only what the copy saw."""
    from autolog import safety

    monkeypatch.delenv("AUTOLOG_STRICT")  # the failure is the point: reported, not raised
    monkeypatch.setattr(safety, "_reported", set())  # reported afresh, whatever ran before in this process
    config(pipeline={"stall_timeout": 2})
    ckpt, other_name = work / "ckpt.pt", work / "same-file.pt"
    task = Task.init(project_name="pipeline", task_name="stalled fence", output_uri=local_store)
    copier.hold()
    torch.save(tensor(1), ckpt)
    os.link(ckpt, other_name)
    assert copier.wait_for_calls(1)
    second = save_in_thread(tensor(2), ckpt)
    second.join(timeout=WAIT)
    assert not second.is_alive(), "the save kept waiting on a copy that made no progress"
    copier.release.set()
    # The work moves again (a flush that began while it was stalled would give up at once, by design).
    assert copier.wait_for_calls(2), "the second snapshot was never copied"
    with caplog.at_level("WARNING", logger="autolog"):
        task.close()

    first, last = output_snapshots(task, "ckpt.pt")
    assert first.status == "failed", (first.status, first.reason)
    assert first.reason.startswith("overwritten by a later save of the same path before autolog could copy it"), \
        first.reason
    assert_stored_tensor(last, tensor(2))
    assert any("overwritten by a later save" in r.getMessage() for r in caplog.records), "close() did not say why"
