"""SnapshotPipeline: captured saves are stored in the background; the training thread never waits on
the database, the network or a copy it does not need.

On the training thread, after the framework's save returned, `submit` opens read handles on the
saved file(s) (a later rename or delete cannot lose them) and queues a job: no database call, no
thread started. Background workers then take it through its steps, batching database writes so a
save in a tight loop costs little more than the save itself:

    journal writer  pending rows (model, seq) for every queued save, one transaction per batch
    stager          copies each snapshot out of the user's file (kernel copy, checked against
                    in-place changes); releases the path's fence
    hasher          hashes the staged copy: the next save's copy never waits for a hash (a hash
                    holding the GIL now and then, slowed by the training thread, is the slower half);
                    while someone waits for stored snapshots, a large one behind its copy as it is written
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
import stat
import threading
from typing import Callable, Iterable

from ..context import Context
from ..db import ModelRecord, new_time_ordered_id
from ..storage import objects
from ..storage.blobstore import BlobStore
from ..storage.copy_progress import CopyAbandoned, CopyProgress
from ..storage.layout import within
from ..storage.sources import OpenedSources, Sources, open_sources, source_path
from ..storage.set_aside import SetAside, aside_path, same_file_at, set_aside
from . import steps
from .cpu_priority import Hurry, lowers
from .jobs import CallJob, PipelineOptions, SnapshotJob
from .outcomes import Outcomes
from .recording import Recording
from .waiting import PipelineStalled, Waits, track, wait_for_journal, wait_for_loads, wait_for_snapshot
from .worker import Heartbeat, Supervisor, Worker, attempt, attempt_all

__all__ = ["PipelineStalled", "SnapshotJob", "SnapshotPipeline", "wait_for_journal", "wait_for_loads",
           "wait_for_snapshot"]

logger = logging.getLogger("autolog")


class SnapshotPipeline(Recording, Waits, Outcomes):
    def __init__(self, ctx: Context, options: PipelineOptions | None = None,
                 on_wait: Callable[[], None] = lambda: None):
        self.ctx = ctx
        self.options = options or PipelineOptions()
        # Called as a wait on the work begins: the work may need the task's row (a copy that failed says
        # why in its row, publishing needs the rows), so the runtime writes it now (quiet_start.py).
        self._on_wait = on_wait
        # One lock; each kind of worker sleeps on a condition of its own, so an event wakes the thread
        # that has work, not every thread (on two cores, needless wake-ups cost the training thread).
        lock = threading.RLock()
        self._cond = threading.Condition(lock)  # state changes: flush, fences, room, earlier saves
        self._wakeup = {name: threading.Condition(lock)
                        for name in ("recorder", "stage", "hash", "upload", "lineage", "superseded")}
        self._journal_queue: collections.deque = collections.deque()
        self._stage_queue: collections.deque = collections.deque()
        self._hash_queue: collections.deque = collections.deque()
        self._upload_queue: collections.deque = collections.deque()
        self._record_queue: collections.deque = collections.deque()
        self._lineage_queue: collections.deque = collections.deque()
        self._superseded_queue: collections.deque = collections.deque()  # coalesced: staging to discard, status
        self._journaling = 0  # jobs taken by the journal writer, not yet in the stage queue
        self._copying: SnapshotJob | None = None  # the snapshot the stager is copying
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
        # digest -> the snapshot uploading those bytes, until it is recorded: the same bytes saved again
        # wait for it, then dedupe finds it stored
        self._uploading: dict[str, SnapshotJob] = {}
        self._order = itertools.count(1)
        self.took_saves = False  # a save was submitted (the background start then rehearses nothing)
        self._heartbeat = Heartbeat()
        # While someone waits, the stager's and hasher's copy or hash goes on at the waiter's priority.
        self._hurry = Hurry(threads=2 if lowers(self.options.worker_nice) else 0)
        workers = [
            # One thread writes the rows of saves and their outcomes: two writers would queue for
            # SQLite's write lock, whose busy handler sleeps milliseconds at a time.
            # _write_rows settles its own batch (its finally); the worker's cleanup has nothing left to do.
            Worker("autolog-recorder", self._take_database_work, self._write_rows, self._journal_failed,
                   lambda batch: None),
            # The two that move and hash the bytes run when the training leaves a core free (cpu_priority.py).
            Worker("autolog-stager", lambda: self._take(self._stage_queue, "stage"), self._stage, self._fail,
                   self._after_staging, nice=self.options.worker_nice),
            Worker("autolog-hasher", lambda: self._take(self._hash_queue, "hash"), self._hash, self._fail,
                   lambda job: None, nice=self.options.worker_nice),
            Worker("autolog-lineage", lambda: self._take(self._lineage_queue, "lineage"), self._link, self._fail,
                   self._after_staging),
            # Finishes snapshots a save superseded (backlog_policy = coalesce): that save does not wait for it.
            Worker("autolog-coalescer", lambda: self._take(self._superseded_queue, "superseded"),
                   self._finish_skipped, self._skip_not_recorded, lambda job: None),
        ] + [
            Worker(f"autolog-uploader-{i}", self._take_upload, self._upload,
                   lambda job, exc: self._fail(job, exc, keep_pending=True), self._after_upload)
            for i in range(self.options.upload_workers)
        ]
        self._supervisor = Supervisor(workers, on_restart=self._heartbeat.beat)
        self._started = False
        self._stopping = False  # stop(): the workers end once no job is left
        track(self)

    def start_workers(self) -> None:
        """Start the worker threads ahead of the first job, from a background thread: each Thread.start
        waits until its thread runs, which on a busy machine costs the first save milliseconds per worker.
        Jobs queued meanwhile wait in their queue for the worker that takes them."""
        with self._cond:
            if self._started:
                return
            self._started = True
        try:
            self._supervisor.start_all()
        except BaseException:
            with self._cond:
                self._started = False  # the first job starts those not started
            raise

    def stop(self) -> None:
        """The task is closed: each worker's thread ends once no job is left (at once when none is;
        one that close() gave up on still finishes first). A later job starts them again."""
        with self._cond:
            self._stopping = True
            self._wake(*self._wakeup)

    # -- training thread ------------------------------------------------------------------
    def fence(self, fence_key: str) -> SetAside | None:
        """Before a save of this path: an earlier snapshot of it that is still unread is set aside (the
        caller settles it once the save is over), or waited for (it is about to be overwritten); so is
        any other unread snapshot holding a file the save may rewrite (see _overlapping)."""
        own = self._unstaged.get(fence_key)
        if own is not None:
            aside = self._fence_own(own, fence_key)
            if aside is not None:  # the old file was renamed away: every copy of it reads its own handle
                return aside
        for job in self._overlapping(fence_key, own):
            self._wait_read(job)
        return None

    def _fence_own(self, job: SnapshotJob | CallJob, fence_key: str) -> SetAside | None:
        if isinstance(job, SnapshotJob) and job.sources.single and job.stats:
            if job.staging:
                aside = set_aside(fence_key, job.stats[0], aside_path(job.staging), source_read=job.staged.is_set)
                if aside is not None:
                    job.set_aside = aside  # read before this line: settle removes the file (source_read)
                    return aside
            if not same_file_at(fence_key, job.stats[0]):
                return None  # its copy reads another file, through its own handle: this save cannot touch it
        self._wait_read(job)
        return None

    def _wait_read(self, job: SnapshotJob | CallJob) -> None:
        """Wait until job's files were read; if they cannot be (the pipeline stalled), the save about to
        overwrite them marks the job: its snapshot then says it was overwritten before it was read."""
        if not self.wait_for(job, "staged"):
            job.overwritten_unread = True

    def _overlapping(self, path: str, own: SnapshotJob | CallJob | None) -> list[SnapshotJob | CallJob]:
        """Unread snapshots (or loads) of another path that hold the file at path or files under it: a
        save into a folder still being copied (torch.save(x, "export/model.pt") right after the export
        folder was saved), a folder saved over a subfolder of one or over a file whose own snapshot is
        unread. Written in place, those files would be found changed and that snapshot stored nothing.
        Only the few unread jobs whose path is above or below this one by name are looked into, then,
        among the other unread jobs (none for a path's own back-to-back saves), those holding the same
        file by another name: a symlink or a hard link to it, or a symlink to a folder above it."""
        others = [(key, job) for key, job in list(self._unstaged.items()) if job is not own and job.opened is not None]
        if not others:
            return []
        found = [job for key, job in others if _holds(key, (src for src, _ in job.opened.sources.files), path)]
        rest = [(key, job) for key, job in others if job not in found]
        return found + _holding_by_another_name(path, rest) if rest else found

    def submit(
        self, model: ModelRecord | Callable[[], ModelRecord], sources: Sources, iteration: int | None,
        store: BlobStore | None, key_for: Callable[[ModelRecord, int], str], fence_key: str | None,
        on_stored: Callable[[SnapshotJob], None] | None = None,
    ) -> SnapshotJob:
        """Queue a snapshot of sources (opened now). model: its record, or a call that finds or creates
        it (run by the journal writer, so the first save of a path makes no database call here)."""
        self.took_saves = True
        opened = open_sources(sources)
        try:
            self._wait_for_room(opened.size, fence_key)
        except BaseException as exc:
            opened.close()
            if isinstance(exc, PipelineStalled):  # the database is fine: say why it was not queued
                with self._cond:
                    self._unqueued.append(source_path(sources))
            elif isinstance(exc, Exception):
                self.not_recorded(f"{source_path(sources)}: {type(exc).__name__}: {exc}")
            else:  # Ctrl-C, or SIGTERM's SystemExit
                self.not_recorded(f"{source_path(sources)}: {type(exc).__name__} while autolog queued it")
            raise
        known = model if isinstance(model, ModelRecord) else None
        job = SnapshotJob(new_time_ordered_id(), known, opened, store, fence_key, opened.size, iteration=iteration,
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
            unread = isinstance(job, SnapshotJob) and not job.staged.is_set()
            held = job.size if isinstance(job, SnapshotJob) and job.data is not None else 0
            wake = [w for w, q in (("recorder", self._journal_queue), ("stage", self._stage_queue),
                                   ("lineage", self._lineage_queue))
                    if any(q is queue for queue in queues) and not (w == "recorder" and self._gathering)]
            if not self._jobs:
                self._heartbeat.beat()  # the clock of a stall starts with the first job waiting
            # A Ctrl-C is raised where a call returns or a loop goes round: the job is queued, its workers
            # woken (and started) or nothing is (half done, it was never staged, or sat unseen, and the
            # next save of its path waited for it); no worker can take it before the lock is let go. It
            # is then counted with plain stores, which no interruption can split.
            try:
                self._jobs[job.order] = job
                for queue in queues:
                    queue.append(job)
                self._wake(*wake)
                if not self._started or self._stopping:  # not started ahead (start_workers), or ended by stop()
                    self._supervisor.start_all()  # again, if interrupted, by the next save
                    self._started, self._stopping = True, False
                else:  # a worker found dead is restarted by the next save, not only by the next wait (~2 us)
                    self._supervisor.check()
            except BaseException:
                self._jobs.pop(job.order, None)
                for queue in queues:
                    if job in queue:
                        queue.remove(job)
                raise
            if job.fence_key:
                self._unstaged[job.fence_key] = job
            self._unread += unread
            self._held += held
            self._cond.notify_all()

    def _wait_for_room(self, size: int, fence_key: str | None) -> None:
        with self._cond:
            if self._has_room(size):  # nearly every save: no watch, no wait set up
                return
        watch = self._watch()
        with self._cond, contextlib.ExitStack() as waiting:
            hurried = False
            while True:
                if self._has_room(size):
                    return
                unread = self._unread
                over = self._backlog > 0 and self._backlog + size > self.options.backlog_bytes
                if over and self.options.backlog_policy == "coalesce":
                    if self._coalesce_one(fence_key):
                        continue
                    if unread < self.options.max_unread:
                        # Only uploads in flight: admit this save; the next save of the model can
                        # supersede it. Staged copies stay bounded by the uploaders + one per model.
                        return
                self._on_wait()  # room is made by publishing, which needs the rows
                if not hurried:
                    waiting.enter_context(self._hurry.while_waiting())
                    hurried = True
                stalled = self._stall_reason(watch)
                if stalled is None:
                    self._cond.wait(timeout=watch.poll(0.25))
                else:
                    raise PipelineStalled(f"{stalled}; this save was not queued behind it. Snapshots already "
                                          "journaled are finished by `autolog sync` once storage and database "
                                          "work again.")

    def _has_room(self, size: int) -> bool:
        """Under self._cond: whether a save of size bytes may be queued now."""
        over = self._backlog > 0 and self._backlog + size > self.options.backlog_bytes
        return self._unread < self.options.max_unread and not over

    def _coalesce_one(self, fence_key: str | None) -> bool:
        """Drop the oldest staged, not-uploading snapshot of the path this save writes: it supersedes it."""
        if fence_key is None:
            return False
        for job in self._upload_queue:
            if job.state == "staged" and job.fence_key == fence_key:
                self._upload_queue.remove(job)
                job.state = "skipped"
                self._count_backlog(job, False)
                self._superseded_queue.append(job)
                self._wake("superseded")
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

    def _skip_not_recorded(self, job: SnapshotJob, exc: BaseException) -> None:
        """_finish_skipped completed the job whatever happened; only its status row may be missing."""
        logger.warning("autolog: %s was superseded (backlog_policy = coalesce) but that was not recorded: %s",
                       job.label, exc)

    # -- the steps ------------------------------------------------------------------------
    def _stage(self, job: SnapshotJob) -> None:
        if job.store is None:  # output_uri=None: path and hash only
            job.content = steps.content_in_place(self.ctx, job)
            return self._to_recorder(job)
        if job.size >= self.options.hash_behind_bytes:
            job.copy_progress = CopyProgress()
        with self._cond:
            self._copying = job
            if self._waiting:  # someone waits for it to be stored: hash it as it is copied
                self._hash_behind(job)
        try:
            steps.copy(job, on_copied=lambda: self._release_fence(job), beat=self._heartbeat.beat,
                       handoff=self._hurry)
        except BaseException:
            self._copy_ended(job, whole=False)  # before the staging folder goes: the hasher lets go
            attempt_all(steps.discard_staging(job))
            raise
        finally:
            with self._cond:
                self._copying = None
        self._to_hasher(job)
        self._copy_ended(job, whole=True)

    def _to_hasher(self, job: SnapshotJob) -> None:
        with self._cond:
            if job.hash_queued:  # already, to be hashed behind its copy
                return
            job.hash_queued = True
            self._hash_queue.append(job)
            self._wake("hash")

    def _hash_behind(self, job: SnapshotJob | None) -> None:
        """Called holding the lock when a wait for stored snapshots begins (or a copy starts during
        one): the snapshot being copied goes to the hasher now, to be hashed behind its copy. Not
        while the training thread saves: on a machine with few cores a hash beside the copy then
        takes CPU from the next save (1 GB back to back on 2 cores: later save calls 0.91x -> 0.99x
        plain, bench/results.md)."""
        if job is not None and job.copy_progress is not None:
            self._to_hasher(job)

    @staticmethod
    def _copy_ended(job: SnapshotJob, whole: bool) -> None:
        if job.copy_progress is not None:
            job.copy_progress.end(whole)

    def _hash(self, job: SnapshotJob) -> None:
        try:
            steps.hash_staged(job, beat=self._heartbeat.beat, handoff=self._hurry)
        except CopyAbandoned:
            return  # the copy failed: the stager settles the job
        except BaseException:
            if job.copy_progress is not None:
                try:
                    job.copy_progress.wait_whole()  # the stager is done with the job before it is settled here
                except CopyAbandoned:
                    return  # the copy failed as well (its staging folder went under the hash): the stager settles it
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
        if isinstance(job, SnapshotJob):  # however _stage ended, a hasher reading behind it stops waiting
            self._copy_ended(job, whole=False)

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

    def _to_recorder(self, job: SnapshotJob) -> None:
        with self._cond:
            self._record_queue.append(job)
            if not self._gathering:
                self._wake("recorder")

    def _link(self, job: CallJob) -> None:
        """A load: hash what was loaded (releasing its fence), then link it once earlier saves are recorded."""
        content = job.content_of(job.opened)
        self._after_staging(job)
        self.wait_until(lambda: not any(isinstance(j, SnapshotJob) and j.order < job.order for j in self._jobs.values()),
                        f"earlier saves before the lineage of {job.label}")
        job.link(content)
        self._complete(job)


def _holds(key: str, files: Iterable[str], path: str) -> bool:
    """Whether a job of key (a file or folder), reading files, holds the file at path or files under it
    (files are looked at only when key is above or below path)."""
    return (within(path, key) or within(key, path)) and any(within(src, path) for src in files)


def _holding_by_another_name(path: str, jobs: list[tuple[str, SnapshotJob | CallJob]]) -> list[SnapshotJob | CallJob]:
    """The jobs holding what a save of path rewrites, named otherwise. A file is known by its inode (one
    stat, whatever the names); a folder by its real path (rare, and large: resolving costs nothing then)."""
    if "://" in path:
        return []
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # nothing there yet: the save overwrites nothing (or fails by itself)
        return []
    if not stat.S_ISDIR(st.st_mode):
        file = (st.st_dev, st.st_ino)
        return [job for _, job in jobs if any((held.st_dev, held.st_ino) == file for _, held in job.opened.handles)]
    real = os.path.realpath(path)
    return [job for key, job in jobs if "://" not in key and _holds(
        os.path.realpath(key), (os.path.realpath(src) for src, _ in job.opened.sources.files), real)]
