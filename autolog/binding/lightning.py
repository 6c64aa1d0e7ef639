"""PyTorch Lightning (and Lightning Fabric): one checkpoint is one snapshot, at the trainer's global step.

Checked against lightning 2.6.6, whose `lightning.pytorch` / `lightning.fabric` ship again as the
standalone `pytorch_lightning` / `lightning_fabric` packages: separate classes, so each is declared
under both names.

Saves. Lightning never hands a path to torch.save: TorchCheckpointIO serializes into a BytesIO and
writes the bytes through fsspec, so the torch binding sees nothing it could name.
- Every checkpoint the Trainer writes goes through `Trainer.save_checkpoint(filepath)`: the user's
  own call, ModelCheckpoint's top-k and `last.ckpt` saves (`_save_checkpoint`), the save on
  exception (ModelCheckpoint.on_exception, OnExceptionCheckpoint), SLURM requeue. It calls
  strategy.save_checkpoint -> checkpoint_io.save_checkpoint, so a user's own CheckpointIO (any
  format, a file or a folder) is inside it too, and the torch.save inside is silenced by nesting.
- `save_last="link"` does not save: the static `ModelCheckpoint._link_checkpoint(trainer, filepath,
  linkpath)` replaces last.ckpt by a symlink to the checkpoint just saved (a copy where symlinks
  fail), or does nothing when both are one path. It is declared as a save of linkpath: last.ckpt
  stays one model with a snapshot per write.
- AsyncCheckpointIO (experimental) returns before the file exists and writes it in its own thread
  with the inner checkpoint_io: the Trainer-level save records nothing then, and the inner
  TorchCheckpointIO.save_checkpoint, outermost in that thread, records the file once it is written.
  The checkpoint dict carries "global_step", the same iteration the Trainer-level save records.
- `Fabric.save(path, state)` is Fabric's one checkpoint call (strategy -> TorchCheckpointIO likewise);
  its state has no standard step, so its iteration is the save count.

Loads.
- `LightningModule.load_from_checkpoint` and `LightningDataModule.load_from_checkpoint` are
  `_restricted_classmethod`s (a classmethod whose __get__ returns a plain function and refuses an
  instance); wrapt wraps them as classmethods: `cls` is not among the arguments, and the call on an
  instance still raises Lightning's TypeError.
- `trainer.fit/validate/test/predict(ckpt_path=...)` resolve "last", "best" and "hpc" to a real path
  (`_CheckpointConnector._parse_ckpt_path`) and then read it in `_CheckpointConnector.resume_start`,
  which loads and nothing else: patched there, not around fit(), whose checkpoint saves a Load
  around it would silence.
- `Fabric.load` / `Fabric.load_raw`.

Not models: the tuner (`Tuner.lr_find`, `Tuner.scale_batch_size`) saves the trainer's state to
`<root>/.lr_find_<uuid>.ckpt` / `.scale_batch_size_<uuid>.ckpt` through Trainer.save_checkpoint,
restores it through `_CheckpointConnector.restore` -> resume_start, and deletes it: neither recorded.
"""
from __future__ import annotations

import os

from .spec import Arg, Call, Computed, Load, Save

FRAMEWORK = "PyTorch Lightning"
KEY = "lightning"

PYTORCH = ("lightning.pytorch", "pytorch_lightning")
FABRIC = ("lightning.fabric", "lightning_fabric")
CONNECTOR = "trainer.connectors.checkpoint_connector._CheckpointConnector"


def _writes_later(trainer) -> bool:
    """The trainer's checkpoint_io writes in a background thread (AsyncCheckpointIO)."""
    # The private attribute, not the `checkpoint_io` property: that one installs a default io.
    io = getattr(getattr(trainer, "strategy", None), "_checkpoint_io", None)
    return any(cls.__name__ == "AsyncCheckpointIO" for cls in type(io).__mro__)


# The tuner (lr_find, scale_batch_size) saves the trainer's state under these names, restores it and
# deletes the file: scaffolding, neither a model of the run nor an input.
_TUNER_FILES = (".lr_find_", ".scale_batch_size_")


def _not_tuner_file(path):
    name = os.path.basename(os.fsdecode(path)) if isinstance(path, (str, bytes, os.PathLike)) else ""
    return None if name.startswith(_TUNER_FILES) else path


def _trainer_checkpoint(call: Call):
    return None if _writes_later(call.instance) else _not_tuner_file(call.arg(0, "filepath"))


def _restored_checkpoint(call: Call):
    return _not_tuner_file(call.arg(0, "checkpoint_path"))


def _link_path(call: Call):
    link = call.arg(2, "linkpath")
    # Lightning links nothing when both are one path (last.ckpt was itself the last checkpoint saved).
    return None if os.path.abspath(link) == os.path.abspath(call.arg(1, "filepath")) else link


def _global_step(call: Call):
    return call.instance.global_step


def _linking_trainer_step(call: Call):
    return call.arg(0, "trainer").global_step


def _checkpoint_step(call: Call):
    checkpoint = call.arg(0, "checkpoint")
    return checkpoint.get("global_step") if isinstance(checkpoint, dict) else None


PATCHES = [
    *(patch for ns in PYTORCH for patch in (
        Save(ns, "Trainer.save_checkpoint", path=Computed(_trainer_checkpoint), iteration=Computed(_global_step)),
        Save(ns, "callbacks.ModelCheckpoint._link_checkpoint", path=Computed(_link_path),
             iteration=Computed(_linking_trainer_step)),
        Load(ns, "LightningModule.load_from_checkpoint", path=Arg(0, "checkpoint_path")),
        Load(ns, "LightningDataModule.load_from_checkpoint", path=Arg(0, "checkpoint_path")),
        Load(ns, f"{CONNECTOR}.resume_start", path=Computed(_restored_checkpoint)),
    )),
    *(patch for ns in FABRIC for patch in (
        # Outermost only in AsyncCheckpointIO's thread (or called directly): see the docstring.
        Save(ns, "plugins.io.torch_io.TorchCheckpointIO.save_checkpoint", path=Arg(1, "path"),
             iteration=Computed(_checkpoint_step)),
        Save(ns, "Fabric.save", path=Arg(0, "path")),
        Load(ns, "Fabric.load", path=Arg(0, "path")),
        Load(ns, "Fabric.load_raw", path=Arg(0, "path")),
    )),
]
