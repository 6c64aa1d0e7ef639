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
_patched: set[str] = set()
_lock = threading.Lock()


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
        for module_name in sorted({p.module for p in binding.PATCHES}):
            wrapt.when_imported(module_name)(_patcher(binding, module_name))


def _patcher(binding: ModuleType, module_name: str):
    def patch_module(module: ModuleType) -> None:
        # An exception here would break the user's `import torch`: everything is shielded.
        for patch in binding.PATCHES:
            if patch.module != module_name:
                continue
            with shielded(f"patching {patch.label}"):
                with _lock:
                    if patch.label in _patched:
                        continue
                    _patched.add(patch.label)
                wrapper = make_wrapper(patch, binding.FRAMEWORK, binding.KEY)
                try:
                    wrapt.wrap_function_wrapper(module, patch.target, wrapper)
                except AttributeError:
                    # Not in this framework version; say so at debug, the rest still works.
                    logger.debug("autolog: %s not found in this %s version; not captured", patch.label, module_name)

    return patch_module
