"""Framework capture: patch each declared save/load callable when its module is imported.

`install()` registers one `wrapt.when_imported` hook per binding module; the hook fires at once for
a module that is already imported, so Task.init may come before or after `import torch`. Patches
are applied once per process and stay: with no active task they only pass calls through.
"""
from __future__ import annotations

import importlib
import logging
import threading
from types import ModuleType

import wrapt

from ..safety import shielded
from .core import Recorder, activate, make_wrapper, path_filter
from .spec import Patch

__all__ = ["BINDINGS", "activate", "install", "load_bindings", "path_filter", "Recorder"]

logger = logging.getLogger("autolog")

# One module per framework under autolog/binding/, each declaring FRAMEWORK, KEY and PATCHES.
BINDINGS = ["torch", "tensorflow", "keras", "joblib", "xgboost", "lightgbm", "safetensors"]

_installed = False
_lock = threading.RLock()


def load_bindings() -> list[ModuleType]:
    """Import and check every binding's declarations (imports no framework)."""
    modules = []
    for name in BINDINGS:
        module = importlib.import_module(f"{__name__}.{name}")
        for attr in ("FRAMEWORK", "KEY", "PATCHES"):
            if not hasattr(module, attr):
                raise TypeError(f"Binding autolog.binding.{name} must declare {attr}.")
        if not all(isinstance(p, Patch) for p in module.PATCHES):
            raise TypeError(f"Binding autolog.binding.{name}: PATCHES must hold Save(...)/Load(...) declarations.")
        modules.append(module)
    return modules


def install() -> None:
    """Register the import hooks (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    for binding in load_bindings():
        for module_name, targets in _hook_points(binding.PATCHES).items():
            wrapt.when_imported(module_name)(_patcher(binding, targets))


def _hook_points(patches: list[Patch]) -> dict[str, list[tuple[Patch, str]]]:
    """Each patch is applied when its module is imported, and again whenever a module on the way to
    its target is (re)imported: `from tensorflow.saved_model.experimental import X` (Keras export
    does it) creates a new `tensorflow.saved_model` module object that replaces `tf.saved_model`."""
    points: dict[str, list[tuple[Patch, str]]] = {}
    for patch in patches:
        parts = patch.target.split(".")
        for i in range(len(parts)):
            module = ".".join([patch.module, *parts[:i]])
            points.setdefault(module, []).append((patch, ".".join(parts[i:])))
    return points


def _patcher(binding: ModuleType, targets: list[tuple[Patch, str]]):
    def patch_module(module: ModuleType) -> None:
        # An exception here would break the user's `import torch`: everything is shielded.
        for patch, target in targets:
            with shielded(f"patching {patch.label}"), _lock:
                owner_path, _, attr = target.rpartition(".")
                try:
                    owner = _resolve(module, owner_path)
                    current = getattr(owner, attr)
                except AttributeError:
                    # Not in this framework version; say so at debug, the rest still works.
                    logger.debug("autolog: %s not found in %s; not captured", patch.label, module.__name__)
                    continue
                if isinstance(vars(owner).get(attr, current), wrapt.ObjectProxy):
                    continue  # this owner's attribute is patched already
                wrapt.wrap_function_wrapper(owner, attr, make_wrapper(patch, binding.FRAMEWORK, binding.KEY))

    return patch_module


def _resolve(module: ModuleType, path: str) -> object:
    owner: object = module
    for part in filter(None, path.split(".")):
        owner = getattr(owner, part)
    return owner
