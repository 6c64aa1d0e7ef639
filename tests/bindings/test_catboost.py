"""CatBoost binding: save_model/load_model of every model class and format, fit(init_model=path), joblib pickles."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conformance import Case, home_and_workdir, make_tests, run_scenario, succeeded

from frameworks import require_framework

IMPORTS = "import numpy as np\nimport catboost"
DATA = """
rng = np.random.default_rng(0)
X = rng.standard_normal((60, 4))
y = (X[:, 0] + X[:, 1] > 0).astype(int)
rounds = [0]
OPTIONS = dict(depth=2, thread_count=1, allow_writing_files=False, verbose=False, random_seed=0)
"""
CLASSIFIER_SETUP = DATA + """
clf = None
def step():  # one more tree each time: a different model
    global clf
    rounds[0] += 1
    clf = catboost.CatBoostClassifier(iterations=rounds[0], **OPTIONS).fit(X, y)
"""
CLASSIFIER_CHECK = ("type(loaded) is catboost.CatBoostClassifier and loaded.tree_count_ == clf.tree_count_"
                    " and np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))")
REGRESSOR_SETUP = DATA + """
reg = None
def step():
    global reg
    rounds[0] += 1
    reg = catboost.CatBoostRegressor(iterations=rounds[0], **OPTIONS).fit(X, y.astype(float))
"""

CASES = [
    Case(
        id="CatBoostClassifier.save_model-cbm", requires="catboost", imports=IMPORTS, setup=CLASSIFIER_SETUP,
        framework="CatBoost", filename="classifier.cbm",
        save="step(); saved = clf.save_model(path)",
        load="loaded = catboost.CatBoostClassifier().load_model(path)",
        check=CLASSIFIER_CHECK,
    ),
    Case(
        id="CatBoostRegressor.save_model-json", requires="catboost", imports=IMPORTS, setup=REGRESSOR_SETUP,
        framework="CatBoost", filename="regressor.json",
        save="step(); saved = reg.save_model(path, format='json')",
        load="loaded = catboost.CatBoostRegressor().load_model(fname=path, format='json')",
        # JSON keeps leaf values to about 1e-16: CatBoost's own round trip, with or without autolog
        check="loaded.tree_count_ == reg.tree_count_"
              " and np.allclose(loaded.predict(X), reg.predict(X), rtol=0, atol=1e-12)",
    ),
    Case(
        id="joblib.dump-CatBoostClassifier", requires="catboost", imports=IMPORTS + "\nimport joblib",
        setup=CLASSIFIER_SETUP, framework="CatBoost", filename="classifier.joblib",
        save="step(); saved = joblib.dump(clf, path)",
        load="loaded = joblib.load(path)",
        check=CLASSIFIER_CHECK,
    ),
]

(test_saves_are_snapshots, test_load_in_another_process_links_to_the_producer,
 test_logging_failures_never_reach_the_user, test_exceptions_pass_through_and_closed_task_records_nothing) = make_tests(CASES)


# -- CatBoost specifics, each in a fresh interpreter -----------------------------------------


EXPORTS = Case(
    id="exports", requires="catboost", imports=IMPORTS + "\nimport onnx\nimport os", setup=CLASSIFIER_SETUP,
    framework="CatBoost", filename="model.cbm",
    # One model, written in three formats: three files, each a model of its own.
    save="""
step()
saved = clf.save_model(path)
clf.save_model(os.path.join(os.path.dirname(path), 'model.onnx'), format='onnx')
clf.save_model(os.path.join(os.path.dirname(path), 'model.py'), format='python')
""",
    # bytes are no file; CatBoost's ONNX export read by onnx.load is a load (of an ONNX file)
    load="""
with open(path, 'rb') as f:
    loaded = catboost.CatBoostClassifier().load_model(blob=f.read())
onnx.load(os.path.join(os.path.dirname(path), 'model.onnx'))
""",
    check=CLASSIFIER_CHECK,
)


def test_every_format_is_a_save_of_its_file(tmp_path: Path):
    require_framework("catboost")
    require_framework("onnx")
    home, work = home_and_workdir(tmp_path)
    report = run_scenario(EXPORTS, home, work, ["save", "load"], import_first=True)
    succeeded(report)
    outputs = {m["name"]: m for m in report["models"]["output"]}
    assert sorted(outputs) == ["model.cbm", "model.onnx", "model.py"]
    assert {m["framework"] for m in outputs.values()} == {"CatBoost"}
    for model in outputs.values():
        [snap] = model["snapshots"]
        assert snap["status"] == "stored" and model["local_copy_digest"] == snap["digest"]
    # lineage by content, across frameworks: onnx.load of CatBoost's export links to its snapshot
    [link] = report["models"]["loads"]
    [exported] = outputs["model.onnx"]["snapshots"]
    assert (Path(link["path"]).name, link["snapshot_id"]) == ("model.onnx", exported["id"])


LOADS = {
    "stream": "with open(path, 'rb') as f:\n    loaded = catboost.CatBoostClassifier().load_model(stream=f)",
    "fit-init_model": "loaded = catboost.CatBoostClassifier(iterations=2, **OPTIONS).fit(X, y, init_model=path)",
}


@pytest.mark.parametrize("how", list(LOADS))
def test_a_load_in_another_task_links_to_the_producer(how: str, tmp_path: Path):
    """load_model(stream=open file) and fit(init_model=path) (which calls load_model) are loads."""
    require_framework("catboost")
    home, work = home_and_workdir(tmp_path)
    trained = CASES[0]
    [produced] = run_scenario(trained, home, work, ["save"], task_name="train")["models"]["output"]
    report = run_scenario(dataclasses.replace(trained, load=LOADS[how]), home, work, ["load"], task_name="next")
    succeeded(report)
    assert report["models"]["output"] == []
    [link] = report["models"]["loads"]
    assert link["snapshot_id"] == produced["snapshots"][0]["id"]
    [model] = report["models"]["input"]
    assert (model["id"], model["task"], model["framework"]) == (produced["id"], produced["task"], "CatBoost")


def test_sample_gaussian_process_temporary_models_are_not_recorded(tmp_path: Path):
    """It saves and loads a temporary JSON model per sample: internal files, not the user's models."""
    require_framework("catboost")
    home, work = home_and_workdir(tmp_path)
    sample = ("catboost.sample_gaussian_process(X, y.astype(float), samples=2, prior_iterations=2,"
              " posterior_iterations=2, depth=2)\n")
    case = dataclasses.replace(CASES[0], save=sample + CASES[0].save, load=sample + CASES[0].load)
    report = run_scenario(case, home, work, ["save", "load"])
    succeeded(report)
    [model] = report["models"]["output"]  # the user's save around it is recorded as usual
    assert model["name"] == "classifier.cbm" and [s["seq"] for s in model["snapshots"]] == [1]
    [link] = report["models"]["loads"]
    assert Path(link["path"]).name == "classifier.cbm"
