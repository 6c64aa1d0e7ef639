"""autolog: zero-code ML model tracking with the ClearML SDK's API and no server.

    from autolog import Task
    task = Task.init(project_name="digits", task_name="train", output_uri=True)

Imports are lazy: `import autolog` loads no framework, database or storage library.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Task": "autolog.task",
    "Model": "autolog.model",
    "OutputModel": "autolog.output_model",
    "InputModel": "autolog.model",
    "ModelList": "autolog.model",
    "Artifact": "autolog.artifacts",
    "AutologError": "autolog.errors",
    "Logger": "autolog.logger",
    "StorageManager": "autolog.storage_manager",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from .artifacts import Artifact
    from .errors import AutologError
    from .model import InputModel, Model, ModelList
    from .output_model import OutputModel
    from .task import Task


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'autolog' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
