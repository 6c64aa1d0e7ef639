"""Point 9, retention's folder cleanup: when keep_last deletes a snapshot of a local store, the snapshot's
folder (`.../models/<model>.<id>/<seq>/`) goes with its object, and so does a model folder left empty;
nothing above the task's `models/` folder is ever removed (`retention._root_of` is where
`BlobStore.delete` stops), even when the output_uri path itself holds a `models` folder. A registered
object (register_uri=) lives outside the output_uri: its folder is the user's and always stays.
Also: `prune` called directly refuses keep_last < 1 with a message naming keep_last (config and
Task.init refuse it earlier, so only a direct call reaches that guard)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autolog import InputModel, OutputModel, Task
from autolog.context import default_context
from autolog.snapshots import retention
from pipeline_helpers import assert_stored_tensor, digest, files_under, object_path, output_snapshots, tensor

# Where the output_uri lies under the test's tmp_path: a plain folder, and one whose path already holds a
# `models` component (a cleanup bounded by the first `/models/` of the URI would climb above the root).
STORES = {"plain": ("store",), "under a models folder": ("models", "out")}


@pytest.fixture(params=list(STORES))
def output_root(request, tmp_path: Path) -> Path:
    return tmp_path.joinpath(*STORES[request.param])


def _deleted(snap, keep_last: int) -> bool:
    return snap.status == "deleted" and snap.reason == f"retention: keep_last={keep_last}"


def _folders(snap) -> tuple[Path, Path, Path]:
    """(snapshot folder, model folder, the task's models/ folder) of a snapshot stored as a file or a
    named folder: <output_uri>/<project>/<task>.<id>/models/<model>.<id8>/<seq:04d>/<name>."""
    snapshot_folder = object_path(snap.uri).parent
    assert snapshot_folder.name == f"{snap.seq:04d}", f"unexpected layout: {snap.uri}"
    model_folder = snapshot_folder.parent
    models = model_folder.parent
    assert models.name == "models", f"unexpected layout: {snap.uri}"
    return snapshot_folder, model_folder, models


def _assert_nothing_above_removed(models: Path, root: Path) -> None:
    """The task's models/ folder, every folder up to the output_uri, and the output_uri itself are there."""
    assert root in models.parents, (models, root)
    for folder in [models, *models.parents[: models.parents.index(root) + 1]]:
        assert folder.is_dir(), f"retention removed {folder} (at or above the task's models/ folder)"


def test_prune_called_directly_refuses_keep_last_below_one_and_names_it(local_store, work):
    task = Task.init(project_name="pipeline", task_name="prune guard", output_uri=local_store)
    for step in range(2):
        torch.save(tensor(step), work / "ckpt.pt")
    task.close()
    model_id = task.models["output"]["ckpt.pt"].id
    before = output_snapshots(task, "ckpt.pt")
    assert [s.status for s in before] == ["stored", "stored"]

    for keep_last in (0, -1):
        with pytest.raises(ValueError, match=rf"^keep_last must be at least 1, got {keep_last}\.$"):
            retention.prune(default_context(), model_id, keep_last)
        with pytest.raises(ValueError, match=rf"^keep_last must be at least 1, got {keep_last}\.$"):
            retention.prune(default_context(), model_id, keep_last, dry_run=True)
    assert output_snapshots(task, "ckpt.pt") == before, "a refused prune changed the records"
    for snap in before:
        assert_stored_tensor(snap, tensor(snap.seq - 1))


def test_keep_last_removes_each_emptied_snapshot_folder_and_nothing_above(output_root, work):
    task = Task.init(project_name="pipeline", task_name="retention folders", output_uri=str(output_root),
                     keep_last=2)
    for step in range(5):
        torch.save(tensor(step), work / "ckpt.pt")
    task.close()

    snaps = output_snapshots(task, "ckpt.pt")
    assert [s.seq for s in snaps] == [1, 2, 3, 4, 5]
    assert all(_deleted(s, 2) for s in snaps[:3]), [(s.seq, s.status, s.reason) for s in snaps]
    kept = snaps[3:]
    for snap in kept:
        assert_stored_tensor(snap, tensor(snap.seq - 1))
    _, model_folder, models = _folders(kept[0])
    for snap in snaps[:3]:
        snapshot_folder, *_ = _folders(snap)
        assert not object_path(snap.uri).exists(), f"object of deleted snapshot {snap.seq} still there"
        assert not snapshot_folder.exists(), f"emptied folder of deleted snapshot {snap.seq} left behind"
    # The model folder still holds the kept snapshots' folders, and only them.
    assert sorted(p.name for p in model_folder.iterdir()) == ["0004", "0005"]
    _assert_nothing_above_removed(models, output_root)
    assert set(files_under(models)) == {object_path(s.uri) for s in kept}


def _weights_folder(base: Path, step: int) -> Path:
    """A multi-file snapshot: a folder with nested relative names (weights/shard/0/w.pt, weights/config.json)."""
    folder = base / f"step{step}" / "weights"
    (folder / "shard" / "0").mkdir(parents=True)
    torch.save(tensor(step), folder / "shard" / "0" / "w.pt")
    (folder / "config.json").write_text(f'{{"step": {step}}}')
    return folder


def test_keep_last_removes_emptied_folders_of_multi_file_snapshots(output_root, work):
    # auto_connect off: the torch.save calls that write the folders are not themselves captured as models.
    task = Task.init(project_name="pipeline", task_name="retention folder snapshots", output_uri=str(output_root),
                     keep_last=1, auto_connect_frameworks=False)
    model = OutputModel(task=task, name="sharded")
    for step in range(3):
        model.update_weights_package(weights_path=_weights_folder(work, step), iteration=step)
    task.close()

    old1, old2, kept = model.snapshots
    assert _deleted(old1, 1) and _deleted(old2, 1), [(s.seq, s.status, s.reason) for s in model.snapshots]
    assert kept.status == "stored"
    stored = object_path(kept.uri)
    assert sorted(str(p.relative_to(stored)) for p in files_under(stored)) == ["config.json", "shard/0/w.pt"]
    assert torch.equal(torch.load(stored / "shard" / "0" / "w.pt", weights_only=True), tensor(2))
    _, model_folder, models = _folders(kept)
    for snap in (old1, old2):
        snapshot_folder, *_ = _folders(snap)
        assert not object_path(snap.uri).exists(), f"folder object of deleted snapshot {snap.seq} still there"
        assert not snapshot_folder.exists(), f"emptied folder of deleted snapshot {snap.seq} left behind"
    assert sorted(p.name for p in model_folder.iterdir()) == ["0003"]
    _assert_nothing_above_removed(models, output_root)
    assert set(files_under(models)) == set(files_under(stored))


def test_model_folder_emptied_by_retention_goes_but_the_models_folder_and_output_root_stay(output_root, work):
    """Task B's newest snapshot reuses task A's object (same bytes, same output_uri), so deleting B's older
    snapshot empties B's whole model folder: it goes, and the cleanup stops at B's models/ folder."""
    first = Task.init(project_name="pipeline", task_name="first", output_uri=str(output_root))
    torch.save(tensor(1), work / "ckpt.pt")
    first.close()
    (a1,) = output_snapshots(first, "ckpt.pt")
    assert_stored_tensor(a1, tensor(1))

    second = Task.init(project_name="pipeline", task_name="second", output_uri=str(output_root), keep_last=1)
    torch.save(tensor(0), work / "ckpt.pt")
    torch.save(tensor(1), work / "ckpt.pt")  # the bytes of a1: deduplicated, stored in first's folder
    second.close()

    b1, b2 = output_snapshots(second, "ckpt.pt")
    assert b2.uri == a1.uri, "precondition: the second task's newest snapshot reuses the first task's object"
    assert _deleted(b1, 1) and b2.status == "stored", [(s.seq, s.status, s.reason) for s in (b1, b2)]
    snapshot_folder, model_folder, models = _folders(b1)
    assert not object_path(b1.uri).exists(), "object of the deleted snapshot still there"
    assert not snapshot_folder.exists(), "emptied snapshot folder left behind"
    assert not model_folder.exists(), "emptied model folder left behind"
    assert models.is_dir() and list(models.iterdir()) == [], "the second task's models/ folder must stay (empty)"
    _assert_nothing_above_removed(models, output_root)
    assert_stored_tensor(b2, tensor(1))
    assert_stored_tensor(output_snapshots(first, "ckpt.pt")[0], tensor(1))


# A registered object's path: absolute or relative (the test runs in tmp_path, so the working folder is an
# ancestor of it), and in a folder whose name starts with a space (a path cut at whitespace instead of at
# its last '/' would name the folder above it as the limit).
REGISTERED = {
    "absolute": ("registered", "epoch_1"),
    "relative": ("registered", "epoch_1"),
    "folder name with a leading space": ("registered", " epoch_1"),
    "in a models folder of its own": ("elsewhere", "models", "epoch_1"),  # not autolog's models/ folder
    "in a models folder inside the output_uri": ("store", "models", "epoch_1"),  # local_store is tmp_path/store
}


@pytest.mark.parametrize("kind", list(REGISTERED))
def test_retention_never_deletes_a_registered_object_or_its_folder(kind, tmp_path, local_store, work, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path.joinpath(*REGISTERED[kind])
    folder.mkdir(parents=True)
    torch.save(tensor(7), folder / "w.pt")
    uri = str(Path(*REGISTERED[kind], "w.pt")) if kind == "relative" else str(folder / "w.pt")
    registered_digest = digest(folder / "w.pt")

    task = Task.init(project_name="pipeline", task_name="retention registered", output_uri=local_store,
                     keep_last=1, auto_connect_frameworks=False)
    model = OutputModel(task=task, name="weights")
    model.update_weights(register_uri=uri, iteration=1)
    torch.save(tensor(8), work / "w.pt")
    model.update_weights(weights_filename=work / "w.pt", iteration=2)
    task.close()

    registered, copied = model.snapshots
    assert registered.uri == uri and registered.digest == registered_digest
    # A registered object is the user's: retention (keep_last=1) prunes only what autolog copied.
    assert registered.status == "stored", (registered.status, registered.reason)
    assert (folder / "w.pt").is_file() and digest(folder / "w.pt") == registered_digest
    assert_stored_tensor(copied, tensor(8))
    assert folder.is_dir(), f"retention removed {folder}, the user's folder that held the registered object"
    assert folder.parent.is_dir() and tmp_path.is_dir()


OUTPUT_URIS = {"trailing slash": "store/", "name ending in X": "runsX", "name ending in a space": "runs "}


@pytest.mark.parametrize("spelled", list(OUTPUT_URIS))
def test_keep_last_prunes_under_an_output_uri_however_it_is_spelled(spelled, tmp_path, work):
    output_uri = f"{tmp_path}/{OUTPUT_URIS[spelled]}"
    task = Task.init(project_name="pipeline", task_name="retention root", output_uri=output_uri, keep_last=1)
    for step in range(3):
        torch.save(tensor(step), work / "ckpt.pt")
    task.close()
    snaps = output_snapshots(task, "ckpt.pt")
    assert [_deleted(s, 1) for s in snaps] == [True, True, False]
    assert_stored_tensor(snaps[-1], tensor(2))


def test_models_with_no_copies_to_prune_are_left_alone(tmp_path, work):
    """A run recorded by path only (output_uri=None) and a model no task saved have no copies: pruning
    them deletes nothing and does not fail."""
    task = Task.init(project_name="pipeline", task_name="no copies", output_uri=None)
    for step in range(2):
        torch.save(tensor(step), work / "ckpt.pt")
    task.close()
    by_path = task.models["output"]["ckpt.pt"].id
    torch.save(tensor(9), tmp_path / "found.pt")
    imported = InputModel.import_model(str(tmp_path / "found.pt"), name="found")
    ctx = default_context()
    for model_id in (by_path, imported.id):
        before = ctx.store.snapshots_of(model_id)
        assert retention.prune(ctx, model_id, keep_last=1) == []
        assert ctx.store.snapshots_of(model_id) == before
