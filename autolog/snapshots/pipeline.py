"""SnapshotPipeline: captured saves are stored in the background; the training thread never waits on
the database, the network or a copy it does not need.

On the training thread, after the framework's save returned, `submit` opens read handles on the
saved file(s) (a later rename or delete cannot lose them) and queues a job: no database call, no
thread started. Background workers then take it through its steps, batching database writes so a
save in a tight loop costs little more than the save itself:

    journal writer  pending rows (model, seq) for every queued save, one transaction per batch
    stager          copies each snapshot out of the user's file (kernel copy, checked against
                    in-place changes) and hashes the copy; releases the path's fence
    uploaders       remote stores: dedupe, upload with retries
    recorder        local stores: dedupe, rename into place; then the stored rows (and the stat
                    cache), one transaction per batch; retention
    lineage         a load's hash, linked once every earlier save of this process is recorded

`fence(path)` makes a save wait only while the previous snapshot of that path is still unread. The
backlog is bounded (`max_unread` open snapshots; `backlog_bytes` staged for upload: `block` waits,
`coalesce` drops a superseded not-yet-uploaded snapshot, recorded `skipped`).

No wait here is unbounded: every wait (fence, backlog room, a save stored before it returns, flush)
stops as soon as the work made no progress for `stall_timeout` seconds or a worker is broken, and
says what is left. The workers' loops cannot die (worker.py).
"""
from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import threading
import time
import weakref
from typing import Callable, Iterable, Iterator

from ..config import scrub
from ..context import Context
from ..db import ModelRecord, new_id
from ..forking import on_fork
from ..safety import report_failure, strict
from ..storage import objects
from ..storage.blobstore import BlobStore
from ..storage.objects import OpenedSources, SourceChangedError, Sources, source_path
from . import steps
from .database_guard import retry_while_unreachable
from .jobs import CallJob, FlushOutcome, PipelineOptions, SnapshotJob
from .worker import Heartbeat, Supervisor, Worker, attempt, attempt_all

logger = logging.getLogger("autolog")

BATCH = 256  # jobs per database transaction at most


class PipelineStalled(RuntimeError):
    """Background work made no progress: a save is not queued behind it."""


_pipelines: "weakref.WeakSet[SnapshotPipeline]" = weakref.WeakSet()
# A forked child's copies of the parent's pipelines have no threads: never wait on them.
on_fork("snapshots.pipelines", after_in_child=lambda: _pipelines.clear())


def wait_for_snapshot(snapshot_id: str) -> None:
    """If this process is still storing that snapshot, wait for it (get_local_copy right after a save)."""
    for pipeline in list(_pipelines):
        job = pipeline._by_snapshot.get(snapshot_id)
        if job is not None:
            pipeline.wait_for(job, "done")


def wait_for_journal() -> None:
    """Wait until every save of this process so far has its row (task.models right after a save)."""
    for pipeline in list(_pipelines):
        pipeline.wait_until(lambda p=pipeline: not p._journal_queue and not p._journaling, "journaled")


def wait_for_loads() -> None:
    """Wait until this process has recorded the lineage of every load so far (task.models["input"])."""
    for pipeline in list(_pipelines):
        for job in pipeline.pending():
            if isinstance(job, CallJob):
                pipeline.wait_for(job, "done")


