"""Keras 3 binding: whole-model files (.keras, .h5), weights files, and SavedModel export.

Model.save and Model.export call TensorFlow internals (tf.saved_model.save for export): only the
outermost, Keras call is recorded.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from conformance import Case, make_tests

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up noise, here and in the scenarios

IMPORTS = "import numpy as np\nimport keras"
SETUP = """
keras.utils.set_random_seed(0)
def build():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)])
model = build()
x = np.linspace(-1.0, 1.0, 8, dtype="float32").reshape(2, 4)
def step():  # new weights before every save
    model.set_weights([w + 0.1 for w in model.get_weights()])
def same_weights(other):
    mine, theirs = model.get_weights(), other.get_weights()
    return len(mine) == len(theirs) and all(np.array_equal(a, b) for a, b in zip(mine, theirs))
"""

CASES = [
    Case(
        id="keras.Model.save-keras", requires="keras", imports=IMPORTS, setup=SETUP,
        framework="Keras", filename="model.keras",
        save="step(); saved = model.save(path)",
        load="loaded = keras.saving.load_model(path)",
        check="same_weights(loaded)",
    ),
    Case(
        id="keras.Model.save-h5", requires="keras", imports=IMPORTS, setup=SETUP,
        framework="Keras", filename="model.h5",
        save="step(); saved = model.save(path)",
        load="loaded = keras.models.load_model(path)",
        check="same_weights(loaded)",
    ),
    Case(
        id="keras.Model.save_weights", requires="keras", imports=IMPORTS, setup=SETUP,
        framework="Keras", filename="model.weights.h5",
        save="step(); saved = model.save_weights(path)",
        load="loaded = build(); loaded.load_weights(path)",
        check="same_weights(loaded)",
    ),
    Case(
        # a SavedModel folder written by Keras (through tf.saved_model.save), loaded by TensorFlow
        id="keras.Model.export", requires="keras", imports=IMPORTS + "\nimport tensorflow as tf", setup=SETUP,
        framework="Keras", filename="exported",
        save="step(); saved = model.export(path, verbose=False)",
        load="loaded = tf.saved_model.load(path)",
        check="np.allclose(loaded.serve(x).numpy(), model(x).numpy())",
    ),
]

(test_saves_are_snapshots, test_load_in_another_process_links_to_the_producer,
 test_logging_failures_never_reach_the_user, test_exceptions_pass_through_and_closed_task_records_nothing) = make_tests(CASES)


# -- Keras specifics, in this process ------------------------------------------------------


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def _tiny_model(keras):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)])


def test_save_and_export_are_one_keras_snapshot_each(keras, tmp_path: Path):
    """Keras' own TF calls (tf.saved_model.save inside export) add no TensorFlow model or snapshot."""
    from autolog import Task

    task = Task.init(project_name="bindings", task_name="keras-nesting", output_uri=str(tmp_path / "out"))
    model = _tiny_model(keras)
    model.save(tmp_path / "model.keras")
    model.save(tmp_path / "model.h5")
    model.save_weights(tmp_path / "model.weights.h5")
    model.export(tmp_path / "exported", verbose=False)
    assert (tmp_path / "exported" / "saved_model.pb").is_file()
    assert task.flush()

    outputs = {m.name: m for m in task.models["output"]}
    assert sorted(outputs) == ["exported", "model.h5", "model.keras", "model.weights.h5"]
    for name, m in outputs.items():
        assert m.framework == "Keras", (name, m.framework)
        assert [s.status for s in m.snapshots] == ["stored"], (name, m.snapshots)
    # the export is one folder snapshot holding the whole SavedModel
    names = {f["name"] for f in outputs["exported"].snapshots[0].files}
    assert {"saved_model.pb", "variables/variables.index"} <= names, names
    assert any(n.startswith("variables/variables.data-") for n in names), names
    assert task.models["input"] == []


def test_model_checkpoint_callback_gives_one_model_with_a_snapshot_per_epoch(keras, tmp_path: Path):
    import numpy as np

    from autolog import Task

    task = Task.init(project_name="bindings", task_name="keras-fit", output_uri=str(tmp_path / "out"))
    model = _tiny_model(keras)
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 4)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    target = tmp_path / "ckpt.keras"
    saver = keras.callbacks.ModelCheckpoint(str(target), save_best_only=False)
    model.fit(X, y, epochs=3, batch_size=8, verbose=0, callbacks=[saver])
    assert task.flush()

    [ckpt] = task.models["output"]
    assert (ckpt.name, ckpt.framework) == ("ckpt.keras", "Keras")
    snaps = ckpt.snapshots
    assert [s.seq for s in snaps] == [1, 2, 3]
    assert [s.status for s in snaps] == ["stored"] * 3
    assert len({s.digest for s in snaps}) == 3  # each epoch's weights, not one save three times
    # the newest snapshot is the model fit() ended with
    restored = keras.saving.load_model(ckpt.get_local_copy())
    assert all(np.array_equal(a, b) for a, b in zip(restored.get_weights(), model.get_weights()))


def test_saving_functions_are_captured_like_the_methods(keras, tmp_path: Path):
    """keras.saving.save_model / save_weights / load_weights: the functions Model.save & co. alias."""
    import numpy as np

    from autolog import Task

    task = Task.init(project_name="bindings", task_name="keras-functions", output_uri=str(tmp_path / "out"))
    model = _tiny_model(keras)
    keras.saving.save_model(model, tmp_path / "f.keras")
    model.set_weights([w + 1.0 for w in model.get_weights()])
    keras.models.save_model(model, tmp_path / "f.keras")
    keras.saving.save_weights(model, tmp_path / "f.weights.h5")
    other = _tiny_model(keras)
    keras.saving.load_weights(other, tmp_path / "f.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(other.get_weights(), model.get_weights()))
    assert task.flush()

    outputs = {m.name: m for m in task.models["output"]}
    assert sorted(outputs) == ["f.keras", "f.weights.h5"]
    assert [m.framework for m in outputs.values()] == ["Keras", "Keras"]
    assert [s.status for s in outputs["f.keras"].snapshots] == ["stored", "stored"]
    assert [s.status for s in outputs["f.weights.h5"].snapshots] == ["stored"]
    [loaded] = task.models["input"]
    assert loaded.id == outputs["f.weights.h5"].id
