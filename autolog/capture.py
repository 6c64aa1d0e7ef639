"""CaptureRecorder: what the active task does with a captured framework save or load.

In the training thread everything here is O(1): a save opens read handles on the saved file(s),
journals a pending snapshot and hands it to the task's pipeline; a load opens handles and queues
the lineage lookup. A save of a path first waits for the previous snapshot of that path to be
read (the fence), never for an upload. Repeated loads of an unchanged file are answered from
memory: one link, no hash, no query.

A save or load of a URL (`trainer.save_checkpoint("s3://bucket/last.ckpt")` through fsspec) is
recorded where it is, never copied again: a background job reads the object to hash it, then records
a `stored` snapshot at that URL (or links the load to the snapshot with that hash). A later save of
the same URL waits until that read is done, as for a local path.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator

from . import lineage
from .binding import path_filter
from .config import redact_url
from .db import ModelRecord
from .errors import AutologError
from .model_design import LABELS_KEY
from .settling import SettlingFolders, SettlingSave
from .storage import collect_sources
from .snapshots.identity import opened_content, stat_key
from .storage.blobstore import is_local
from .storage.objects import Content
from .storage.sources import OpenedSources, Sources, open_sources
from .storage.objects import object_content as remote_content
from .storage.set_aside import SetAside

if TYPE_CHECKING:
    from .context import Context
    from .runtime import TaskRuntime


class CaptureRecorder:
    def __init__(self, run: "TaskRuntime", auto_connect_frameworks: bool | dict, ignore_globs: list[str]):
        self._run = run
        self.allows = path_filter(auto_connect_frameworks, ignore_globs)
        self._models: dict[str, ModelRecord] = {}
        self._saves: dict[str, int] = {}
        self._loaded: dict[tuple, object] = {}  # loads linked (or being queued), by file and stat
        self._lock = threading.Lock()
        self.settling = SettlingFolders(self._settled, run.context.settings.settle_seconds)

    def folders_around(self, path: str) -> tuple[str, ...]:
        """The folders waiting to settle that path is inside (their locks are taken with path's)."""
        return self.settling.folders_around(path)

    def before_save(self, path: str, part: str | None = None, write: bool = False,
                    held: tuple[str, ...] = ()) -> SetAside | None:
        self.settling.before_write(path, part, write, held)
        return self._run.pipeline.fence(path)

    def save_ended(self, path: str, part: str | None, raised: bool) -> None:
        """A fenced save of path ended (recorded or not): the waiting folders it wrote into are told."""
        if part is not None:
            self.settling.finished(path, part, raised)
        self.settling.after_save(path, raised, part)

    def saved(self, path: str, framework: str, model_path: str | None = None, wait_copied: bool = False,
              iteration: int | None = None, exclude: tuple[str, ...] = (), part: str | None = None,
              companions: tuple[str, ...] = ()) -> None:
        """A captured save returned. part: the call is one of several that write one folder (see
        autolog.settling): the folder is snapshotted once they are done."""
        run = self._run
        if run.closed:  # close() ran (another thread, the exit) while this save was in the framework's code
            raise AutologError(f"{path} was saved after task {run.task_id[:8]} was closed (the save began "
                               "before): this snapshot is not recorded")
        self._snapshot(path, framework, model_path, wait_copied, iteration, exclude, part, companions)

    def _snapshot(self, path: str, framework: str, model_path: str | None = None, wait_copied: bool = False,
                  iteration: int | None = None, exclude: tuple[str, ...] = (), part: str | None = None,
                  companions: tuple[str, ...] = ()) -> None:
        run = self._run
        if not is_local(path):
            return self._saved_remote(path, framework, model_path, iteration)
        if part is not None and not run.store_before_return:
            self.settling.wrote(path, part, framework, model_path, iteration, exclude)
            return
        sources = collect_sources(path, exclude=exclude + self.settling.left_out(path), companions=companions)
        model, count = self._model_and_count(model_path or path, framework)
        job = run.pipeline.submit(model, sources, count if iteration is None else iteration, run.blobstore,
                                  key_for=run.snapshot_key, fence_key=path, on_stored=run.on_snapshot_stored)
        if run.store_before_return:
            # Child processes often end with os._exit (multiprocessing, DataLoader workers): no exit
            # flush would run, so a child stores each snapshot before its save returns.
            run.pipeline.wait_for(job, "done")
        elif wait_copied:
            run.pipeline.wait_for(job, "staged")

    def _model_and_count(self, model_path: str, framework: str) -> tuple[Any, int]:
        """The model saved at model_path (or the request that makes it) and how many saves it has had."""
        with self._lock:
            model = self._models.get(model_path) or self._model_request(model_path, framework)
            self._saves[model_path] = count = self._saves.get(model_path, 0) + 1
        return model, count

    def _settled(self, path: str, save: SettlingSave) -> None:
        """A folder's saves are over (close() takes the last ones, so not `saved`, which refuses a closed run)."""
        self._snapshot(path, save.framework, save.model_path, iteration=save.iteration, exclude=save.exclude)

    def loaded(self, path: str, framework: str, exclude: tuple[str, ...] = (), companions: tuple[str, ...] = (),
               beside: tuple[str, ...] = ()) -> None:
        if not is_local(path):
            return self._loaded_remote(path, framework)
        self.settling.take(path)
        opened = open_sources(collect_sources(path, exclude=exclude, companions=companions))
        seen = tuple((src, *stat_key(st)) for (src, _), (_, st) in zip(opened.sources.files, opened.handles))
        run = self._run

        # Both run on the lineage worker: they wait for the task's row without hurrying it.
        def content_of(opened: OpenedSources) -> Content:
            return opened_content(run.ctx_for_worker, opened)

        def link(content: Content) -> None:
            lineage.record_load(run.ctx_for_worker, run.task_id, run.record.project, path, framework, opened.sources, content,
                                beside=beside)

        with self._first_load(seen) as first:
            if not first:
                opened.close()
                return
            job = run.pipeline.submit_load(opened, link, fence_key=path, label=f"lineage of {path}", content_of=content_of)
        if run.store_before_return:
            run.pipeline.wait_for(job, "done")

    @contextlib.contextmanager
    def _first_load(self, key: tuple) -> Iterator[bool]:
        """Whether this is the task's first load of key (the same file, unchanged): the block queues its
        lineage. A block that raises (a Ctrl-C while it was queued) gives the claim back, so that a later
        load of the file is still linked: kept, it had kept every later load of the run unlinked."""
        token = object()
        try:
            with self._lock:
                # One call that checks and claims: a Ctrl-C lands where a call returns, here inside `try`.
                first = self._loaded.setdefault(key, token) is token
            yield first
        except BaseException:
            with self._lock:
                if self._loaded.get(key) is token:
                    del self._loaded[key]
            raise

    def _saved_remote(self, url: str, framework: str, model_path: str | None, iteration: int | None) -> None:
        run = self._run
        shown = redact_url(url)
        model, count = self._model_and_count(redact_url(model_path or url), framework)
        iteration = count if iteration is None else iteration

        def content_of(_: None) -> Content:
            try:
                return remote_content(url)
            except Exception as exc:
                record(status="failed", reason=f"{shown} could not be read to hash it: {exc}")
                raise

        def record(**values) -> None:
            owner = model if isinstance(model, ModelRecord) else model()
            run.ctx_for_worker.store.add_snapshot(owner.id, uri=shown, iteration=iteration, source_path=shown, **values)

        def link(content: Content) -> None:
            record(status="stored", digest=content.digest, size=content.size, stored_at=time.time())

        job = run.pipeline.submit_load(None, link, fence_key=url, label=f"snapshot of {shown}", content_of=content_of)
        if run.store_before_return:
            run.pipeline.wait_for(job, "done")

    def _loaded_remote(self, url: str, framework: str) -> None:
        run = self._run
        shown = redact_url(url)

        def link(content: Content) -> None:
            sources = Sources(files=((shown, os.path.basename(shown)),), name=os.path.basename(shown), single=True)
            lineage.record_load(run.ctx_for_worker, run.task_id, run.record.project, shown, framework, sources, content)

        with self._first_load((url,)) as first:  # an object store has no cheap stat: one link per URL and task
            if not first:
                return
            job = run.pipeline.submit_load(None, link, fence_key=url, label=f"lineage of {shown}",
                                           content_of=lambda _: remote_content(url))
        if run.store_before_return:
            run.pipeline.wait_for(job, "done")

    def _model_request(self, path: str, framework: str) -> Callable[[], ModelRecord]:
        """The model of a path's first save, found or created by the journal writer (off this thread)."""
        run = self._run

        def find_or_create() -> ModelRecord:
            model = self._models.get(path)
            if model is None:
                model = self._path_model(run.ctx_for_worker, path, framework)
                self._models[path] = model
            return model

        return find_or_create

    def _path_model(self, ctx: "Context", path: str, framework: str) -> ModelRecord:
        run = self._run
        # As in ClearML, a model a framework saves takes the task's label enumeration.
        labels = ctx.store.get_task(run.task_id).labels
        model, _ = ctx.store.find_or_create_model(
            run.task_id, "capture", {"source_path": path}, name=os.path.basename(path.rstrip(os.sep)),
            project=run.record.project, framework=framework, meta={LABELS_KEY: labels} if labels else {},
        )
        return model

    def rehearse_first_save(self, ctx: "Context") -> ModelRecord:
        """The model of a path's first save, as _model_request makes it, for a rehearsal (Database.rehearsal:
        rolled back; the path names no file)."""
        return self._path_model(ctx, os.path.join(os.sep, "autolog-rehearsal", "model.pt"), "torch")

