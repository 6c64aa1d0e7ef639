"""LightGBM: Booster.save_model, and loading through Booster(model_file=...) or train/cv(init_model=path).

Checked against lightgbm 4.x:
- LGBMModel has no save_model of its own: `clf.booster_.save_model(path)` is Booster.save_model.
- There is no Booster.load_model: a file is loaded by Booster.__init__(params, train_set, model_file,
  model_str), model_file being its third argument after self (index 2). Training also calls
  Booster.__init__ (params, train_set) and copies use model_str: no path, so no load is recorded.
- lgb.train / lgb.cv(init_model=path) (and LGBMModel.fit(init_model=path)) read the file through
  _InnerPredictor.from_model_file, not Booster.__init__: warm starting from a file is a load too.
"""
from .spec import Arg, Load, Save

FRAMEWORK = "LightGBM"
KEY = "lightgbm"
PATCHES = [
    Save("lightgbm", "Booster.save_model", path=Arg(0, "filename")),
    Load("lightgbm", "Booster.__init__", path=Arg(2, "model_file")),
    Load("lightgbm.basic", "_InnerPredictor.from_model_file", path=Arg(0, "model_file")),
]
