"""The recorder's round: the rows of new saves (the journal `autolog sync` finishes after a crash) and
the outcomes of finished ones, written by one thread, one transaction per round.

`Recording` is mixed into SnapshotPipeline (pipeline.py) and works on its lock, queues and counters.
"""
from __future__ import annotations

from . import steps
from .database_guard import retry_while_unreachable
from .jobs import BATCH, SnapshotJob
from .worker import attempt


class Recording:
    """The database half of SnapshotPipeline."""

    def _write_rows(self, batch: list[SnapshotJob]) -> None:
        """The recorder's round: the outcomes of saves journaled in earlier rounds, and pending rows for
        the saves taken now, in one transaction (a transaction costs far more than a row, and a round
        per journal_window is the recorder's whole load). Should that transaction fail, each half is
        written again on its own, so a fault in one never costs the other."""
        ready = self._settled(self._record_queue, BATCH)
        published: list[SnapshotJob] = []
        if ready:
            try:
                published = self._publish(ready)
            except BaseException as exc:  # noqa: BLE001
                self._fail_all(ready, exc, keep_pending=True)
        try:
            rows = self._pending_rows(batch) if batch else []
            seqs = None
            if rows and published:
                try:
                    with self.ctx.store.transaction():
                        seqs = self.ctx.store.add_snapshots(rows)
                        steps.record_outcomes(self.ctx, published)
                except BaseException:  # noqa: BLE001 - written again below, one half at a time
                    seqs = None
                else:
                    self._journaled(batch, seqs)
                    self._recorded(published)
                    return
            if rows:
                try:
                    self._journaled(batch, retry_while_unreachable(lambda: self.ctx.store.add_snapshots(rows),
                                                                   self.options.db_retry_seconds))
                except BaseException as exc:  # noqa: BLE001 - those saves get no row; recording goes on
                    self._journal_failed(batch, exc)
            if published:
                try:
                    retry_while_unreachable(lambda: steps.record_outcomes(self.ctx, published),
                                            self.options.db_retry_seconds)
                    self._recorded(published)
                except BaseException as exc:  # noqa: BLE001
                    self._fail_all(published, exc, keep_pending=True)
        finally:
            if batch:
                self._after_journal(batch)

    def _pending_rows(self, batch: list[SnapshotJob]) -> list[dict]:
        """The journal rows of a batch of saves (finding or creating a path's model on its first save).
        Written beside the stager: a job may be copied before, while or after its row is written."""
        for job in batch:
            if job.model is None:
                try:
                    job.model = job.model_request()
                except BaseException as exc:  # noqa: BLE001 - this save only
                    self._journal_failed([job], exc)
        try:
            return [steps.pending_row(j) for j in batch if j.journal_error is None]
        except BaseException as exc:  # noqa: BLE001
            self._journal_failed(batch, exc)
            return []

    def _journaled(self, batch: list[SnapshotJob], seqs: dict[str, int]) -> None:
        with self._cond:
            for job in batch:
                if job.journal_error is None:
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
            self._journaling -= len(batch)
            self._cond.notify_all()

    def _publish(self, batch: list[SnapshotJob]) -> list[SnapshotJob]:
        """Local snapshots into place (or found stored already); the jobs whose outcome can be recorded."""
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
        return ready

    def _recorded(self, ready: list[SnapshotJob]) -> None:
        self._heartbeat.beat()
        for job in ready:
            if job.on_stored is not None and job.store is not None:
                attempt(f"after storing {job.label}", lambda job=job: self._after_stored(job))
            self._complete(job)
