"""joblib binding: joblib.dump/load of anything, the model's framework named from the saved object."""
from __future__ import annotations

from pathlib import Path

import pytest
from conformance import Case, make_tests

IMPORTS = "import joblib\nimport numpy as np\nfrom sklearn.linear_model import LogisticRegression"
SKLEARN_SETUP = """
from sklearn.datasets import load_digits
X, y = load_digits(return_X_y=True)
X, y = X[:400] / 16.0, y[:400]
C = [0.05]
clf = None
def step():  # a different model each time: a new C gives new coefficients
    global clf
    C[0] *= 2
    clf = LogisticRegression(C=C[0], max_iter=2000).fit(X, y)
"""
SKLEARN_CHECK = ("type(loaded) is LogisticRegression and loaded.C == clf.C"
                 " and np.array_equal(loaded.coef_, clf.coef_)"
                 " and np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))")

DICT_SETUP = """
rng = np.random.default_rng(0)
data = {"weights": rng.normal(size=(16, 8)), "bias": rng.normal(size=8), "steps": np.zeros(1, dtype=np.int64)}
def step():
    data["weights"] += 0.5
    data["steps"] += 1
"""

CASES = [
    Case(
        id="joblib.dump-sklearn", requires="sklearn", imports=IMPORTS, setup=SKLEARN_SETUP,
        framework="scikit-learn", filename="logreg.joblib",
        save="step(); saved = joblib.dump(clf, path)",
        load="loaded = joblib.load(path)",
        check=SKLEARN_CHECK,
    ),
    Case(
        id="joblib.dump-dict", requires="joblib", imports="import joblib\nimport numpy as np", setup=DICT_SETUP,
        framework="joblib", filename="arrays.pkl",
        save="step(); saved = joblib.dump(data, path)",
        load="loaded = joblib.load(path)",
        check="set(loaded) == set(data) and all(np.array_equal(loaded[k], v) for k, v in data.items())",
    ),
    Case(
        id="joblib.dump-compress3", requires="sklearn", imports=IMPORTS, setup=SKLEARN_SETUP,
        framework="scikit-learn", filename="logreg-compressed.joblib",
        save="step(); saved = joblib.dump(clf, path, compress=3)",
        load="loaded = joblib.load(path)",
        check=SKLEARN_CHECK,
    ),
]

(test_saves_are_snapshots, test_load_in_another_process_links_to_the_producer,
 test_logging_failures_never_reach_the_user, test_exceptions_pass_through_and_closed_task_records_nothing) = make_tests(CASES)


# -- joblib specifics, in this process ------------------------------------------------------


def _output(task, name: str):
    [model] = [m for m in task.models["output"] if m.name == name]
    return model


def test_framework_is_named_from_the_saved_object(tmp_path: Path):
    """One task, several objects: each model carries its own object's framework."""
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    from sklearn.tree import DecisionTreeClassifier

    from autolog import Task

    task = Task.init(project_name="bindings", task_name="joblib-frameworks", output_uri=True)
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(60, 3)), rng.integers(0, 2, size=60)
    joblib.dump(DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y), tmp_path / "tree.joblib")
    joblib.dump({"a": [1, 2, 3]}, str(tmp_path / "plain.pkl"))
    with open(tmp_path / "handle.pkl", "wb") as f:  # an open file: named by its path
        joblib.dump([1.0, 2.0], f)

    assert task.flush()  # snapshots are stored in the background
    models = {m.name: m for m in task.models["output"]}
    assert set(models) == {"tree.joblib", "plain.pkl", "handle.pkl"}
    assert models["tree.joblib"].framework == "scikit-learn"
    assert models["plain.pkl"].framework == "joblib"
    assert models["handle.pkl"].framework == "joblib"
    assert all(len(m.snapshots) == 1 for m in models.values())
    # the stored snapshot is the file that was written
    restored = joblib.load(models["tree.joblib"].get_local_copy())
    assert np.array_equal(restored.predict(X), joblib.load(tmp_path / "tree.joblib").predict(X))


def test_compressed_dump_snapshot_holds_the_compressed_file(tmp_path: Path):
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    from autolog import Task

    task = Task.init(project_name="bindings", task_name="joblib-compress", output_uri=True)
    data = {"zeros": np.zeros((200, 200))}  # compresses to a tiny fraction
    path = tmp_path / "zeros.joblib"
    joblib.dump(data, path, compress=3)
    assert task.flush()
    model = _output(task, "zeros.joblib")
    local = Path(model.get_local_copy())
    assert local.read_bytes() == path.read_bytes()
    assert local.stat().st_size < data["zeros"].nbytes // 10
    assert np.array_equal(joblib.load(local)["zeros"], data["zeros"])
