"""TensorFlow 2: object-based checkpoints (and so CheckpointManager) and SavedModel."""
from .spec import Arg, Attr, Load, Returned, Save

FRAMEWORK = "TensorFlow"
KEY = "tensorflow"
PATCHES = [
    # save() returns the prefix it wrote ("ckpt-3"): one snapshot of its .index + .data-* files, and
    # every numbered save of one file_prefix ("ckpt") is a snapshot of the same model.
    Save("tensorflow", "train.Checkpoint.save", path=Returned(), model_path=Arg(0, "file_prefix")),
    Save("tensorflow", "train.Checkpoint.write", path=Returned()),
    Save("tensorflow", "train.CheckpointManager.save", path=Returned(), model_path=Attr("_prefix")),
    Load("tensorflow", "train.Checkpoint.restore", path=Arg(0, "save_path")),
    Load("tensorflow", "train.Checkpoint.read", path=Arg(0, "save_path")),
    Save("tensorflow", "saved_model.save", path=Arg(1, "export_dir")),
    Load("tensorflow", "saved_model.load", path=Arg(0, "export_dir")),
]
