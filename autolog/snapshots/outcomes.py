"""How a snapshot job ends: completed, or failed with the real cause (its row says why, its cleanup
effects are attempted one by one), and what close() is told about it.

`Outcomes` is mixed into SnapshotPipeline (pipeline.py) and works on its lock, queues and counters.
"""
from __future__ import annotations

import os
from typing import Iterable

from ..config import scrub
from ..safety import report_failure, strict
from ..storage.sources import SourceChangedError
from . import steps
from .database_guard import retry_while_unreachable
from .jobs import CallJob, SnapshotJob
from .worker import attempt, attempt_all


class Outcomes:
    """The settling half of SnapshotPipeline."""

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
        if isinstance(job, SnapshotJob) and job.set_aside is not None:  # after staged is set: see SetAside
            attempt(f"removing the file set aside for {job.label}", job.set_aside.copy_read)

    def _count_backlog(self, job: SnapshotJob, staged: bool) -> None:
        """Called holding the lock; each job counts once, from its staging to its publication."""
        if job.in_backlog != staged:
            job.in_backlog = staged
            self._backlog += job.size if staged else -job.size

    def _complete(self, job: SnapshotJob | CallJob) -> None:
        with self._cond:
            if job.state not in ("failed", "skipped"):
                job.state = "done"
            if self._jobs.pop(job.order, None) is not None and isinstance(job, SnapshotJob):
                self._count_backlog(job, False)
                if job.content is not None and self._uploading.get(job.content.digest) is job:
                    del self._uploading[job.content.digest]
                    self._wake("upload")
                if job.data is not None:
                    self._held -= job.size
                    job.data = None
            if self._stopping and not self._jobs:
                self._wake(*self._wakeup)  # the last job of a closed task: the idle workers end
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
                    content = {"digest": job.content.digest, "size": job.content.size,
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
        """Record a snapshot's failure (or the reason it stays pending, kept for sync) on its pending row.
        False when the row is not written: the database cannot take it (the row stays pending for
        sync), or it is no longer pending (sync stored it meanwhile, and its object is sync's)."""
        try:
            def write() -> bool:
                return self.ctx.store.update_pending_snapshot(job.snapshot_id, **values)
            return retry_while_unreachable(write, self.options.db_retry_seconds) if patient else write()
        except Exception as exc:  # noqa: BLE001
            report_failure(f"model snapshot {job.label} status", exc, kind="model snapshot status")
            return False

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
