"""CatBoost: save_model/load_model of every model class (pickles go through the joblib binding).

Checked against catboost 1.2.10:
- save_model and load_model are defined on the CatBoost base class only; CatBoostClassifier,
  CatBoostRegressor and CatBoostRanker inherit them, so patching CatBoost covers every class.
- save_model(fname, format="cbm") writes one file in every format ("cbm", "json", "onnx",
  "coreml", "pmml", "cpp", "python"): each export is a save of its own file. fname must be a
  path (str or os.PathLike).
- load_model(fname=None, format="cbm", stream=None, blob=None) reads a path, an open file
  (recorded by its name) or bytes (nothing to record); it returns the model itself.
- fit(init_model=path) calls CatBoost().load_model(path): a load. fit's own training snapshots
  (save_snapshot=True) and train_dir files are resume state, not models: not recorded.
- Pickling (joblib.dump / joblib.load) serializes the model in memory, without save_model: such
  files are recorded by the joblib binding, named "CatBoost" from the object.
- sample_gaussian_process() saves each sampled prior to a temporary JSON file, edits it and loads it
  back: internal files, no model of the user's. Declared as a save of nothing (its path is None),
  it is the outermost patched call, so the saves and loads inside it are not recorded.
- catboost.eval (CatboostEvaluation) writes and reads its fold models with save_model/load_model:
  each is recorded like a user's save.
"""
from .spec import Arg, Call, Computed, Load, Save

FRAMEWORK = "CatBoost"
KEY = "catboost"


def _file_or_stream(call: Call):
    """load_model's fname, else its stream (an open file is recorded by its name; bytes are not)."""
    fname = call.arg(0, "fname")
    return fname if fname is not None else call.arg(2, "stream")


def _nothing(call: Call) -> None:
    return None


PATCHES = [
    Save("catboost", "CatBoost.save_model", path=Arg(0, "fname")),
    Load("catboost", "CatBoost.load_model", path=Computed(_file_or_stream)),
    Save("catboost", "sample_gaussian_process", path=Computed(_nothing)),
]
