"""SnapshotPipeline: captured saves are stored in the background, never blocking training on I/O.

In the training thread, after the framework's save returned, `submit` does O(1) work: open read
handles on the saved file(s) (a later rename or delete cannot lose them), journal a `pending`
snapshot row, enqueue. A stager thread copies each snapshot out of the user's file (kernel copy,
checked against in-place changes) and hashes the copy; uploader threads publish staged copies to
remote stores with retries. `fence(path)` makes a save wait only while the previous snapshot of
the same path is still being read. The backlog of staged-but-not-uploaded bytes is bounded:
`block` waits, `coalesce` drops a superseded, not-yet-uploaded snapshot (recorded as `skipped`).
"""
from __future__ import annotations

import collections
import logging
import os
import shutil
import threading
import time
import weakref
from typing import Callable, TypeVar

from ..config import redact_url, scrub
from ..context import Context
from ..db import ModelRecord
from ..safety import report_failure, strict
from . import identity, objects
from .blobstore import BlobStore, remove_quietly
from .database_guard import BoundedCalls, database_unreachable, retry_while_unreachable
from .jobs import CallJob, PipelineOptions, SnapshotJob
from .objects import OpenedSources, Sources, copied_marker, source_path

logger = logging.getLogger("autolog")
T = TypeVar("T")


_pipelines: "weakref.WeakSet[SnapshotPipeline]" = weakref.WeakSet()
if hasattr(os, "register_at_fork"):
    # A forked child's copies of the parent's pipelines have no threads: never wait on them.
    os.register_at_fork(after_in_child=lambda: _pipelines.clear())


def wait_for_snapshot(snapshot_id: str, timeout: float | None = None) -> None:
    """If this process is still storing that snapshot, wait for it (get_local_copy right after a save)."""
    for pipeline in list(_pipelines):
        job = pipeline._by_snapshot.get(snapshot_id)
        if job is not None:
            job.done.wait(timeout)


def wait_for_loads(timeout: float | None = None) -> None:
    """Wait until this process has recorded the lineage of every load so far (task.models["input"])."""
    for pipeline in list(_pipelines):
        for job in pipeline.pending():
            if isinstance(job, CallJob):
                job.done.wait(timeout)


