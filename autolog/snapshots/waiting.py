"""Waiting on the snapshot pipeline, both ways: workers waiting for work to take (each kind on a
condition of its own, so an event wakes the thread it concerns), and callers waiting for work to
finish (the fence, room in the backlog, a save stored before it returns, flush), each bounded by the
heartbeat: a wait ends once the work made no progress for stall_timeout or a worker is broken.

`Waits` is mixed into SnapshotPipeline (pipeline.py) and works on its lock, queues and counters.
"""
from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING, Callable, Iterator

from ..forking import on_fork
from .jobs import BATCH, CallJob, FlushOutcome, SnapshotJob
from .worker import StopWorker, Watch

if TYPE_CHECKING:
    from .pipeline import SnapshotPipeline

logger = logging.getLogger("autolog")


class PipelineStalled(RuntimeError):
    """Background work made no progress: a save is not queued behind it."""


_pipelines: "weakref.WeakSet[SnapshotPipeline]" = weakref.WeakSet()
# A forked child's copies of the parent's pipelines have no threads: never wait on them.
on_fork("snapshots.pipelines", after_in_child=lambda: _pipelines.clear())


def track(pipeline: "SnapshotPipeline") -> None:
    """The module-level waits below look at every pipeline of this process."""
    _pipelines.add(pipeline)


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


class Waits:
    """The waiting half of SnapshotPipeline."""

    # -- workers taking work ---------------------------------------------------------------
    def _wake(self, *workers: str) -> None:
        """Wake the workers named (and whoever waits for a state change). Called holding the lock."""
        for name in workers:
            self._wakeup[name].notify_all()
        self._cond.notify_all()

    def _take(self, queue: collections.deque, worker: str) -> SnapshotJob | CallJob:
        with self._cond:
            while not queue:
                self._end_if_stopped()
                self._wakeup[worker].wait()
            return queue.popleft()

    def _end_if_stopped(self) -> None:
        """Called holding the lock by a worker with nothing to take. Once the task is closed (stop())
        and no job is left anywhere, none can reach its queue: its thread ends, so that a process
        running task after task (a Pool worker) does not keep every closed task's threads. A job
        submitted after that starts them again (_enqueue)."""
        if self._stopping and not self._jobs:
            self._supervisor.stopping(threading.current_thread())
            raise StopWorker

    def _take_database_work(self) -> list[SnapshotJob]:
        """Saves to journal (perhaps none), once there are rows to write or outcomes to record.

        Work that arrives while nobody waits for it is gathered a while: one transaction for many
        saves costs the training thread far less than one each. Rows of new saves (the journal that
        `autolog sync` finishes after a crash) wait at most journal_window seconds, outcomes batch_window.
        """
        with self._cond:
            while not self._journal_queue and not self._settled(self._record_queue, 1, remove=False):
                self._end_if_stopped()
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
                self._end_if_stopped()
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
                while job.content.digest in self._uploading:
                    self._wakeup["upload"].wait()
                self._uploading[job.content.digest] = job
                return job

    # -- callers waiting for work to finish ------------------------------------------------
    def pending(self) -> list[SnapshotJob | CallJob]:
        with self._cond:
            return list(self._jobs.values())

    def wait_for(self, job: SnapshotJob | CallJob, what: str) -> bool:
        """Wait until the job is staged or done; False when the work stalled first (nothing is left
        waiting on a stuck worker)."""
        event = job.staged if what == "staged" else job.done
        if event.is_set():
            return True
        self._on_wait()  # even a copy may wait for its row: one that failed writes why in it
        # Waiting for a copy (the fence) needs nothing of the recorder: let it go on gathering.
        watch = self._watch()
        with self._someone_waits() if what == "done" else self._hurry.while_waiting():
            # The stall is looked at before the first sleep: once a wait confirmed it, the next give up at once.
            while self._stall_reason(watch) is None:
                if event.wait(watch.poll(0.25)):
                    return True
        return event.is_set()

    @contextlib.contextmanager
    def _someone_waits(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            self._wake("recorder")
            self._hash_behind(self._copying)
        try:
            with self._hurry.while_waiting():
                yield
        finally:
            with self._cond:
                self._waiting -= 1

    def wait_until(self, ready: Callable[[], bool], what: str) -> bool:
        """Wait until ready() holds, while the work progresses; False when it stalled first."""
        self._on_wait()
        watch = self._watch()
        with self._cond:
            if ready():  # the common case (rows journaled already): no hurry threads to start
                return True
        with self._cond, self._someone_waits():
            while not ready():
                if self._stall_reason(watch) is not None:
                    logger.debug("autolog: stopped waiting for %s: the work stalled", what)
                    return False
                self._cond.wait(timeout=watch.poll(0.25))
        return True

    def _watch(self) -> Watch:
        """A wait's look at the work's progress (worker.Watch: a pause of the whole process is not a stall)."""
        return self._heartbeat.watch(self.options.stall_timeout)

    def _stall_reason(self, watch: Watch) -> str | None:
        """Why waiting for the background work is pointless now; None while it moves."""
        broken = self._supervisor.check()
        if broken is not None:
            return broken
        with self._cond:
            if not self._jobs:
                return None
        quiet = watch.stalled()
        if quiet is not None:
            busy = [f"{w.name}: {w.current}" for w in self._supervisor.workers if w.current]
            at = f" (busy with {'; '.join(busy)})" if busy else ""
            return f"autolog's background work made no progress for {quiet:.0f} s{at}"
        return None

    def flush(self, timeout: float, progress: bool = True) -> FlushOutcome:
        """Wait for every snapshot to be stored, at most timeout seconds and only while work progresses."""
        from .progress import FlushProgress

        deadline = time.monotonic() + timeout
        stalled = None
        self._on_wait()
        watch = self._watch()
        with self._someone_waits(), FlushProgress(self.pending(), enabled=progress) as bar:
            while True:
                remaining = self.pending()
                bar.update(remaining)
                left = deadline - time.monotonic()
                if not remaining or left <= 0:
                    break
                stalled = self._stall_reason(watch)
                if stalled is not None:
                    self._let_the_journal_finish(deadline)
                    break
                with self._cond:
                    self._cond.wait(timeout=watch.poll(min(0.2, left)))
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

    def _let_the_journal_finish(self, deadline: float) -> None:
        """A stall elsewhere (a stager that keeps dying, a stuck upload) need not cost the saves their rows:
        while the recorder lives, wait (within the flush's time, and at most stall_timeout) until every
        pending save is journaled, so that `autolog sync` can finish them."""
        recorder = next((w for w in self._supervisor.workers if w.name == "autolog-recorder"), None)
        limit = min(deadline, time.monotonic() + self.options.stall_timeout)
        with self._cond:
            while recorder is not None and recorder.alive() and time.monotonic() < limit:
                if all(j.journal_settled for j in self.pending() if isinstance(j, SnapshotJob)):
                    return
                self._cond.wait(timeout=min(0.2, max(0.0, limit - time.monotonic())))

    def pending_summary(self) -> str:
        jobs = [j for j in self.pending() if isinstance(j, SnapshotJob)]
        shown = ", ".join(j.label for j in jobs[:10]) + (" ..." if len(jobs) > 10 else "")
        return f"{len(jobs)} snapshot(s): {shown}" if jobs else ""
