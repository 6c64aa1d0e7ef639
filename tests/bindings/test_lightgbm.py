"""LightGBM binding: Booster.save_model (also as LGBMModel.booster_.save_model), lgb.Booster(model_file=...)."""
from __future__ import annotations

from pathlib import Path

import pytest
from conformance import Case, make_tests

IMPORTS = "import numpy as np\nimport lightgbm as lgb"
SETUP = """
from sklearn.datasets import load_digits
X, y = load_digits(return_X_y=True)
PARAMS = {"objective": "multiclass", "num_class": 10, "num_leaves": 7, "verbose": -1, "num_threads": 1,
          "seed": 0, "deterministic": True}
rounds = [0]
bst = None
def step():  # one more boosting round each time: a different model
    global bst
    rounds[0] += 1
    bst = lgb.train(PARAMS, lgb.Dataset(X, label=y), num_boost_round=rounds[0])
"""
CHECK = ("loaded.num_trees() == bst.num_trees()"
         " and loaded.model_to_string() == bst.model_to_string()"
         " and np.array_equal(loaded.predict(X), bst.predict(X))")

CASES = [
    Case(
        id="Booster.save_model-Booster-model_file", requires="lightgbm", imports=IMPORTS, setup=SETUP,
        framework="LightGBM", filename="model.txt",
        save="step(); saved = bst.save_model(path)",
        load="loaded = lgb.Booster(model_file=path)",
        check=CHECK,
    ),
]

(test_saves_are_snapshots, test_load_in_another_process_links_to_the_producer,
 test_logging_failures_never_reach_the_user, test_exceptions_pass_through_and_closed_task_records_nothing) = make_tests(CASES)


# -- LightGBM specifics, in this process ----------------------------------------------------

PARAMS = {"objective": "multiclass", "num_class": 10, "num_leaves": 7, "verbose": -1, "num_threads": 1, "seed": 0}


@pytest.fixture
def digits():
    pytest.importorskip("lightgbm")
    from sklearn.datasets import load_digits

    return load_digits(return_X_y=True)


def test_lgbmclassifier_booster_save_model_is_captured(digits, tmp_path: Path):
    import lightgbm as lgb
    import numpy as np

    from autolog import Task

    X, y = digits
    task = Task.init(project_name="bindings", task_name="lgbm-sklearn", output_uri=True)
    clf = lgb.LGBMClassifier(n_estimators=3, num_leaves=7, verbose=-1, n_jobs=1, random_state=0).fit(X, y)
    path = tmp_path / "lgbm.txt"
    assert clf.booster_.save_model(path) is clf.booster_  # the return value passes through

    assert task.flush()  # snapshots are stored in the background
    [model] = task.models["output"]
    assert (model.name, model.framework, model.origin) == ("lgbm.txt", "LightGBM", "capture")
    [snap] = model.snapshots
    assert snap.status == "stored"
    restored = lgb.Booster(model_file=model.get_local_copy())
    assert np.array_equal(restored.predict(X), clf.predict_proba(X))
    # loading the file back links to that snapshot
    lgb.Booster(model_file=str(path))
    assert [m.id for m in task.models["input"]] == [model.id]  # task.models waits for the lineage
    [load] = task._ctx.store.loads_by_task(task.id)
    assert (load.model_id, load.snapshot_id) == (model.id, snap.id)


def test_training_and_in_memory_boosters_are_not_loads(digits, tmp_path: Path):
    """Booster.__init__ is the load hook: only its model_file argument makes it a load."""
    import lightgbm as lgb

    from autolog import Task

    X, y = digits
    task = Task.init(project_name="bindings", task_name="lgbm-no-load", output_uri=True)
    bst = lgb.train(PARAMS, lgb.Dataset(X, label=y), num_boost_round=2)  # Booster(params, train_set)
    lgb.Booster(model_str=bst.model_to_string())
    bst.__deepcopy__()
    assert task.flush()
    assert task.models["input"] == [] and task.models["output"] == []
    assert task._ctx.store.loads_by_task(task.id) == []


def test_model_file_passed_by_position_is_a_load(digits, tmp_path: Path):
    """model_file is Booster.__init__'s third argument after self: Booster(params, train_set, model_file)."""
    import lightgbm as lgb

    from autolog import Task

    X, y = digits
    bst = lgb.train(PARAMS, lgb.Dataset(X, label=y), num_boost_round=2)
    path = tmp_path / "positional.txt"
    bst.save_model(path)  # before the task: a file of unknown origin

    task = Task.init(project_name="bindings", task_name="lgbm-positional", output_uri=True)
    loaded = lgb.Booster(None, None, path)
    assert loaded.model_to_string() == bst.model_to_string()
    [model] = task.models["input"]  # task.models waits for the lineage of loads so far
    [load] = task._ctx.store.loads_by_task(task.id)
    assert Path(load.path) == path
    assert (model.origin, model.framework, model.name) == ("imported", "LightGBM", "positional.txt")


@pytest.mark.parametrize("api", ["lgb.train", "LGBMClassifier.fit"])
def test_warm_start_from_a_model_file_is_a_load(api: str, digits, tmp_path: Path):
    """init_model=path reads the file through _InnerPredictor.from_model_file, not Booster(model_file=...)."""
    import lightgbm as lgb

    from autolog import Task

    X, y = digits
    task = Task.init(project_name="bindings", task_name="lgbm-warm-start", output_uri=True)
    first = lgb.train(PARAMS, lgb.Dataset(X, label=y), num_boost_round=2)
    path = tmp_path / "first.txt"
    first.save_model(path)
    if api == "lgb.train":
        more = lgb.train(PARAMS, lgb.Dataset(X, label=y), num_boost_round=2, init_model=str(path))
        trees = more.num_trees()
    else:
        clf = lgb.LGBMClassifier(n_estimators=2, num_leaves=7, verbose=-1, n_jobs=1).fit(X, y, init_model=path)
        trees = clf.booster_.num_trees()
    assert trees == 2 * first.num_trees()  # it really continued from the file

    assert task.flush()
    [produced] = task.models["output"]
    [snap] = produced.snapshots
    assert [m.id for m in task.models["input"]] == [produced.id]
    [load] = task._ctx.store.loads_by_task(task.id)
    assert (load.snapshot_id, Path(load.path)) == (snap.id, path)


def test_joblib_dump_of_a_lightgbm_model_is_one_lightgbm_snapshot(digits, tmp_path: Path):
    import joblib
    import lightgbm as lgb
    import numpy as np

    from autolog import Task

    X, y = digits
    task = Task.init(project_name="bindings", task_name="lgbm-joblib", output_uri=True)
    clf = lgb.LGBMClassifier(n_estimators=2, num_leaves=7, verbose=-1, n_jobs=1, random_state=0).fit(X, y)
    joblib.dump(clf, tmp_path / "lgbm.joblib")

    assert task.flush()
    [model] = task.models["output"]
    assert (model.name, model.framework) == ("lgbm.joblib", "LightGBM")
    [snap] = model.snapshots
    assert snap.status == "stored"
    assert np.array_equal(joblib.load(model.get_local_copy()).predict_proba(X), clf.predict_proba(X))
