"""CaptureRecorder: what the active task does with a captured framework save or load.

A save of a path is a snapshot of that path's model (one model per task and path); a load links
the task to the snapshot that holds the loaded content. Repeated loads of an unchanged file are
answered from memory: one link, no hash, no query.
"""
from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from . import lineage
from .binding import path_filter
from .db import ModelRecord
from .model import store_snapshot
from .storage import collect_sources

if TYPE_CHECKING:
    from .task import Task


class CaptureRecorder:
    def __init__(self, task: "Task", auto_connect_frameworks: bool | dict, ignore_globs: list[str]):
        self._task = task
        self.allows = path_filter(auto_connect_frameworks, ignore_globs)
        self._models: dict[str, ModelRecord] = {}
        self._saves: dict[str, int] = {}
        self._loaded: set[tuple] = set()
        self._lock = threading.Lock()

    def saved(self, path: str, framework: str, model_path: str | None = None) -> None:
        sources = collect_sources(path)
        model_path = model_path or path
        with self._lock:
            model = self._model_for(model_path, framework)
            self._saves[model_path] = count = self._saves.get(model_path, 0) + 1
        store_snapshot(self._task, model, sources, iteration=count)

    def loaded(self, path: str, framework: str) -> None:
        sources = collect_sources(path)
        seen = tuple(_stat_key(src) for src, _ in sources.files)
        if seen in self._loaded:
            return
        task = self._task
        lineage.record_load(task._ctx, task.id, task.project, path, framework)
        self._loaded.add(seen)

    def _model_for(self, path: str, framework: str) -> ModelRecord:
        model = self._models.get(path)
        if model is None:
            store = self._task._ctx.store
            model = store.find_model(self._task.id, "capture", source_path=path) or store.create_model(
                task_id=self._task.id, origin="capture", name=os.path.basename(path.rstrip(os.sep)),
                project=self._task.project, framework=framework, source_path=path,
            )
            self._models[path] = model
        return model


def _stat_key(path: str) -> tuple:
    st = os.stat(path)
    return (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
