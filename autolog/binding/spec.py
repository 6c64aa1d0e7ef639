"""What a framework binding declares: which callables save or load a model, and where the path is.

A binding module is data only, e.g. ``binding/torch.py``::

    FRAMEWORK = "PyTorch"
    KEY = "pytorch"          # the auto_connect_frameworks key that turns it off or filters it
    PATCHES = [
        Save("torch", "save", path=Arg(1, "f")),
        Load("torch", "load", path=Arg(0, "f")),
    ]

Everything else (safety, nesting, filters, rank 0, lineage) is the generic wrapper in ``core``.
Where a library keeps the path or the step on its own objects (Lightning's trainer, a Hugging Face
Trainer's state), a binding names them with ``Computed``: a small function of the call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union


@dataclass(frozen=True)
class Arg:
    """A call argument: its position (counted without `self` for methods) and its keyword name."""

    index: int
    name: str


@dataclass(frozen=True)
class Returned:
    """The call's return value is the path (tf.train.Checkpoint.save returns the prefix it wrote)."""


@dataclass(frozen=True)
class Attr:
    """An attribute of the instance a method is called on (CheckpointManager._prefix)."""

    name: str


@dataclass(frozen=True)
class Call:
    """One captured call, as a Computed source sees it (result is None before the call returns)."""

    instance: Any
    args: tuple
    kwargs: dict
    result: Any = None

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        if name in self.kwargs:
            return self.kwargs[name]
        return self.args[index] if len(self.args) > index else default


@dataclass(frozen=True)
class Computed:
    """A value computed from the call: the checkpoint folder a Trainer names after its step, the step
    itself. The function may return None (nothing to record); an exception it raises is a logged
    recording failure, never the caller's."""

    fn: Callable[[Call], Any]


PathSource = Union[Arg, Returned, Attr, Computed]
_SOURCES = (Arg, Returned, Attr, Computed)


@dataclass(frozen=True)
class Patch:
    module: str  # the module whose import triggers the patch ("torch", "keras", "tensorflow")
    target: str  # attribute path inside it: "save", "jit.save", "Model.save", "train.Checkpoint.save"
    action: str  # "save", "load", or "write" (see Writes)
    path: PathSource
    # For generic savers (joblib.dump): which argument holds the saved object, to name its framework.
    obj: Arg | None = None
    # Which path names the model, when each save writes a new one ("ckpt" for ckpt-1, ckpt-2, ...):
    # all those saves become snapshots of one model. Default: the saved path itself.
    model_path: PathSource | None = None
    # The snapshot's iteration (a training step); default: the model's save count in this task.
    iteration: PathSource | None = None
    # Names (globs) under a saved or loaded folder that are not part of it ("checkpoint-*": a
    # Trainer's final save_model() into its output_dir, next to its step checkpoints).
    exclude: tuple[str, ...] = ()
    # Several calls write one folder (a model, then its tokenizer, into one save_pretrained folder):
    # they become ONE snapshot of the folder, taken once no such call wrote it for `settle` seconds,
    # at the next flush, or before the folder is written again by another kind of save.
    settle: bool = False
    # Files that belong with a one-file path (an ONNX model's external data, named by its tensors):
    # the snapshot of a save, and the content of a load, is the file and these, side by side.
    companions: PathSource | None = None
    # Loads: names (globs) of files a folder may gain after its save without becoming another model (a
    # Trainer's metrics, state and model card beside its final save): a loaded folder whose only extra
    # files are such is still that save (lineage.record_load).
    beside: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.action not in ("save", "load", "write"):
            raise ValueError(
                f"Patch {self.module}.{self.target}: action must be 'save', 'load' or 'write', not {self.action!r}")
        for source in (self.path, self.model_path, self.iteration, self.companions):
            if source is not None and not isinstance(source, _SOURCES):
                raise TypeError(
                    f"Patch {self.module}.{self.target}: paths must be Arg(...), Returned(), Attr(...) or Computed(...)"
                )
        if self.path is None:
            raise TypeError(f"Patch {self.module}.{self.target}: path is required")
        if not self.target or self.target.startswith(".") or self.target.endswith("."):
            raise ValueError(f"Patch {self.module}: bad target {self.target!r}")

    @property
    def label(self) -> str:
        return f"{self.module}.{self.target}"


def Save(  # noqa: N802
    module: str, target: str, path: PathSource, obj: Arg | None = None, model_path: PathSource | None = None,
    iteration: PathSource | None = None, exclude: tuple[str, ...] = (), settle: bool = False,
    companions: PathSource | None = None,
) -> Patch:
    return Patch(module, target, "save", path, obj, model_path, iteration, tuple(exclude), settle, companions)


def Load(  # noqa: N802
    module: str, target: str, path: PathSource, exclude: tuple[str, ...] = (), companions: PathSource | None = None,
    beside: tuple[str, ...] = (),
) -> Patch:
    return Patch(module, target, "load", path, exclude=tuple(exclude), companions=companions, beside=tuple(beside))


def Writes(module: str, target: str, path: Arg | Computed) -> Patch:  # noqa: N802
    """A call that writes a file that is not a model's into a folder a model was saved to (a Trainer's
    model card, path: output_dir/README.md): a snapshot of that folder still waiting to settle is taken
    before the call writes (a captured save into it would join it), and the call waits, like a save,
    for an unread snapshot that holds the file. The call itself records nothing."""
    return Patch(module, target, "write", path)