class SnapshotPipeline:
    def __init__(self, ctx: Context, options: PipelineOptions | None = None):
        self.ctx = ctx
        self.options = options or PipelineOptions()
        # One lock; each kind of worker sleeps on a condition of its own, so an event wakes the thread
        # that has work, not every thread (on two cores, needless wake-ups cost the training thread).
        lock = threading.RLock()
        self._cond = threading.Condition(lock)  # state changes: flush, fences, room, earlier saves
        self._wakeup = {name: threading.Condition(lock) for name in ("recorder", "stage", "upload", "lineage")}
        self._journal_queue: collections.deque = collections.deque()
        self._stage_queue: collections.deque = collections.deque()
        self._upload_queue: collections.deque = collections.deque()
        self._record_queue: collections.deque = collections.deque()
        self._lineage_queue: collections.deque = collections.deque()
        self._journaling = 0  # jobs taken by the journal writer, not yet in the stage queue
        self._unstaged: dict[str, SnapshotJob | CallJob] = {}  # fence key -> job still reading that path
        self._jobs: dict[int, SnapshotJob | CallJob] = {}  # not yet done, by submission order
        self._unread = 0  # snapshots whose files are held open, not yet copied
        self._held = 0  # bytes of small snapshots read into memory, not yet written
        self._gathering = False  # the recorder is gathering work for one transaction
        self._waiting = 0  # callers waiting for work to finish: the recorder stops gathering
        self._backlog = 0  # bytes staged, not yet published (uploaded, or renamed into a local store)
        self._errors: list[BaseException] = []
        self._failed: list[tuple[str, str]] = []  # (label, reason) of snapshots that failed, for close
        self._kept: list[tuple[str, str]] = []  # (label, reason) of snapshots left pending with a staged copy
        self._by_snapshot: dict[str, SnapshotJob] = {}
        self._unrecorded: list[str] = []  # saves that got no row (the database could not take them)
        self._unqueued: list[str] = []  # saves not queued because the background work had stalled
        # sha256 -> the snapshot uploading those bytes, until it is recorded: the same bytes saved again
        # wait for it, then dedupe finds it stored
        self._uploading: dict[str, SnapshotJob] = {}
        self._order = itertools.count(1)
        self._heartbeat = Heartbeat()
        workers = [
            # One thread writes the rows of saves and their outcomes: two writers would queue for
            # SQLite's write lock, whose busy handler sleeps milliseconds at a time.
            Worker("autolog-recorder", self._take_database_work, self._write_rows, self._journal_failed,
                   self._after_journal),
            Worker("autolog-stager", lambda: self._take(self._stage_queue, "stage"), self._stage, self._fail,
                   self._after_staging),
            Worker("autolog-lineage", lambda: self._take(self._lineage_queue, "lineage"), self._link, self._fail,
                   self._after_staging),
        ] + [
            Worker(f"autolog-uploader-{i}", self._take_upload, self._upload,
                   lambda job, exc: self._fail(job, exc, keep_pending=True), self._after_upload)
            for i in range(self.options.upload_workers)
        ]
        self._supervisor = Supervisor(workers)
        self._started = False
        _pipelines.add(self)

    # -- training thread ------------------------------------------------------------------
    def fence(self, fence_key: str) -> None:
        """Wait while an earlier snapshot of this path is still unread (it is about to be overwritten)."""
        job = self._unstaged.get(fence_key)
        if job is not None and not self.wait_for(job, "staged"):
            job.overwritten_unread = True

    def submit(
        self, model: ModelRecord | Callable[[], ModelRecord], sources: Sources, iteration: int | None,
        store: BlobStore | None, key_for: Callable[[ModelRecord, int], str], fence_key: str | None,
        on_stored: Callable[[SnapshotJob], None] | None = None,
    ) -> SnapshotJob:
        """Queue a snapshot of sources (opened now). model: its record, or a call that finds or creates
        it (run by the journal writer, so the first save of a path makes no database call here)."""
        opened = objects.open_sources(sources)
        try:
            self._wait_for_room(opened.size, fence_key)
        except BaseException as exc:
            opened.close()
            if isinstance(exc, PipelineStalled):  # the database is fine: say why it was not queued
                with self._cond:
                    self._unqueued.append(source_path(sources))
            else:
                self.not_recorded(source_path(sources))
            raise
        known = model if isinstance(model, ModelRecord) else None
        job = SnapshotJob(new_id(), known, opened, store, fence_key, opened.size, iteration=iteration,
                          key_for=key_for, model_request=None if known else model, on_stored=on_stored)
        job.stats = [st for _, st in opened.handles]
        self._by_snapshot[job.snapshot_id] = job
        if self._held + job.size <= self.options.held_bytes and steps.read_inline(job, self.options.inline_bytes):
            job.fence_key = None  # its bytes are held: a later save of the path need not wait
            job.staged.set()
            self._enqueue(job, self._journal_queue, self._record_queue)
            return job
        # Chosen now, so the copy can start before the row exists and the row still names it for sync.
        job.staging = objects.staging_dir(store, self.ctx.cache_dir) if store is not None else None
        self._enqueue(job, self._journal_queue, self._stage_queue)
        return job

    def not_recorded(self, path: str) -> None:
        """A save that got no row: named in the summary at flush."""
        with self._cond:
            self._unrecorded.append(path)

    def submit_load(self, opened: OpenedSources, link: Callable[[objects.Content], None], fence_key: str | None,
                    label: str, content_of: Callable[[OpenedSources], objects.Content]) -> CallJob:
        job = CallJob(link, opened, fence_key, label, content_of=content_of)
        self._enqueue(job, self._lineage_queue)
        return job

    def _enqueue(self, job: SnapshotJob | CallJob, *queues: collections.deque) -> None:
        with self._cond:
            job.order = next(self._order)
            if job.fence_key:
                self._unstaged[job.fence_key] = job
            if isinstance(job, SnapshotJob) and not job.staged.is_set():
                self._unread += 1
            if isinstance(job, SnapshotJob) and job.data is not None:
                self._held += job.size
            if not self._jobs:
                self._heartbeat.beat()  # the clock of a stall starts with the first job waiting
            self._jobs[job.order] = job
            for queue in queues:
                queue.append(job)
            self._wake(*(w for w, q in (("recorder", self._journal_queue), ("stage", self._stage_queue),
                                        ("lineage", self._lineage_queue))
                         if any(q is queue for queue in queues) and not (w == "recorder" and self._gathering)))
            if not self._started:
                self._started = True
                for worker in self._supervisor.workers:
                    worker.start()
            self._cond.notify_all()

    def _wait_for_room(self, size: int, fence_key: str | None) -> None:
        with self._cond:
            while True:
                unread = self._unread
                over = self._backlog > 0 and self._backlog + size > self.options.backlog_bytes
                if unread < self.options.max_unread and not over:
                    return
                if over and self.options.backlog_policy == "coalesce":
                    if self._coalesce_one(fence_key):
                        continue
                    if unread < self.options.max_unread:
                        # Only uploads in flight: admit this save; the next save of the model can
                        # supersede it. Staged copies stay bounded by the uploaders + one per model.
                        return
                self._cond.wait(timeout=0.25)
                stalled = self._stall_reason()
                if stalled is not None:
                    raise PipelineStalled(f"{stalled}; this save was not queued behind it. Snapshots already "
                                          "journaled are finished by `autolog sync` once storage and database "
                                          "work again.")

    def _coalesce_one(self, fence_key: str | None) -> bool:
        """Drop the oldest staged, not-uploading snapshot of the path this save writes: it supersedes it."""
        if fence_key is None:
            return False
        for job in self._upload_queue:
            if job.state == "staged" and job.fence_key == fence_key:
                self._upload_queue.remove(job)
                job.state = "skipped"
                self._count_backlog(job, False)
                threading.Thread(target=self._finish_skipped, args=(job,), daemon=True).start()
                return True
        return False

    def _finish_skipped(self, job: SnapshotJob) -> None:
        try:
            attempt_all(steps.discard_staging(job))
            self.wait_until(lambda: job.journal_settled, f"the row of {job.label}")
            if job.journaled:
                self._write_status(job, status="skipped",
                                   reason="superseded by a newer save before upload (backlog_policy = coalesce)")
        finally:
            self._complete(job)

    # -- taking work ----------------------------------------------------------------------
    def _wake(self, *workers: str) -> None:
        """Wake the workers named (and whoever waits for a state change). Called holding the lock."""
        for name in workers:
            self._wakeup[name].notify_all()
        self._cond.notify_all()

    def _take(self, queue: collections.deque, worker: str) -> SnapshotJob | CallJob:
        with self._cond:
            while not queue:
                self._wakeup[worker].wait()
            return queue.popleft()

    def _take_database_work(self) -> list[SnapshotJob]:
        """Saves to journal (perhaps none), once there are rows to write or outcomes to record.

        Work that arrives while nobody waits for it is gathered a while: one transaction for many
        saves costs the training thread far less than one each. Rows of new saves (the journal that
        `autolog sync` finishes after a crash) wait at most journal_window seconds, outcomes batch_window.
        """
        with self._cond:
            while not self._journal_queue and not self._settled(self._record_queue, 1, remove=False):
                self._wakeup["recorder"].wait()
            start = time.monotonic()
            self._gathering = True
            try:
                while not self._waiting and len(self._journal_queue) + len(self._record_queue) < BATCH:
                    window = self.options.journal_window if self._journal_queue else self.options.batch_window
                    left = start + window - time.monotonic()
                    if left <= 0:
                        break
                    self._wakeup["recorder"].wait(left)
            finally:
                self._gathering = False
            batch = [self._journal_queue.popleft() for _ in range(min(BATCH, len(self._journal_queue)))]
            self._journaling += len(batch)
            return batch

    def _settled(self, queue: collections.deque, limit: int, remove: bool = True) -> list[SnapshotJob]:
        """Up to limit jobs of the queue whose row is written (or cannot be), in order."""
        with self._cond:
            settled = [j for j in itertools.islice(queue, 0, 4 * BATCH) if j.journal_settled][:limit]
            if remove:
                for job in settled:
                    queue.remove(job)
            return settled

    def _take_settled(self, queue: collections.deque, limit: int) -> list[SnapshotJob]:
        with self._cond:
            while True:
                settled = self._settled(queue, limit)
                if settled:
                    return settled
                self._wakeup["upload"].wait()

    def _take_upload(self) -> SnapshotJob:
        """The next staged snapshot, claimed for upload (superseded ones are passed over)."""
        with self._cond:
            while True:
                (job,) = self._take_settled(self._upload_queue, 1)
                if job.state != "staged":  # skipped by coalescing meanwhile
                    continue
                if not job.journaled:  # no row to record it in
                    job.state = "uploading"
                    return job
                job.state = "uploading"
                # Same bytes saved twice: the second waits for the first, then dedupe finds it stored.
                while job.content.sha256 in self._uploading:
                    self._wakeup["upload"].wait()
                self._uploading[job.content.sha256] = job
                return job

    # -- the steps ------------------------------------------------------------------------
    def _write_rows(self, batch: list[SnapshotJob]) -> None:
        """The recorder's round: pending rows for the saves taken, then the outcomes that are ready."""
        if batch:
            try:
                self._journal(batch)
            except BaseException as exc:  # noqa: BLE001 - those saves get no row; recording goes on
                self._journal_failed(batch, exc)
            finally:
                self._after_journal(batch)
        ready = self._settled(self._record_queue, BATCH)
        if ready:
            try:
                self._record(ready)
            except BaseException as exc:  # noqa: BLE001
                self._fail_all(ready, exc, keep_pending=True)

    def _journal(self, batch: list[SnapshotJob]) -> None:
        """Pending rows for a batch of saves, in one transaction (retried while the database is down).
        Runs beside the stager: a job may be copied before, while or after its row is written."""
        for job in batch:
            if job.model is None:
                try:
                    job.model = job.model_request()
                except BaseException as exc:  # noqa: BLE001 - this save only
                    self._journal_failed([job], exc)
        ready = [j for j in batch if j.journal_error is None]
        if ready:
            rows = [steps.pending_row(j) for j in ready]
            seqs = retry_while_unreachable(lambda: self.ctx.store.add_snapshots(rows), self.options.db_retry_seconds)
            with self._cond:
                for job in ready:
                    job.key = job.key_for(job.model, seqs[job.snapshot_id])
                    job.seq = seqs[job.snapshot_id]
                self._wake("upload")
        self._heartbeat.beat()

    def _journal_failed(self, batch: list[SnapshotJob], exc: BaseException) -> None:
        """These saves get no row: whatever else happens to them, they end as not recorded."""
        with self._cond:
            for job in batch:
                if not job.journal_settled:
                    job.journal_error = exc
            self._wake("upload", "recorder")

    def _after_journal(self, batch: list[SnapshotJob]) -> None:
        with self._cond:
            self._journaling -= sum(1 for job in batch if not job.journal_counted)
            for job in batch:
                job.journal_counted = True
            self._cond.notify_all()

    def _stage(self, job: SnapshotJob) -> None:
        if job.store is None:  # output_uri=None: path and hash only
            job.content = steps.content_in_place(self.ctx, job)
            return self._to_recorder(job)
        try:
            steps.stage(self.ctx, job, on_copied=lambda: self._release_fence(job), beat=self._heartbeat.beat)
        except BaseException:
            attempt_all(steps.discard_staging(job))
            raise
        with self._cond:
            job.state = "staged"
            self._count_backlog(job, True)
        self._heartbeat.beat()
        if job.store.local:
            return self._to_recorder(job)
        with self._cond:  # remote: the uploaders take it from here
            self._upload_queue.append(job)
            self._wake("upload")

    def _after_staging(self, job: SnapshotJob | CallJob) -> None:
        if job.opened is not None:
            attempt("closing the saved file", job.opened.close)
        self._release_fence(job)

    def _upload(self, job: SnapshotJob) -> None:
        if not job.journaled:
            raise job.journal_error
        steps.journal_staged(self.ctx, job)
        steps.upload(self.ctx, self.options, job, beat=self._heartbeat.beat)
        self._to_recorder(job)

    def _after_upload(self, job: SnapshotJob) -> None:
        with self._cond:
            self._count_backlog(job, False)
            self._wake("upload")

    def _count_backlog(self, job: SnapshotJob, staged: bool) -> None:
        """Called holding the lock; each job counts once, from its staging to its publication."""
        if job.in_backlog != staged:
            job.in_backlog = staged
            self._backlog += job.size if staged else -job.size

    def _to_recorder(self, job: SnapshotJob) -> None:
        with self._cond:
            self._record_queue.append(job)
            if not self._gathering:
                self._wake("recorder")

    def _record(self, batch: list[SnapshotJob]) -> None:
        """Publish local snapshots and record the batch's outcomes in one transaction."""
        ready = []
        for job in [j for j in batch if not j.journaled]:
            self._fail(job, job.journal_error)
        batch = [j for j in batch if j.journaled]
        local = [j for j in batch if j.store is not None and j.store.local and j.published is None]
        copies = retry_while_unreachable(lambda: steps.stored_copies(self.ctx, local), self.options.db_retry_seconds) \
            if local else {}
        for job in batch:
            try:
                if job in local:
                    steps.publish_local(self.ctx, job, copies)
                ready.append(job)
            except BaseException as exc:  # noqa: BLE001 - this snapshot only
                self._fail(job, exc)
        if ready:
            retry_while_unreachable(lambda: steps.record_outcomes(self.ctx, ready), self.options.db_retry_seconds)
        self._heartbeat.beat()
        for job in ready:
            if job.on_stored is not None and job.store is not None:
                attempt(f"after storing {job.label}", lambda job=job: self._after_stored(job))
            self._complete(job)

    def _after_stored(self, job: SnapshotJob) -> None:
        """on_stored (retention): the row says stored whatever happens here; a failure is one warning
        per kind (raised at flush when strict), as any logging failure."""
        try:
            job.on_stored(job)
        except Exception as exc:  # noqa: BLE001
            report_failure(f"the work after storing model snapshot {job.label}", exc, kind="after a stored snapshot")
            if strict():
                with self._cond:
                    self._errors.append(exc)

    def _link(self, job: CallJob) -> None:
        """A load: hash what was loaded (releasing its fence), then link it once earlier saves are recorded."""
        content = job.content_of(job.opened)
        self._after_staging(job)
        self.wait_until(lambda: not any(isinstance(j, SnapshotJob) and j.order < job.order for j in self._jobs.values()),
                        f"earlier saves before the lineage of {job.label}")
        job.link(content)
        self._complete(job)

    def _release_fence(self, job: SnapshotJob | CallJob) -> None:
        """The job's files are read: a save may overwrite them (called once or more per job)."""
        with self._cond:
            if job.fence_key and self._unstaged.get(job.fence_key) is job:
                del self._unstaged[job.fence_key]
            if not job.staged.is_set():
                job.staged.set()
                if isinstance(job, SnapshotJob):
                    self._unread -= 1
            self._cond.notify_all()

    # -- outcomes -------------------------------------------------------------------------
    def _complete(self, job: SnapshotJob | CallJob) -> None:
        with self._cond:
            if job.state not in ("failed", "skipped"):
                job.state = "done"
            if self._jobs.pop(job.order, None) is not None and isinstance(job, SnapshotJob):
                self._count_backlog(job, False)
                if job.content is not None and self._uploading.get(job.content.sha256) is job:
                    del self._uploading[job.content.sha256]
                    self._wake("upload")
                if job.data is not None:
                    self._held -= job.size
                    job.data = None
            self._cond.notify_all()
        self._heartbeat.beat()
        if isinstance(job, SnapshotJob):
            self._by_snapshot.pop(job.snapshot_id, None)
        self._release_fence(job)
        job.done.set()

    def _fail_all(self, batch: Iterable[SnapshotJob], exc: BaseException, keep_pending: bool = False) -> None:
        for job in batch:
            if job.state not in ("failed", "skipped", "done"):
                attempt(f"settling {job.label}", lambda job=job: self._fail(job, exc, keep_pending))

    def _fail(self, job: SnapshotJob | CallJob, exc: BaseException, keep_pending: bool = False) -> None:
        """Settle a job whose step raised: its row says why (the real cause), then it is complete."""
        try:
            job.error = exc
            reason = _reason(job, exc)
            kept = False
            if isinstance(job, SnapshotJob):
                self._release_fence(job)  # its file is not needed any more: the next save may go on
                # A copy may fail before the journal writer wrote the row: the row must say why.
                self.wait_until(lambda: job.journal_settled, f"the row of {job.label}")
                kept = bool(keep_pending and job.staging and _exists(job.staging))
                if not job.journaled:
                    self.not_recorded(f"{job.label}: {_reason(job, job.journal_error or exc)}")
                    attempt_all(steps.discard_staging(job))
                elif kept:
                    reason = f"not stored yet ({reason}); staged copy kept at {job.staging}: run `autolog sync`"
                    # What sync needs to trust the kept copy (a local store's copy has no copied marker).
                    content = {"sha256": job.content.sha256, "size": job.content.size,
                               "files": job.content.manifest} if job.content is not None else {}
                    self._write_status(job, patient=True, reason=reason, **content)
                else:
                    written = self._write_status(job, patient=keep_pending, status="failed", reason=reason)
                    published = job.published
                    if written and published is not None and not published.deduplicated:
                        # Published, then recording it failed: a failed snapshot owns no object in the store.
                        attempt(f"removing the object of {job.label}", lambda: job.store.delete(published.uri))
                    attempt_all(steps.discard_staging(job))
            with self._cond:
                job.state = "failed"
                if isinstance(job, SnapshotJob) and job.journaled:
                    (self._kept if kept else self._failed).append((job.label, _reason(job, exc) if kept else reason))
                if strict():
                    self._errors.append(exc)
            _report(job, exc, kept)
        finally:
            self._complete(job)

    def _write_status(self, job: SnapshotJob, patient: bool = False, **values: object) -> bool:
        """Record a snapshot's outcome; if the database cannot take it, the row stays pending for sync
        (False)."""
        try:
            def write() -> None:
                self.ctx.store.update_snapshot(job.snapshot_id, **values)
            retry_while_unreachable(write, self.options.db_retry_seconds) if patient else write()
            return True
        except Exception as exc:  # noqa: BLE001
            report_failure(f"model snapshot {job.label} status", exc, kind="model snapshot status")
            return False

    # -- waiting --------------------------------------------------------------------------
    def pending(self) -> list[SnapshotJob | CallJob]:
        with self._cond:
            return list(self._jobs.values())

    def wait_for(self, job: SnapshotJob | CallJob, what: str) -> bool:
        """Wait until the job is staged or done; False when the work stalled first (nothing is left
        waiting on a stuck worker)."""
        event = job.staged if what == "staged" else job.done
        if event.is_set():
            return True
        # Waiting for a copy (the fence) needs nothing of the recorder: let it go on gathering.
        with self._someone_waits() if what == "done" else contextlib.nullcontext():
            while not event.wait(0.25):
                if self._stall_reason() is not None:
                    return event.is_set()
        return True

    @contextlib.contextmanager
    def _someone_waits(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            self._wake("recorder")
        try:
            yield
        finally:
            with self._cond:
                self._waiting -= 1

    def wait_until(self, ready: Callable[[], bool], what: str) -> bool:
        """Wait until ready() holds, while the work progresses; False when it stalled first."""
        with self._cond, self._someone_waits():
            while not ready():
                self._cond.wait(timeout=0.25)
                if not ready() and self._stall_reason() is not None:
                    logger.debug("autolog: stopped waiting for %s: the work stalled", what)
                    return False
        return True

    def _stall_reason(self) -> str | None:
        """Why waiting for the background work is pointless now; None while it moves."""
        broken = self._supervisor.check()
        if broken is not None:
            return broken
        quiet = self._heartbeat.quiet_for()
        if quiet > self.options.stall_timeout and self.pending():
            busy = [f"{w.name}: {w.current}" for w in self._supervisor.workers if w.current]
            at = f" (busy with {'; '.join(busy)})" if busy else ""
            return f"autolog's background work made no progress for {quiet:.0f} s{at}"
        return None

    def flush(self, timeout: float, progress: bool = True) -> FlushOutcome:
        """Wait for every snapshot to be stored, at most timeout seconds and only while work progresses."""
        from .progress import FlushProgress

        deadline = time.monotonic() + timeout
        stalled = None
        with self._someone_waits(), FlushProgress(self.pending(), enabled=progress) as bar:
            while True:
                remaining = self.pending()
                bar.update(remaining)
                left = deadline - time.monotonic()
                if not remaining or left <= 0:
                    break
                stalled = self._stall_reason()
                if stalled is not None:
                    break
                with self._cond:
                    self._cond.wait(timeout=min(0.2, left))
        if self._errors:
            error = self._errors.pop(0)
            self._errors.clear()
            raise error
        with self._cond:
            failed, self._failed = self._failed, []
            unrecorded, self._unrecorded = self._unrecorded, []
            unqueued, self._unqueued = self._unqueued, []
            kept, self._kept = self._kept, []
        return FlushOutcome(left=self.pending(), failed=failed, unrecorded=unrecorded, stalled=stalled,
                            timeout=timeout, unqueued=unqueued, kept=kept)

    def pending_summary(self) -> str:
        jobs = [j for j in self.pending() if isinstance(j, SnapshotJob)]
        shown = ", ".join(j.label for j in jobs[:10]) + (" ..." if len(jobs) > 10 else "")
        return f"{len(jobs)} snapshot(s): {shown}" if jobs else ""


def _reason(job: SnapshotJob | CallJob, exc: BaseException) -> str:
    reason = f"{type(exc).__name__}: {scrub(str(exc))}"
    if isinstance(exc, SourceChangedError) and getattr(job, "overwritten_unread", False):
        return ("overwritten by a later save of the same path before autolog could copy it (background work "
                f"had stalled, so the save did not wait): {reason}")
    return reason


def _report(job: SnapshotJob | CallJob, exc: BaseException, kept: bool) -> None:
    if isinstance(job, CallJob):
        report_failure(job.label, exc, kind="lineage of a loaded file")
    elif kept:
        report_failure(f"model snapshot {job.label} (its staged copy is kept: run `autolog sync` once the "
                       "storage works again)", exc, kind="model snapshot")
    else:
        report_failure(f"model snapshot {job.label}", exc, kind="model snapshot")


def _exists(path: str) -> bool:
    try:
        return os.path.exists(path)
    except (OSError, ValueError):
        return False
