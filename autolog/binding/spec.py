"""What a framework binding declares: which callables save or load a model, and where the path is.

A binding module is data only, e.g. ``binding/torch.py``::

    FRAMEWORK = "PyTorch"
    KEY = "pytorch"          # the auto_connect_frameworks key that turns it off or filters it
    PATCHES = [
        Save("torch", "save", path=Arg(1, "f")),
        Load("torch", "load", path=Arg(0, "f")),
    ]

Everything else (safety, nesting, filters, rank 0, lineage) is the generic wrapper in ``core``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union


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


PathSource = Union[Arg, Returned, Attr]


@dataclass(frozen=True)
class Patch:
    module: str  # the module whose import triggers the patch ("torch", "keras", "tensorflow")
    target: str  # attribute path inside it: "save", "jit.save", "Model.save", "train.Checkpoint.save"
    action: str  # "save" or "load"
    path: PathSource
    # For generic savers (joblib.dump): which argument holds the saved object, to name its framework.
    obj: Arg | None = None
    # Which path names the model, when each save writes a new one ("ckpt" for ckpt-1, ckpt-2, ...):
    # all those saves become snapshots of one model. Default: the saved path itself.
    model_path: PathSource | None = None

    def __post_init__(self) -> None:
        if self.action not in ("save", "load"):
            raise ValueError(f"Patch {self.module}.{self.target}: action must be 'save' or 'load', not {self.action!r}")
        for source in (self.path, self.model_path):
            if source is not None and not isinstance(source, (Arg, Returned, Attr)):
                raise TypeError(f"Patch {self.module}.{self.target}: paths must be Arg(...), Returned() or Attr(...)")
        if self.path is None:
            raise TypeError(f"Patch {self.module}.{self.target}: path is required")
        if not self.target or self.target.startswith(".") or self.target.endswith("."):
            raise ValueError(f"Patch {self.module}: bad target {self.target!r}")

    @property
    def label(self) -> str:
        return f"{self.module}.{self.target}"


def Save(  # noqa: N802
    module: str, target: str, path: PathSource, obj: Arg | None = None, model_path: PathSource | None = None
) -> Patch:
    return Patch(module, target, "save", path, obj, model_path)


def Load(module: str, target: str, path: PathSource) -> Patch:  # noqa: N802
    return Patch(module, target, "load", path)
