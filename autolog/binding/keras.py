"""Keras 3: whole-model files (.keras, .h5), weights files, and SavedModel export."""
from .spec import Arg, Load, Save

FRAMEWORK = "Keras"
KEY = "keras"
PATCHES = [
    Save("keras", "Model.save", path=Arg(0, "filepath")),
    Save("keras", "Model.save_weights", path=Arg(0, "filepath")),
    Save("keras", "Model.export", path=Arg(0, "filepath")),
    Load("keras", "Model.load_weights", path=Arg(0, "filepath")),
    # One function under two public names: each name is patched where users reach it.
    Load("keras", "saving.load_model", path=Arg(0, "filepath")),
    Load("keras", "models.load_model", path=Arg(0, "filepath")),
]
