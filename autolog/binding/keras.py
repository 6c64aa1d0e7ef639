"""Keras 3: whole-model files (.keras, .h5), weights files, and SavedModel export.

Checked against Keras 3.15 (TensorFlow backend):
- save / save_weights / export / load_weights are defined on keras.Model only (Sequential and
  Functional inherit them), so patching Model covers every model class.
- Model.save and Model.save_weights call keras.src.saving.saving_api directly, not the public
  keras.saving functions: declaring both the methods and the functions records each call once.
- keras.saving.load_model is keras.models.load_model (and tf.keras.models is keras.models): one
  function reached under two public module names, each patched where users reach it.
- Model.export (format="tf_saved_model") calls tf.saved_model.save: the outer Keras call records it.
"""
from .spec import Arg, Load, Save

FRAMEWORK = "Keras"
KEY = "keras"
PATCHES = [
    Save("keras", "Model.save", path=Arg(0, "filepath")),
    Save("keras", "Model.save_weights", path=Arg(0, "filepath")),
    Save("keras", "Model.export", path=Arg(0, "filepath")),
    Load("keras", "Model.load_weights", path=Arg(0, "filepath")),
    # The functions the methods alias (model.save() is keras.saving.save_model(model, ...)).
    Save("keras", "saving.save_model", path=Arg(1, "filepath")),
    Save("keras", "models.save_model", path=Arg(1, "filepath")),
    Save("keras", "saving.save_weights", path=Arg(1, "filepath")),
    Load("keras", "saving.load_weights", path=Arg(1, "filepath")),
    # One function under two public names: each name is patched where users reach it.
    Load("keras", "saving.load_model", path=Arg(0, "filepath")),
    Load("keras", "models.load_model", path=Arg(0, "filepath")),
]
