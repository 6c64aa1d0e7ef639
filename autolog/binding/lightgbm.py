"""LightGBM: Booster.save_model, and loading through Booster(model_file=...)."""
from .spec import Arg, Load, Save

FRAMEWORK = "LightGBM"
KEY = "lightgbm"
PATCHES = [
    Save("lightgbm", "Booster.save_model", path=Arg(0, "filename")),
    Load("lightgbm", "Booster.__init__", path=Arg(2, "model_file")),
]
