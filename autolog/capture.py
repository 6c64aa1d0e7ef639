"""CaptureRecorder: what the active task does with a captured framework save or load.

In the training thread everything here is O(1): a save opens read handles on the saved file(s),
journals a pending snapshot and hands it to the task's pipeline; a load opens handles and queues
the lineage lookup. A save of a path first waits for the previous snapshot of that path to be
read (the fence), never for an upload. Repeated loads of an unchanged file are answered from
memory: one link, no hash, no query.
"""
from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from . import lineage
from .binding import path_filter
from .db import ModelRecord
from .storage import collect_sources
from .storage.identity import stat_key
from .storage.layout import snapshot_key
from .storage.objects import open_sources

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

    def before_save(self, path: str) -> None:
        self._task._pipeline.fence(path)

    def saved(self, path: str, framework: str, model_path: str | None = None, wait_copied: bool = False) -> None:
        task = self._task
        sources = collect_sources(path)
        model_path = model_path or path
        with self._lock:
            try:
                model = self._model_for(model_path, framework)
            except Exception:
                task._pipeline.not_recorded(path)  # named again in the warning at close
                raise
            self._saves[model_path] = count = self._saves.get(model_path, 0) + 1
        job = task._pipeline.submit(
            model, sources, count, task._blobstore,
            key_for=lambda seq: snapshot_key(task._task_key, model.name, model.id, seq),
            fence_key=path, on_stored=task._on_snapshot_stored,
        )
        if task._attached:
            # Child processes often end with os._exit (multiprocessing, DataLoader workers): no exit
            # flush would run, so a child stores each snapshot before its save returns.
            job.done.wait()
        elif wait_copied:
            job.staged.wait()

    def loaded(self, path: str, framework: str) -> None:
        opened = open_sources(collect_sources(path))
        seen = tuple((src, *stat_key(st)) for (src, _), (_, st) in zip(opened.sources.files, opened.handles))
        with self._lock:
            if seen in self._loaded:
                opened.close()
                return
            self._loaded.add(seen)
        task = self._task

        def link() -> None:
            lineage.record_load(task._ctx, task.id, task.project, path, framework, opened)

        job = task._pipeline.submit_call(link, opened, fence_key=path, label=f"lineage of {path}")
        if task._attached:
            job.done.wait()

    def _model_for(self, path: str, framework: str) -> ModelRecord:
        model = self._models.get(path)
        if model is None:
            task = self._task
            # The first save of a path writes its model row: bounded like the snapshot row, so a frozen
            # database cannot hang the training thread here either.
            model, _ = task._pipeline.bounded(lambda: task._ctx.store.find_or_create_model(
                task.id, "capture", {"source_path": path}, name=os.path.basename(path.rstrip(os.sep)),
                project=task.project, framework=framework,
            ))
            self._models[path] = model
        return model