class SnapshotPipeline:
    def __init__(self, ctx: Context, options: PipelineOptions | None = None):
        self.ctx = ctx
        self.options = options or PipelineOptions()
        self._cond = threading.Condition()
        self._stage_queue: collections.deque = collections.deque()
        self._upload_queue: collections.deque = collections.deque()
        self._unstaged: dict[str, SnapshotJob] = {}  # fence key -> job still reading that path
        self._jobs: list[SnapshotJob] = []  # not yet done
        self._backlog = 0  # bytes staged, not yet uploaded
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._by_snapshot: dict[str, SnapshotJob] = {}
        self._unrecorded: list[str] = []  # saves whose pending row could not be written (database down)
        self._guard = BoundedCalls(probe=self._probe_database)
        self._uploading: set[str] = set()  # sha256 of the snapshots being uploaded now
        _pipelines.add(self)

    # -- training thread ------------------------------------------------------------------
    def fence(self, fence_key: str) -> None:
        """Wait while an earlier snapshot of this path is still being read (it is about to be overwritten)."""
        job = self._unstaged.get(fence_key)
        if job is not None:
            job.staged.wait()

    def submit(
        self, model: ModelRecord, sources: Sources, iteration: int | None, store: BlobStore | None,
        key_for: Callable[[int], str], fence_key: str | None, on_stored: Callable[[SnapshotJob], None] | None = None,
    ) -> SnapshotJob:
        opened = objects.open_sources(sources)
        # A remote snapshot's staging folder (in the cache) is known before its row exists: the row
        # journals it from the start, so a crash right after the copy still leaves it to sync.
        staging = objects.staging_dir(store, "", self.ctx.cache_dir) if store is not None and not store.local else None
        try:
            self._wait_for_room(model.id, opened.size)
            snap = self.bounded(lambda: self.ctx.store.add_snapshot(
                model.id, status="pending", iteration=iteration, entry=sources.entry,
                source_path=source_path(sources), stage_uri=staging,
                source_stat={"files": [[src, st.st_size, st.st_mtime_ns] for (src, _), (_, st) in
                                       zip(sources.files, opened.handles)]},
            ), on_late=lambda snap: self._safe_update_id(snap.id, status="failed", reason=(
                "the database took longer than journal_timeout to record this save; the save went on "
                "without a copy")))
        except BaseException as exc:
            opened.close()
            if isinstance(exc, Exception):
                self.not_recorded(source_path(sources))
            raise
        job = SnapshotJob(snap.id, model, snap.seq, opened, store, key_for(snap.seq), fence_key, opened.size, on_stored)
        job.staging = staging
        self._by_snapshot[snap.id] = job
        self._enqueue(job)
        return job

    def bounded(self, call: Callable[[], T], on_late: Callable[[T], None] | None = None) -> T:
        """A database call of the training thread's, waiting at most journal_timeout (database_guard)."""
        return self._guard.call(call, self.options.journal_timeout, on_late)

    def not_recorded(self, path: str) -> None:
        """A save the database could not take: named in one warning at flush."""
        with self._cond:
            self._unrecorded.append(path)

    def submit_call(self, fn: Callable[[], None], opened: OpenedSources | None, fence_key: str | None,
                    label: str) -> CallJob:
        job = CallJob(fn, opened, fence_key, label)
        self._enqueue(job)
        return job

    def _enqueue(self, job: SnapshotJob | CallJob) -> None:
        with self._cond:
            if job.fence_key:
                self._unstaged[job.fence_key] = job
            self._jobs.append(job)
            self._stage_queue.append(job)
            self._start_threads()
            self._cond.notify_all()

    def _wait_for_room(self, model_id: str, size: int) -> None:
        with self._cond:
            while True:
                unread = sum(1 for j in self._jobs if j.state == "queued")
                over = self._backlog > 0 and self._backlog + size > self.options.backlog_bytes
                if unread < self.options.max_unread and not over:
                    return
                if over and self.options.backlog_policy == "coalesce":
                    if self._coalesce_one(model_id):
                        continue
                    if unread < self.options.max_unread:
                        # Only uploads in flight: admit this save; the next save of the model can
                        # supersede it. Staged copies stay bounded by the uploaders + one per model.
                        return
                self._cond.wait(timeout=1.0)

    def _coalesce_one(self, model_id: str) -> bool:
        """Drop the oldest staged, not-uploading snapshot of this model: the new save supersedes it."""
        for job in self._upload_queue:
            if job.model.id == model_id and job.state == "staged":
                self._upload_queue.remove(job)
                job.state = "skipped"
                self._backlog -= job.size
                threading.Thread(target=self._finish_skipped, args=(job,), daemon=True).start()
                return True
        return False

    def _finish_skipped(self, job: SnapshotJob) -> None:
        if job.staging:
            shutil.rmtree(job.staging, ignore_errors=True)
            remove_quietly(copied_marker(job.staging))
        self._safe_update(job, status="skipped", reason="superseded by a newer save before upload "
                          "(backlog_policy = coalesce)")
        self._complete(job)

    # -- workers --------------------------------------------------------------------------
    def _start_threads(self) -> None:
        if self._threads:
            return
        workers = [self._stager] + [self._uploader] * self.options.upload_workers
        for i, target in enumerate(workers):
            thread = threading.Thread(target=target, name=f"autolog-pipeline-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _next(self, queue: collections.deque) -> SnapshotJob:
        with self._cond:
            while not queue:
                self._cond.wait()
            return queue.popleft()

    def _stager(self) -> None:
        while True:
            job = self._next(self._stage_queue)
            try:
                if isinstance(job, CallJob):
                    job.fn()
                    self._complete(job)
                else:
                    self._stage(job)
            except BaseException as exc:  # noqa: BLE001 - a worker must survive any single job
                self._fail(job, exc)
            finally:
                if job.opened is not None:
                    job.opened.close()
                self._release_fence(job)

    def _release_fence(self, job: SnapshotJob | CallJob) -> None:
        with self._cond:
            if job.fence_key and self._unstaged.get(job.fence_key) is job:
                del self._unstaged[job.fence_key]
            self._cond.notify_all()
        job.staged.set()

    def _stage(self, job: SnapshotJob) -> None:
        opened = job.opened
        stats = [st for _, st in opened.handles]
        if job.store is None:  # output_uri=None: path and hash only
            content = identity.opened_content(self.ctx, opened)
            self._safe_update(job, status="local", uri=source_path(opened.sources), sha256=content.sha256,
                              size=content.size, files=content.manifest)
            return self._complete(job)
        job.staging = job.staging or objects.staging_dir(job.store, job.key, self.ctx.cache_dir)

        def copied() -> None:
            if not job.store.local:  # before the source may be overwritten: the copy is complete and checked
                open(copied_marker(job.staging), "wb").close()
            self._release_fence(job)

        try:
            job.content = objects.stage(opened, job.staging, on_copied=copied)
        except BaseException:
            shutil.rmtree(job.staging, ignore_errors=True)
            remove_quietly(copied_marker(job.staging))
            raise
        job.stats = stats
        with self._cond:
            job.state = "staged"
        if job.store.local:
            self._remember_hashes(job)
            return self._publish(job)
        # Remote: the uploaders write to the database; the stager never waits for it (a save of a
        # queued snapshot's path may be waiting for the stager at the fence).
        with self._cond:
            self._backlog += job.size
            self._upload_queue.append(job)
            self._cond.notify_all()

    def _uploader(self) -> None:
        while True:
            job = self._next(self._upload_queue)
            with self._cond:
                if job.state != "staged":  # skipped by coalescing meanwhile
                    continue
                job.state = "uploading"
                # Same bytes saved twice: the second waits for the first, then dedupe finds it stored.
                while job.content.sha256 in self._uploading:
                    self._cond.wait()
                self._uploading.add(job.content.sha256)
            try:
                self._journal_staged(job)
                self._publish(job)
            except BaseException as exc:  # noqa: BLE001
                self._fail(job, exc, keep_pending=True)
            finally:
                with self._cond:
                    self._uploading.discard(job.content.sha256)
                    self._backlog -= job.size
                    self._cond.notify_all()

    def _remember_hashes(self, job: SnapshotJob) -> None:
        entries = job.content.manifest or [{"sha256": job.content.sha256}]
        try:
            for st, entry in zip(job.stats, entries):
                identity.remember(self.ctx, st, entry["sha256"])
        except Exception as exc:  # noqa: BLE001 - a cache: the snapshot goes on without it
            if not database_unreachable(exc):
                raise

    def _journal_staged(self, job: SnapshotJob) -> None:
        """What sync needs to publish the staged copy after a crash (its copied marker covers the time
        before this); the upload goes on when the database is unreachable."""
        self._remember_hashes(job)
        try:
            self.ctx.store.update_snapshot(job.snapshot_id, sha256=job.content.sha256, size=job.content.size,
                                           files=job.content.manifest, stage_uri=job.staging)
        except Exception as exc:  # noqa: BLE001
            if not database_unreachable(exc):
                raise
            logger.debug("autolog: staged copy of %s not journaled (%s)", job.label, exc)

    def _publish(self, job: SnapshotJob) -> None:
        # Uploaders may wait for the database to come back; the stager (local stores) may not.
        record = self._until_database_answers if not job.store.local else (lambda fn: fn())
        finder = stored_copy_finder(self.ctx, job.store, job.snapshot_id)
        published = objects.publish_staged(
            job.staging, job.opened.sources, job.content, job.store, job.key, self.ctx.cache_dir,
            find_copy=lambda sha256: record(lambda: finder(sha256)), put_file=self._put_with_retries(job),
        )
        job.uri = published.uri
        record(lambda: self.ctx.store.update_snapshot(
            job.snapshot_id, status="stored", uri=redact_url(published.uri), entry=published.entry,
            sha256=published.content.sha256, size=published.content.size, files=published.content.manifest,
            stage_uri=None, reason=None, stored_at=time.time(),
        ))
        if not job.store.local:
            remove_quietly(copied_marker(job.staging))
        if job.on_stored is not None:
            job.on_stored(job)
        self._complete(job)

    def _put_with_retries(self, job: SnapshotJob) -> Callable[[str, str], object]:
        def put(local: str, key: str) -> object:
            delay = self.options.retry_backoff
            for attempt in range(1, self.options.upload_retries + 1):
                try:
                    return job.store.put_file(local, key)
                except Exception as exc:  # noqa: BLE001 - storage errors come in many types
                    if attempt == self.options.upload_retries:
                        raise
                    logger.debug("autolog: upload of %s failed (%s), retry %d in %.1fs", key, exc, attempt, delay)
                    time.sleep(delay)
                    delay = min(delay * 2, 30.0)
            return None

        return put

    # -- outcomes -------------------------------------------------------------------------
    def _complete(self, job: SnapshotJob) -> None:
        with self._cond:
            if job.state not in ("failed", "skipped"):
                job.state = "done"
            if job in self._jobs:
                self._jobs.remove(job)
            self._cond.notify_all()
        if isinstance(job, SnapshotJob):
            self._by_snapshot.pop(job.snapshot_id, None)
        job.staged.set()
        job.done.set()

    def _fail(self, job: SnapshotJob | CallJob, exc: BaseException, keep_pending: bool = False) -> None:
        job.error = exc
        reason = f"{type(exc).__name__}: {scrub(str(exc))}"
        kept = keep_pending and isinstance(job, SnapshotJob) and job.staging and os.path.exists(job.staging)
        if isinstance(job, CallJob):
            pass
        elif kept:
            reason = f"upload failed ({reason}); staged copy kept at {job.staging}: run `autolog sync`"
            self._safe_update(job, patient=True, reason=reason)
        else:
            self._safe_update(job, patient=keep_pending, status="failed", reason=reason)
            if job.staging:
                remove_quietly(copied_marker(job.staging))
        with self._cond:
            job.state = "failed"
            if strict():
                self._errors.append(exc)
        if isinstance(job, CallJob):
            report_failure(job.label, exc, kind="lineage of a loaded file")
        elif kept:
            report_failure(f"model snapshot {job.label} (its staged copy is kept: run `autolog sync` once the "
                           "storage works again)", exc, kind="model snapshot")
        else:
            report_failure(f"model snapshot {job.label}", exc, kind="model snapshot")
        self._complete(job)

    def _until_database_answers(self, write: Callable[[], T]) -> T:
        return retry_while_unreachable(write, self.options.db_retry_seconds)

    def _probe_database(self) -> None:
        with self.ctx.store.read() as conn:
            conn.exec_driver_sql("SELECT 1")

    def _safe_update_id(self, snapshot_id: str, what: str = "a late snapshot's status", patient: bool = False,
                        **values: object) -> None:
        try:
            write = lambda: self.ctx.store.update_snapshot(snapshot_id, **values)  # noqa: E731
            self._until_database_answers(write) if patient else write()
        except Exception as exc:  # noqa: BLE001 - the journal row stays pending; sync resolves it
            report_failure(what, exc, kind="model snapshot status")

    def _safe_update(self, job: SnapshotJob, patient: bool = False, **values: object) -> None:
        self._safe_update_id(job.snapshot_id, f"model snapshot {job.label} status", patient, **values)

    # -- waiting --------------------------------------------------------------------------
    def pending(self) -> list[SnapshotJob]:
        with self._cond:
            return list(self._jobs)

    def wait(self, job: SnapshotJob, timeout: float | None = None) -> SnapshotJob:
        job.done.wait(timeout)
        return job

    def flush(self, timeout: float | None = None, progress: bool = True) -> list[SnapshotJob]:
        """Wait for every snapshot to be stored; returns those still pending after timeout seconds."""
        from .progress import FlushProgress

        deadline = None if timeout is None else time.monotonic() + timeout
        with FlushProgress(self.pending(), enabled=progress) as bar:
            while True:
                remaining = self.pending()
                bar.update(remaining)
                if not remaining:
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                with self._cond:
                    self._cond.wait(timeout=0.2 if left is None else min(0.2, left))
        self._warn_unrecorded()
        if self._errors:
            error = self._errors.pop(0)
            self._errors.clear()
            raise error
        return self.pending()

    def _warn_unrecorded(self) -> None:
        with self._cond:
            paths, self._unrecorded = self._unrecorded, []
        if paths:
            shown = ", ".join(paths[:10]) + (" ..." if len(paths) > 10 else "")
            logger.warning(
                "autolog: %d save(s) were not recorded (their snapshot could not be journaled in the database, "
                "see the warning above): %s. Their files were not copied; save them again (or upload them with "
                "task.update_output_model) once the database is reachable.", len(paths), shown,
            )



def stored_copy_finder(
    ctx: Context, store: BlobStore, snapshot_id: str | None = None
) -> Callable[[str], tuple[str, str] | None]:
    """Dedupe: find a stored snapshot of the same content in the same output_uri (still present).

    The object is claimed (the pending snapshot row takes its uri) before it is checked, so that
    retention, which keeps objects any stored or pending row points at, cannot delete it meanwhile.
    """
    def find(sha256: str) -> tuple[str, str] | None:
        existing = ctx.store.stored_copy(sha256, redact_url(store.root))
        if existing is None or not existing.uri:
            return None
        if snapshot_id is not None:
            ctx.store.update_snapshot(snapshot_id, uri=existing.uri)
        if store.exists(existing.uri):
            return existing.uri, existing.entry
        if snapshot_id is not None:
            ctx.store.update_snapshot(snapshot_id, uri=None)
        return None

    return find
