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
from typing import TYPE_CHECKING, Callable

from . import lineage
from .binding import path_filter
from .db import ModelRecord
from .storage import collect_sources
from .snapshots.identity import opened_content, stat_key
from .storage.objects import Content, OpenedSources, open_sources

if TYPE_CHECKING:
    from .runtime import TaskRuntime


class CaptureRecorder:
    def __init__(self, run: "TaskRuntime", auto_connect_frameworks: bool | dict, ignore_globs: list[str]):
        self._run = run
        self.allows = path_filter(auto_connect_frameworks, ignore_globs)
        self._models: dict[str, ModelRecord] = {}
        self._saves: dict[str, int] = {}
        self._loaded: set[tuple] = set()
        self._lock = threading.Lock()

    def before_save(self, path: str) -> None:
        self._run.pipeline.fence(path)

    def saved(self, path: str, framework: str, model_path: str | None = None, wait_copied: bool = False) -> None:
        run = self._run
        sources = collect_sources(path)
        model_path = model_path or path
        with self._lock:
            model = self._models.get(model_path) or self._model_request(model_path, framework)
            self._saves[model_path] = count = self._saves.get(model_path, 0) + 1
        job = run.pipeline.submit(model, sources, count, run.blobstore, key_for=run.snapshot_key, fence_key=path,
                                  on_stored=run.on_snapshot_stored)
        if run.store_before_return:
            # Child processes often end with os._exit (multiprocessing, DataLoader workers): no exit
            # flush would run, so a child stores each snapshot before its save returns.
            run.pipeline.wait_for(job, "done")
        elif wait_copied:
            run.pipeline.wait_for(job, "staged")

    def loaded(self, path: str, framework: str) -> None:
        opened = open_sources(collect_sources(path))
        seen = tuple((src, *stat_key(st)) for (src, _), (_, st) in zip(opened.sources.files, opened.handles))
        with self._lock:
            if seen in self._loaded:
                opened.close()
                return
            self._loaded.add(seen)
        run = self._run

        def content_of(opened: OpenedSources) -> Content:
            return opened_content(run.ctx, opened)

        def link(content: Content) -> None:
            lineage.record_load(run.ctx, run.task_id, run.record.project, path, framework, opened.sources, content)

        job = run.pipeline.submit_load(opened, link, fence_key=path, label=f"lineage of {path}", content_of=content_of)
        if run.store_before_return:
            run.pipeline.wait_for(job, "done")

    def _model_request(self, path: str, framework: str) -> Callable[[], ModelRecord]:
        """The model of a path's first save, found or created by the journal writer (off this thread)."""
        run = self._run

        def find_or_create() -> ModelRecord:
            model = self._models.get(path)
            if model is None:
                model, _ = run.ctx.store.find_or_create_model(
                    run.task_id, "capture", {"source_path": path}, name=os.path.basename(path.rstrip(os.sep)),
                    project=run.record.project, framework=framework,
                )
                self._models[path] = model
            return model

        return find_or_create
