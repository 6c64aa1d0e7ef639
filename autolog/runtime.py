"""TaskRuntime: the live run of this process, and the one owner of everything a run writes with.

`Task.init()` makes one; capture, models, artifacts and the process hooks receive it. It holds the
context, the task's row (created in a background thread so that `Task.init()` returns at once), the
blob stores, the snapshot pipeline and the run's outcome. A `Task` fetched with `Task.get_task()` has
no runtime: it reads, and its writes raise `TaskNotRunningError` saying how to proceed.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Callable

from . import binding
from .capture import CaptureRecorder
from .config import redact_url
from .context import Context, row_being_created
from .db import TaskRecord
from .errors import AutologError
from .quiet_start import wait_for_quiet_script
from .safety import shielded
from .snapshots import retention
from .snapshots.database_guard import retry_while_unreachable
from .snapshots import sync as snapshot_sync
from .snapshots.jobs import PipelineOptions, SnapshotJob
from .snapshots.pipeline import SnapshotPipeline
from .snapshots.rehearsal import rehearse_rounds
from .storage import BlobStore, Sources
from .storage.layout import snapshot_key, task_prefix
from .storage.set_aside import settle_left_over

if TYPE_CHECKING:
    from .db import ModelRecord, SnapshotRecord

logger = logging.getLogger("autolog")

# The environment that lets a child process (multiprocessing, torchrun worker) attach to this run.
TASK_ENV = "AUTOLOG_TASK_ID"
ROW_WAIT_MARGIN_SECONDS = 60.0  # how long anything waits for the task's row beyond the retries of its thread
PID_ENV = "AUTOLOG_TASK_PID"


class TaskRuntime:
    """Everything a running task writes with. One per process is live (`live()`)."""

    def __init__(self, context: Context, record: TaskRecord, output_uri: str | None,
                 blobstore: BlobStore | None = None, keep_last: int | None = None, attached: bool = False,
                 auto_connect: bool | dict = True, store_before_return: bool = False):
        self.context = context
        self.record = record
        self.output_uri = output_uri
        self.keep_last = keep_last if keep_last is not None else context.settings.keep_last
        # attached: a child process logging into its parent's task; the parent owns the task's status.
        self.attached = attached
        # A process that may end with os._exit (multiprocessing children): each save is stored
        # before it returns, since no exit flush would run.
        self.store_before_return = store_before_return or attached
        self.auto_connect = auto_connect
        self.recorder: CaptureRecorder | None = None
        self.handle: object = None  # the Task facade that owns this runtime
        self.failure: str | None = None
        self.closed = False
        self._blobstore = blobstore
        self._artifact_store: BlobStore | None = None
        self._pipeline: SnapshotPipeline | None = None
        self._pipeline_lock = threading.Lock()
        self._ready = threading.Event()
        self._ready.set()
        self._wanted = threading.Event()  # something waits for the row: the background start goes ahead now
        self._between_tries = threading.Event()  # set while the start waits for a database that is down
        self._init_error: BaseException | None = None
        self._init_thread: threading.Thread | None = None
        self._flushers: list[tuple[str, Callable[[bool], None]]] = []
        self.reporter: object = None  # Logger's ReportWriter (report_writer.py), made on the first report

    # -- the task's row ------------------------------------------------------------------
    def create_record_in_background(self) -> None:
        """Opening the database (and importing SQLAlchemy) takes ~0.2 s: the training script goes on
        meanwhile, and whatever needs the task's row waits for it (`ctx`). The thread first lets the
        script's imports and its saves in progress end (quiet_start.py)."""
        self._ready.clear()
        self._init_thread = threading.Thread(target=self._create_record, args=(threading.get_ident(),),
                                             name="autolog-init", daemon=True)
        row_being_created(self._ready, self._wanted, self._init_thread, self._between_tries)
        self._init_thread.start()

    def _create_record(self, script_thread: int) -> None:
        ctx, record = self.context, self.record
        if self.auto_connect is not False:  # saves will come: their workers are started here, not by the first
            _head_start("starting the snapshot workers", lambda: self.pipeline.start_workers())
        # The workers only wait for work; this imports. WRAPPER_CODES is filled as the patches are made.
        wait_for_quiet_script(self._wanted, script_thread, binding.core.WRAPPER_CODES)
        try:
            # Patient, like the snapshot workers: a database that is down right after Task.init (a
            # restart, a failover) must not leave the whole run unrecorded.
            retry_while_unreachable(lambda: ctx.store.create_task(
                **{f.name: getattr(record, f.name) for f in dataclasses.fields(record)}),
                ctx.settings.db_retry_seconds, between_tries=self._between_tries)
        except BaseException as exc:  # noqa: BLE001 - surfaced by every later use of the task
            self._init_error = exc
            logger.error("autolog: this run is not being recorded: %s", exc)
            return
        finally:
            self._ready.set()
        from .run_info import installed_packages

        with shielded("the list of installed packages"):
            info = dict(record.run_info, packages=installed_packages())
            ctx.store.update_task(record.id, run_info=info)
        _warn_about_unfinished(ctx, record.id)
        if self.closed:  # close() waits for this thread: no save will come, and it checkpoints itself
            return
        _head_start("rehearsing a first save's rows", lambda: self._rehearse_first_save(ctx))
        # The start wrote most of what a run's log holds (the schema, the task's row, the package list:
        # ~200 KB, 15-20 ms to checkpoint here): into the database file now, so that close()'s
        # checkpoint has only the run's own rows left to copy.
        _head_start("checkpointing the start's writes", lambda: ctx.store.checkpoint(passive=True))

    def _rehearse_first_save(self, ctx: Context) -> None:
        """Run the statements of a first save and of the task's end once, rolled back (rehearsal.py), so a
        run that builds its model before it saves finds them compiled. Not once a save came: the recorder
        is compiling them then, and this would only hold the database's write lock beside it."""
        recorder, pipeline = self.recorder, self._pipeline
        if recorder is None or pipeline is None or pipeline.took_saves:
            return
        with ctx.store.rehearsal():
            rehearse_rounds(ctx, recorder.rehearse_first_save(ctx), self.blobstore)
            ctx.store.update_task(self.task_id, **self._end_values())

    @property
    def ctx(self) -> Context:
        """The context, once the task's row exists: a caller waits for it, so the row is written now."""
        self._wanted.set()
        return self.ctx_for_worker

    @property
    def ctx_for_worker(self) -> Context:
        """The context, once the task's row exists, for background work: it waits without hurrying the
        start, which yields to the script's imports and saves for at most quiet_start's 5 s. (The
        row's thread gives up on the database after [db] retry_seconds; this wait is bounded beyond
        that in case the thread itself hangs.)"""
        row_wait = self.context.settings.db_retry_seconds + ROW_WAIT_MARGIN_SECONDS
        if not self._ready.wait(row_wait):
            raise AutologError(
                f"The row of task {self.task_id[:8]} was not written within {row_wait:.0f} s: the metadata "
                "database does not answer. Check it; snapshots saved meanwhile are reported at close.")
        if self._init_error is not None:
            raise self._init_error
        return self.context

    # -- where things go -----------------------------------------------------------------
    @property
    def task_id(self) -> str:
        return self.record.id

    @property
    def task_key(self) -> str:
        return task_prefix(self.record.project, self.record.name, self.record.id)

    @property
    def blobstore(self) -> BlobStore | None:
        """The output_uri's store (None: snapshots are recorded by path and hash only)."""
        if self._blobstore is None and self.output_uri:
            self._blobstore = BlobStore(self.output_uri)
        return self._blobstore

    @property
    def artifact_store(self) -> BlobStore:
        """Artifacts are always uploaded: to output_uri, else to the configured default location."""
        if self._artifact_store is None:
            self._artifact_store = self.blobstore or BlobStore(self.context.settings.default_output_uri)
        return self._artifact_store

    @property
    def pipeline(self) -> SnapshotPipeline:
        with self._pipeline_lock:  # made once, by the init thread (start_workers) or by the first save
            if self._pipeline is None:
                # The context without waiting for the task's row: workers wait for the database, not callers.
                settings = self.context.settings
                self._pipeline = SnapshotPipeline(self.context, PipelineOptions(
                    backlog_bytes=settings.backlog_bytes, backlog_policy=settings.backlog_policy,
                    upload_retries=settings.upload_retries, stall_timeout=settings.stall_timeout,
                    db_retry_seconds=settings.db_retry_seconds, worker_nice=settings.worker_nice,
                ), on_wait=self._wanted.set)
            return self._pipeline

    def snapshot_key(self, model: "ModelRecord", seq: int) -> str:
        return snapshot_key(self.task_key, model.name, model.id, seq)

    def on_snapshot_stored(self, job: SnapshotJob) -> None:
        if self.keep_last:
            # The new snapshot is stored whatever happens to older ones: a failed deletion is a warning,
            # never a reason to record this snapshot as failed.
            with shielded(f"retention of model {job.model.name!r}"):
                retention.prune(self.ctx_for_worker, job.model.id, self.keep_last)

    # -- snapshots -----------------------------------------------------------------------
    def store_snapshot(self, model: "ModelRecord", sources: Sources, iteration: int | None,
                       upload_uri: str | None = None) -> "tuple[SnapshotRecord, str]":
        """Store a snapshot now (the explicit API uploads before returning, as ClearML does by default).

        It goes through the pipeline like a captured save, so it is journaled and deduplicated the
        same way. Returns (record, URI); raises what made storing fail.
        """
        store = BlobStore(upload_uri) if upload_uri else self.blobstore
        job = self.pipeline.submit(model, sources, iteration, store, key_for=self.snapshot_key, fence_key=None,
                                   on_stored=self.on_snapshot_stored)
        self.pipeline.wait_for(job, "done")
        if job.error is not None:
            raise job.error
        record = self.ctx.store.get_snapshot(job.snapshot_id)
        return record, job.uri or record.uri

    # -- capture -------------------------------------------------------------------------
    def start_capture(self) -> None:
        """Route framework saves and loads to this run (the patches are installed once per process)."""
        if self.auto_connect is False:
            return
        binding.install()
        self.recorder = CaptureRecorder(self, self.auto_connect, self.context.settings.capture_ignore)
        binding.activate(self.recorder)

    # -- ending --------------------------------------------------------------------------
    def add_flusher(self, what: str, flush: Callable[[bool], None]) -> None:
        """Have flush() and close() also write out what a part of the run buffers (reported scalars,
        registered artifacts). flush(final) is called with final=True once, at close, before the task's
        end is recorded; a flusher that raises is reported as the failure of `what`, never passed on."""
        self._flushers.append((what, flush))

    def _run_flushers(self, final: bool) -> None:
        for what, flush in list(self._flushers):
            with shielded(what):
                flush(final)

    def close(self) -> None:
        """Store what is pending, then record the end. Ctrl-C or SIGTERM while waiting ends the run as
        failed, naming what was not stored, and goes on as the interruption it is."""
        if self.closed:
            return
        self.closed = True
        if live() is self:
            binding.activate(None)
            set_live(None)
        with shielded("putting back checkpoints of interrupted saves"):
            settle_left_over()
        try:
            self.flush()
        except BaseException as exc:
            if not isinstance(exc, Exception):
                left = self.unfinished_summary() or "nothing"
                self.mark_failed(f"{interruption_name(exc)} while close() was storing snapshots; not stored: "
                                 f"{left}. Run `autolog sync` to finish them.")
            raise
        finally:
            if self.recorder is not None:
                self.recorder.settling.stop()
            if self._pipeline is not None:
                self._pipeline.stop()
            self._run_flushers(final=True)
            if not self.attached:  # the parent process owns the task's status
                with shielded(f"the end of task {self.task_id[:8]}"):
                    self.finish()

    def mark_failed(self, message: str) -> None:
        self.failure = message or "marked failed"

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every snapshot is stored, while work progresses; False (and one warning naming what
        is left) when some are still pending after timeout seconds or once the work stalled."""
        if self.recorder is not None:
            self.recorder.settling.take_all()
        self._run_flushers(final=False)
        if self._pipeline is None:
            return True
        timeout = self.context.settings.flush_timeout if timeout is None else timeout
        outcome = self._pipeline.flush(timeout)
        message = outcome.describe(self.task_id[:8])
        if message:
            logger.warning("autolog: %s", message)
        return not outcome.left

    def unfinished_summary(self) -> str:
        """What is still pending, for a status message: empty when nothing is."""
        if self._pipeline is None:
            return ""
        return self._pipeline.pending_summary()

    def finish(self) -> None:
        """Record the task's end: failed (with the reason) or completed."""
        if os.environ.get(TASK_ENV) == self.task_id:
            os.environ.pop(TASK_ENV, None)
            os.environ.pop(PID_ENV, None)
        if self._init_thread is not None:
            self._wanted.set()
            self._init_thread.join(timeout=10)
        values = self._end_values()
        store = self.ctx.store
        store.update_task(self.task_id, **values)
        with shielded("the database checkpoint at close"):
            store.checkpoint()
        logger.info("autolog: task %s/%s %s", self.record.project, self.record.name, values["status"])

    def _end_values(self) -> dict:
        return {"status": "failed" if self.failure else "completed", "status_message": self.failure,
                "ended": time.time()}

    def child_copy(self) -> "TaskRuntime":
        """This run as seen from a forked child: the parent's threads, locks and pending work did not
        come along, and the child logs into the parent's task."""
        return TaskRuntime(self.context, self.record, self.output_uri, keep_last=self.keep_last, attached=True,
                           auto_connect=self.auto_connect)

    def describe(self) -> str:
        return f"{self.record.project}/{self.record.name} id={self.task_id} output_uri=" + (
            redact_url(self.output_uri) if self.output_uri else "None")


