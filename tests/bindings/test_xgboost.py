"""XGBoost binding: native Booster, the scikit-learn API, Booster(model_file=...), and joblib pickles."""
from __future__ import annotations

from pathlib import Path

import pytest
from conformance import Case, make_tests

IMPORTS = "import numpy as np\nimport xgboost as xgb"
DATA = """
import pathlib
from sklearn.datasets import load_digits
X, y = load_digits(return_X_y=True)
rounds = [0]
"""
BOOSTER_SETUP = DATA + """
dtrain = xgb.DMatrix(X, label=y)
PARAMS = {"objective": "multi:softprob", "num_class": 10, "max_depth": 2, "nthread": 1, "seed": 0}
bst = None
def step():  # one more boosting round each time: a different model
    global bst
    rounds[0] += 1
    bst = xgb.train(PARAMS, dtrain, num_boost_round=rounds[0])
"""
BOOSTER_CHECK = ("loaded.num_boosted_rounds() == bst.num_boosted_rounds()"
                 " and np.array_equal(loaded.predict(dtrain), bst.predict(dtrain))")
CLASSIFIER_SETUP = DATA + """
clf = None
def step():
    global clf
    rounds[0] += 1
    clf = xgb.XGBClassifier(n_estimators=rounds[0], max_depth=2, n_jobs=1, random_state=0).fit(X, y)
"""
CLASSIFIER_CHECK = ("type(loaded) is xgb.XGBClassifier"
                    " and loaded.get_booster().num_boosted_rounds() == clf.get_booster().num_boosted_rounds()"
                    " and np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))")

CASES = [
    Case(
        id="Booster.save_model-json", requires="xgboost", imports=IMPORTS, setup=BOOSTER_SETUP,
        framework="XGBoost", filename="booster.json",
        save="step(); saved = bst.save_model(path)",
        load="loaded = xgb.Booster(); loaded.load_model(path)",
        check=BOOSTER_CHECK,
    ),
    Case(
        id="Booster.save_model-ubj-pathlike", requires="xgboost", imports=IMPORTS, setup=BOOSTER_SETUP,
        framework="XGBoost", filename="booster.ubj",
        save="step(); saved = bst.save_model(pathlib.Path(path))",
        load="loaded = xgb.Booster(); loaded.load_model(fname=pathlib.Path(path))",
        check=BOOSTER_CHECK,
    ),
    Case(
        id="XGBClassifier.save_model", requires="xgboost", imports=IMPORTS, setup=CLASSIFIER_SETUP,
        framework="XGBoost", filename="classifier.json",
        save="step(); saved = clf.save_model(path)",
        load="loaded = xgb.XGBClassifier(); loaded.load_model(path)",
        check=CLASSIFIER_CHECK,
    ),
    Case(
        id="Booster-model_file", requires="xgboost", imports=IMPORTS, setup=BOOSTER_SETUP,
        framework="XGBoost", filename="model-file.json",
        save="step(); saved = bst.save_model(fname=path)",
        load="loaded = xgb.Booster(model_file=path)",
        check=BOOSTER_CHECK,
    ),
    Case(
        id="joblib.dump-XGBClassifier", requires="xgboost", imports=IMPORTS + "\nimport joblib",
        setup=CLASSIFIER_SETUP, framework="XGBoost", filename="classifier.joblib",
        save="step(); saved = joblib.dump(clf, path)",
        load="loaded = joblib.load(path)",
        check=CLASSIFIER_CHECK,
    ),
]

(test_saves_are_snapshots, test_load_in_another_process_links_to_the_producer,
 test_logging_failures_never_reach_the_user, test_exceptions_pass_through_and_closed_task_records_nothing) = make_tests(CASES)


# -- XGBoost specifics, in this process -----------------------------------------------------


@pytest.fixture
def digits():
    pytest.importorskip("xgboost")
    from sklearn.datasets import load_digits

    return load_digits(return_X_y=True)


def test_xgbclassifier_save_model_is_one_snapshot_per_call(digits, tmp_path: Path):
    """XGBModel.save_model calls Booster.save_model: the outer call alone is logged, as XGBoost."""
    import numpy as np
    import xgboost as xgb

    from autolog import Task

    X, y = digits
    task = Task.init(project_name="bindings", task_name="xgb-sklearn", output_uri=True)
    path = tmp_path / "clf.json"
    classifiers = []
    for n in (2, 3, 4):
        clf = xgb.XGBClassifier(n_estimators=n, max_depth=2, n_jobs=1, random_state=0).fit(X, y)
        clf.save_model(str(path))
        classifiers.append(clf)

    assert task.flush()  # snapshots are stored in the background
    [model] = task.models["output"]
    assert model.name == "clf.json" and model.framework == "XGBoost" and model.origin == "capture"
    snaps = model.snapshots
    assert [s.seq for s in snaps] == [1, 2, 3] and [s.status for s in snaps] == ["stored"] * 3
    assert len({s.digest for s in snaps}) == 3
    # the scikit-learn load of the file is one link (XGBModel.load_model calls Booster.load_model), to the newest
    restored = xgb.XGBClassifier()
    restored.load_model(path)
    assert len(task.models["input"]) == 1  # task.models waits for the lineage of loads so far
    loads = task._ctx.store.loads_by_task(task.id)
    assert [(ld.model_id, ld.snapshot_id) for ld in loads] == [(model.id, snaps[-1].id)]
    # each snapshot is what that call wrote (and loading a stored copy links that snapshot)
    for seq, clf in enumerate(classifiers, start=1):
        restored = xgb.XGBClassifier()
        restored.load_model(model.get_local_copy(seq))
        assert np.array_equal(restored.predict_proba(X), clf.predict_proba(X))
    assert [m.id for m in task.models["input"]] == [model.id]
    assert {ld.snapshot_id for ld in task._ctx.store.loads_by_task(task.id)} == {s.id for s in snaps}


