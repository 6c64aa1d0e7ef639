"""XGBoost: native Booster and the scikit-learn API (joblib pickles go through the joblib binding)."""
from .spec import Arg, Load, Save

FRAMEWORK = "XGBoost"
KEY = "xgboost"
PATCHES = [
    Save("xgboost", "Booster.save_model", path=Arg(0, "fname")),
    Load("xgboost", "Booster.load_model", path=Arg(0, "fname")),
    Save("xgboost", "XGBModel.save_model", path=Arg(0, "fname")),
    Load("xgboost", "XGBModel.load_model", path=Arg(0, "fname")),
]
