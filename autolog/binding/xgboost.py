"""XGBoost: native Booster and the scikit-learn API (joblib pickles go through the joblib binding).

Checked against xgboost 3.x:
- XGBClassifier / XGBRegressor / XGBRanker / XGBRF* do not override save_model or load_model: the
  XGBModel patches cover them. XGBModel.save_model/load_model call Booster.save_model/load_model,
  so the outer (scikit-learn API) call is the one recorded.
- Booster(model_file=path) and xgb.train(xgb_model=path) call Booster.load_model(model_file): captured
  by the Booster.load_model patch. In-memory models (bytearray, another Booster) have no path and
  are not recorded.
- Pickling (joblib.dump / joblib.load) goes through Booster.__getstate__/__setstate__, not
  save_model/load_model: such files are recorded by the joblib binding, named "XGBoost" from the object.
"""
from .spec import Arg, Load, Save

FRAMEWORK = "XGBoost"
KEY = "xgboost"
PATCHES = [
    Save("xgboost", "Booster.save_model", path=Arg(0, "fname")),
    Load("xgboost", "Booster.load_model", path=Arg(0, "fname")),
    Save("xgboost", "XGBModel.save_model", path=Arg(0, "fname")),
    Load("xgboost", "XGBModel.load_model", path=Arg(0, "fname")),
]