def test_xgbregressor_save_model_is_captured_as_xgboost(digits, tmp_path: Path):
    import xgboost as xgb

    from autolog import Task

    X, y = digits
    task = Task.init(project_name="bindings", task_name="xgb-regressor", output_uri=True)
    xgb.XGBRegressor(n_estimators=2, max_depth=2, n_jobs=1).fit(X, y.astype(float)).save_model(tmp_path / "reg.ubj")
    assert task.flush()
    [model] = task.models["output"]
    assert (model.name, model.framework, len(model.snapshots)) == ("reg.ubj", "XGBoost", 1)


@pytest.mark.parametrize("kind", ["XGBClassifier", "Booster"])
def test_joblib_dump_of_an_xgboost_model_is_one_xgboost_snapshot(kind: str, digits, tmp_path: Path):
    import joblib
    import numpy as np
    import xgboost as xgb

    from autolog import Task

    X, y = digits
    task = Task.init(project_name="bindings", task_name="xgb-joblib", output_uri=True)
    clf = xgb.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1, random_state=0).fit(X, y)
    obj = clf if kind == "XGBClassifier" else clf.get_booster()
    path = tmp_path / "model.joblib"
    joblib.dump(obj, path)

    assert task.flush()
    [model] = task.models["output"]
    assert model.name == "model.joblib" and model.framework == "XGBoost"
    [snap] = model.snapshots
    assert snap.status == "stored"
    restored = joblib.load(model.get_local_copy())
    expected = clf.predict_proba(X) if kind == "XGBClassifier" else obj.predict(xgb.DMatrix(X))
    got = restored.predict_proba(X) if kind == "XGBClassifier" else restored.predict(xgb.DMatrix(X))
    assert np.array_equal(got, expected)


def test_booster_from_a_file_links_but_in_memory_models_do_not(digits, tmp_path: Path):
    """Booster(model_file=path) is a load; Booster(model_file=<bytearray or Booster>) reads no file."""
    import xgboost as xgb

    from autolog import Task

    X, y = digits
    bst = xgb.train({"objective": "multi:softprob", "num_class": 10, "max_depth": 2, "nthread": 1},
                    xgb.DMatrix(X, label=y), num_boost_round=2)
    path = tmp_path / "native.json"
    bst.save_model(path)  # before the task: a file of unknown origin

    task = Task.init(project_name="bindings", task_name="xgb-load", output_uri=True)
    xgb.Booster(model_file=bst.save_raw("ubj"))
    xgb.Booster(model_file=bst)
    store = task._ctx.store
    assert task.models["input"] == [] and store.loads_by_task(task.id) == []

    xgb.Booster(model_file=str(path))
    [model] = task.models["input"]  # saved before the task: an imported model, named as XGBoost
    assert (model.origin, model.framework, model.name) == ("imported", "XGBoost", "native.json")
    [load] = store.loads_by_task(task.id)
    assert Path(load.path) == path
    assert task.models["output"] == []


def test_training_on_from_a_model_file_is_a_load(digits, tmp_path: Path):
    """xgb.train(xgb_model=path) builds Booster(model_file=path), which calls Booster.load_model."""
    import xgboost as xgb

    from autolog import Task

    X, y = digits
    params = {"objective": "multi:softprob", "num_class": 10, "max_depth": 2, "nthread": 1}
    dtrain = xgb.DMatrix(X, label=y)
    task = Task.init(project_name="bindings", task_name="xgb-warm-start", output_uri=True)
    first = xgb.train(params, dtrain, num_boost_round=2)
    path = tmp_path / "first.ubj"
    first.save_model(path)
    more = xgb.train(params, dtrain, num_boost_round=2, xgb_model=str(path))
    assert more.num_boosted_rounds() == 4  # it really continued from the file

    assert task.flush()
    [produced] = task.models["output"]
    [snap] = produced.snapshots
    assert [m.id for m in task.models["input"]] == [produced.id]
    [load] = task._ctx.store.loads_by_task(task.id)
    assert (load.snapshot_id, Path(load.path)) == (snap.id, path)
