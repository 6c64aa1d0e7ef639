"""TensorFlow 2 binding: object-based checkpoints (save/write, CheckpointManager) and SavedModel.

A checkpoint prefix (ckpt-3 -> ckpt-3.index + ckpt-3.data-*) is one snapshot, and the numbered
saves of one prefix ("ckpt") are snapshots of one model named after the prefix.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from conformance import Case, make_tests

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up noise, here and in the scenarios

IMPORTS = "import os\nimport tensorflow as tf"

# A checkpointable state whose values change before every save, and a fresh one to restore into.
CKPT_SETUP = """
v = tf.Variable([1.0, 2.0, 3.0])
ckpt = tf.train.Checkpoint(v=v)
def step():
    v.assign_add([0.5, 0.25, 0.125])
def fresh():
    return tf.train.Checkpoint(v=tf.Variable([0.0, 0.0, 0.0]))
"""
CKPT_CHECK = "loaded.v.numpy().tolist() == v.numpy().tolist()"

# One CheckpointManager per target (a save into another `path` gets its own manager, as users do).
MANAGER_SETUP = CKPT_SETUP + """
managers = {}
def manager():
    if path not in managers:
        managers[path] = tf.train.CheckpointManager(
            ckpt, os.path.dirname(path), checkpoint_name=os.path.basename(path), max_to_keep=5)
    return managers[path]
"""

SAVED_MODEL_SETUP = """
class Scale(tf.Module):
    def __init__(self):
        super().__init__()
        self.w = tf.Variable([1.0, 2.0, 3.0])

    @tf.function(input_signature=[tf.TensorSpec([3], tf.float32)])
    def __call__(self, x):
        return x * self.w

module = Scale()
def step():
    module.w.assign_add([0.5, 0.25, 0.125])