# -- the live run of this process --------------------------------------------------------------
_live: TaskRuntime | None = None


def _head_start(what: str, step: Callable[[], object]) -> None:
    """A step that only saves later work time (the saves and close() do without it): a failure is a
    debug line. Not raised under AUTOLOG_STRICT either: a database fault here is no bug, the saves meet
    it and report it (tests/pipeline/test_rehearsal.py fails if the rehearsal itself breaks)."""
    try:
        step()
    except Exception as exc:  # noqa: BLE001
        logger.debug("autolog: head start not taken (%s): %s", what, exc, exc_info=True)


def live() -> TaskRuntime | None:
    """The runtime of the task this process is running, if any."""
    return _live


def set_live(runtime: TaskRuntime | None) -> None:
    global _live
    _live = runtime


def interruption_name(exc: BaseException) -> str:
    """How a BaseException that is not an error reads in a status message."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(exc, SystemExit):
        return f"exit({exc.code!r})" if exc.code not in (143, 128 + 15) else "terminated by SIGTERM"
    return type(exc).__name__


def _warn_about_unfinished(ctx: Context, current_task: str) -> None:
    with shielded("checking for unfinished snapshots of earlier runs"):
        left = snapshot_sync.unfinished(ctx, exclude_task=current_task)
        if left:
            tasks = sorted({t.id[:8] for _, t in left})
            logger.warning(
                "autolog: %d snapshot(s) of earlier run(s) %s were not finished (the process ended first). "
                "Run `autolog sync` to store them or mark them failed.", len(left), ", ".join(tasks),
            )
