"""TensorFlow 2: object-based checkpoints (and so CheckpointManager) and SavedModel.

Checked against TensorFlow 2.21:
- Checkpoint.save and CheckpointManager.save both write through the private Checkpoint._write,
  never through Checkpoint.write: each of the three is declared, and none of them nests another.
- Checkpoint.restore calls Checkpoint.read (one load, by the outer call); it also accepts a SavedModel
  folder, which is then the loaded path.
- A numbered save writes a new prefix ("ckpt-3" -> ckpt-3.index + ckpt-3.data-*), known only from
  the return value; Checkpoint.write and tf.saved_model.save rewrite their target in place, so
  their path is the argument (known before the call, so the next save waits until the previous
  snapshot of it was read).
- Keras Model.export calls tf.saved_model.save: recorded once, by the outer Keras call.
"""
from .spec import Arg, Attr, Load, Returned, Save

FRAMEWORK = "TensorFlow"
KEY = "tensorflow"
PATCHES = [
    # save() returns the prefix it wrote ("ckpt-3"): one snapshot of its .index + .data-* files, and
    # every numbered save of one file_prefix ("ckpt") is a snapshot of the same model.
    Save("tensorflow", "train.Checkpoint.save", path=Returned(), model_path=Arg(0, "file_prefix")),
    # write() writes exactly file_prefix (and returns it), overwriting the previous write in place.
    Save("tensorflow", "train.Checkpoint.write", path=Arg(0, "file_prefix")),
    # The manager's prefix is <directory>/<checkpoint_name>; it returns "<prefix>-<number>".
    Save("tensorflow", "train.CheckpointManager.save", path=Returned(), model_path=Attr("_prefix")),
    Load("tensorflow", "train.Checkpoint.restore", path=Arg(0, "save_path")),
    Load("tensorflow", "train.Checkpoint.read", path=Arg(0, "save_path")),
    Save("tensorflow", "saved_model.save", path=Arg(1, "export_dir")),
    Load("tensorflow", "saved_model.load", path=Arg(0, "export_dir")),
]