"""

CASES = [
    Case(
        # save() writes ckpt-1, ckpt-2, ... plus the `checkpoint` state file that latest_checkpoint reads:
        # the copied-file test copies all of them ("*"); the model is named after the prefix ("ckpt").
        id="tf.Checkpoint.save", requires="tensorflow", imports=IMPORTS, setup=CKPT_SETUP,
        framework="TensorFlow", filename="ckpt", copy_files="*",
        save="step(); saved = ckpt.save(path)",
        load="loaded = fresh(); loaded.restore(tf.train.latest_checkpoint(os.path.dirname(path)))"
             ".assert_existing_objects_matched()",
        check=CKPT_CHECK,
    ),
    Case(
        # write() overwrites ckpt.index + ckpt.data-* each time; there is no file named "ckpt" to copy.
        id="tf.Checkpoint.write", requires="tensorflow", imports=IMPORTS, setup=CKPT_SETUP,
        framework="TensorFlow", filename="ckpt", copy_files="ckpt.*",
        save="step(); saved = ckpt.write(path)",
        load="loaded = fresh(); loaded.read(path).assert_existing_objects_matched()",
        check=CKPT_CHECK,
    ),
    Case(
        id="tf.saved_model.save", requires="tensorflow", imports=IMPORTS, setup=SAVED_MODEL_SETUP,
        framework="TensorFlow", filename="saved_model",
        save="step(); saved = tf.saved_model.save(module, path)",
        load="loaded = tf.saved_model.load(path)",
        check="loaded(tf.constant([1.0, 1.0, 1.0])).numpy().tolist() == module.w.numpy().tolist()",
    ),
    Case(
        # The manager's file prefix is <directory>/<checkpoint_name> = path: the model is named "ckpt".
        id="tf.CheckpointManager.save", requires="tensorflow", imports=IMPORTS, setup=MANAGER_SETUP,
        framework="TensorFlow", filename="ckpt", copy_files="*",
        save="step(); saved = manager().save()",
        load="loaded = fresh(); loaded.restore(manager().latest_checkpoint).assert_existing_objects_matched()",
        check=CKPT_CHECK,
    ),
]

(test_saves_are_snapshots, test_load_in_another_process_links_to_the_producer,
 test_logging_failures_never_reach_the_user, test_exceptions_pass_through_and_closed_task_records_nothing) = make_tests(CASES)


# -- TensorFlow specifics, in this process ---------------------------------------------------


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def _only_output(task):
    [model] = task.models["output"]
    return model


def test_prefix_snapshot_holds_exactly_its_index_and_data_files(tf, tmp_path: Path):
    from autolog import Task

    task = Task.init(project_name="bindings", task_name="tf-prefix", output_uri=str(tmp_path / "out"))
    work = tmp_path / "work"
    work.mkdir()
    # a user's file next to the checkpoint, whose name merely starts with the prefix
    (work / "ckpt-1.metrics.json").write_text('{"loss": 0.5}')
    v = tf.Variable([1.0, 2.0, 3.0])
    ckpt = tf.train.Checkpoint(v=v)
    first = ckpt.save(str(work / "ckpt"))
    v.assign([4.0, 5.0, 6.0])
    second = ckpt.save(str(work / "ckpt"))
    assert (os.path.basename(first), os.path.basename(second)) == ("ckpt-1", "ckpt-2")
    assert task.flush()

    model = _only_output(task)
    assert (model.name, model.framework) == ("ckpt", "TensorFlow")
    snaps = model.snapshots
    assert [s.status for s in snaps] == ["stored", "stored"]
    for snap, prefix in zip(snaps, ("ckpt-1", "ckpt-2")):
        names = sorted(f["name"] for f in snap.files)
        tf_files = sorted(p.name for p in [*work.glob(f"{prefix}.data-*"), work / f"{prefix}.index"] if p.is_file())
        assert len(tf_files) == 2, tf_files  # one .data shard and the .index: what TF wrote
        assert names == tf_files, (names, tf_files)
        # the `checkpoint` state file is the directory's, not part of any snapshot
        assert "checkpoint" not in names

    # the stored copy of an older snapshot is a prefix that TF restores, with that save's values
    local = model.get_local_copy(version=1)
    assert os.path.basename(local) == "ckpt-1"
    assert not str(local).startswith(str(work))
    restored = tf.train.Checkpoint(v=tf.Variable([0.0, 0.0, 0.0]))
    restored.restore(local).assert_existing_objects_matched()
    assert restored.v.numpy().tolist() == [1.0, 2.0, 3.0]
    fresh = tf.train.Checkpoint(v=tf.Variable([0.0, 0.0, 0.0]))
    fresh.restore(model.get_local_copy()).assert_existing_objects_matched()
    assert fresh.v.numpy().tolist() == [4.0, 5.0, 6.0]


def test_checkpoint_manager_sweeping_old_files_keeps_every_snapshot(tf, tmp_path: Path):
    from autolog import Task

    task = Task.init(project_name="bindings", task_name="tf-manager", output_uri=str(tmp_path / "out"))
    work = tmp_path / "work"
    v = tf.Variable([1.0, 2.0])
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=v), str(work), max_to_keep=1)
    values = []
    for i in range(3):
        v.assign([float(i), float(10 * i)])
        values.append(v.numpy().tolist())
        assert os.path.basename(manager.save()) == f"ckpt-{i + 1}"
    # the manager deleted ckpt-1 and ckpt-2 (inside the next save): only ckpt-3 and the state file are left
    assert sorted(p.name for p in work.iterdir() if not p.name.startswith("ckpt-3.")) == ["checkpoint"]

    assert task.flush()
    model = _only_output(task)
    assert (model.name, model.framework) == ("ckpt", "TensorFlow")
    assert [s.status for s in model.snapshots] == ["stored"] * 3
    assert [s.seq for s in model.snapshots] == [1, 2, 3]
    assert [s.iteration for s in model.snapshots] == [1, 2, 3]
    for seq, expected in zip((1, 2, 3), values):
        local = model.get_local_copy(version=seq)
        assert os.path.basename(local) == f"ckpt-{seq}"
        restored = tf.train.Checkpoint(v=tf.Variable([0.0, 0.0]))
        restored.restore(local).assert_existing_objects_matched()
        assert restored.v.numpy().tolist() == expected


def test_saved_model_still_captured_after_tf_saved_model_is_imported_by_name(tf, tmp_path: Path):
    """`from tensorflow.saved_model.experimental import ...` (Keras' Model.export does it) imports
    tensorflow.saved_model as a module of its own, which replaces the `tf.saved_model` attribute:
    tf.saved_model.save / load reached through it must still be captured."""
    import importlib

    from autolog import Task

    task = Task.init(project_name="bindings", task_name="tf-saved-model-reimport", output_uri=str(tmp_path / "out"))
    importlib.import_module("tensorflow.saved_model.experimental")
    module = tf.Module()
    module.v = tf.Variable([1.0, 2.0])
    tf.saved_model.save(module, str(tmp_path / "sm"))
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    assert loaded.v.numpy().tolist() == [1.0, 2.0]
    assert task.flush()

    model = _only_output(task)
    assert (model.name, model.framework) == ("sm", "TensorFlow")
    assert [s.status for s in model.snapshots] == ["stored"]
    assert [m.id for m in task.models["input"]] == [model.id]
