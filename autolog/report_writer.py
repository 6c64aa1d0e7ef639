"""ReportWriter: between Logger's calls and the database, so that reporting costs the caller ~1 µs.

The caller's thread only appends to a deque (append and popleft are atomic: the caller and the
writer never lose an item between them, and no list is ever swapped). One daemon thread per run,
`autolog-scalars`, started on the first report, wakes every PERIOD seconds (or sooner when WAKE_AT
scalars wait) and writes what is buffered: scalars with one executemany INSERT per BATCH rows, single
values as upserts, text/table/plot reports as inserts, and images and media (uploaded first, then
recorded). A model's reports (Model.report_scalar & co.) come through the work queue with their
model_id: they are few, and the task's scalars keep their fast path.

Nothing is lost at the end: the run's flusher (TaskRuntime.add_flusher) drains everything at flush()
and at close, which runs at normal exit, after an unhandled exception and on SIGTERM. A batch whose
write fails is kept and written first next time; a database that is unreachable is retried for
[db] retry_seconds (as the snapshot workers do); a batch that fails MAX_ATTEMPTS times for any other
reason is given up with an error naming how many rows it held, so one bad row cannot stop the rest.
The loop itself cannot die: whatever a round raises is reported and the next round runs.

After a fork the child's copy of a writer is closed and emptied (the parent writes what it holds);
the child's Logger then writes through a writer of the child's own run. A multiprocessing child ends
with os._exit: its writer is drained by multiprocessing's own exit hook.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .config import redact_url, scrub
from .forking import on_fork
from .safety import report_failure, shielded
from .snapshots.database_guard import database_unreachable, retry_while_unreachable
from .storage.layout import report_key

if TYPE_CHECKING:
    from .runtime import TaskRuntime
    from .storage import BlobStore

logger = logging.getLogger("autolog")

PERIOD = 1.0  # seconds between the writer's rounds
POLL = 0.1  # seconds between looks at the buffer's size (the caller never checks it: that costs it time)
BATCH = 5_000  # rows per INSERT
WAKE_AT = 100_000  # buffered scalars (~15 MB) that start a round before its period is up
MAX_ATTEMPTS = 3  # failed writes of one batch (other than an unreachable database) before it is given up


@dataclass
class ImageJob:
    """An image (or, kind "media", any debug sample file) to upload and record. data is None for a url=
    reference (recorded, not uploaded)."""
    title: str
    series: str
    iteration: int
    data: bytes | None
    extension: str
    body: dict
    keep: int  # newest images kept per title/series; 0 or less: all
    store: "BlobStore | None"
    time: float
    url: str | None = None
    delete_after: tuple[str, tuple] | None = None  # (path, identity): delete_after_upload
    row: dict | None = field(default=None, repr=False)  # the report row, once uploaded
    kind: str = "image"  # or "media" (report_media)


class ReportWriter:
    """The buffers of one run's reports and the thread that writes them."""

    def __init__(self, run: "TaskRuntime"):
        self.run = run
        self.task_id = run.task_id
        self.scalars: deque = deque()  # (title, series, iteration, value, time)
        # ("single", row) | ("report", row) | ("image", ImageJob) | ("scalar", row): a model's scalar
        self.work: deque = deque()
        self.closed = False
        self._wake = threading.Event()
        self._drain_lock = threading.Lock()
        self._stopped = False
        self._retry: dict[str, list] = {"scalars": [], "work": []}  # a batch whose write failed
        self._attempts = 0
        self.thread: threading.Thread | None = None
        _writers.add(self)

    # -- the writer thread ------------------------------------------------------------------
    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="autolog-scalars", daemon=True)
        self.thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopped:
            try:
                self._wait_for_round()
                if not self._stopped:
                    self.drain()
            except BaseException as exc:  # noqa: BLE001 - the loop survives any round; its rows are kept
                try:
                    report_failure("reported scalars and reports", exc)
                    time.sleep(PERIOD)
                except BaseException:  # noqa: BLE001 - not even logging may end the loop
                    pass

    def _wait_for_round(self) -> None:
        """Until PERIOD has passed, WAKE_AT scalars wait, or wake() was called (flush, close)."""
        deadline = time.monotonic() + PERIOD
        while not self._wake.wait(POLL):
            if len(self.scalars) >= WAKE_AT or time.monotonic() >= deadline:
                return
        self._wake.clear()

    def ensure_running(self) -> None:
        """Restart the thread if it is gone (it cannot end by itself; this is the supervisor's check)."""
        if not self.closed and (self.thread is None or not self.thread.is_alive()):
            self.start()

    # -- writing ---------------------------------------------------------------------------
    def drain(self) -> None:
        """Write everything buffered so far: the writer's round, flush() and close() all come here."""
        with self._drain_lock:  # one drain at a time: flush() returns only once the thread's batch is in too
            store = self.run.ctx.store  # waits for the task's row (written by Task.init's thread)
            seconds = self.run.context.settings.db_retry_seconds
            failure: Exception | None = None
            try:
                self._drain_queue("scalars", self.scalars, lambda batch: self._write_scalars(store, batch), seconds)
            except Exception as exc:  # the reports are written all the same; then this is raised
                failure = exc
            self._drain_queue("work", self.work, lambda batch: self._write_work(store, batch), seconds,
                              after=lambda batch: self._after_recorded(store, batch))
            if failure is not None:
                raise failure

    def _drain_queue(self, name: str, queue: deque, write: Callable[[list], Callable[[], None]],
                     seconds: float, after: Callable[[list], None] | None = None) -> None:
        while True:
            batch = self._retry[name] or _take(queue, BATCH)
            if not batch:
                return
            self._retry[name] = batch  # kept until it is written: a failure (or SIGTERM) retries it
            try:
                retry_while_unreachable(write(batch), seconds)
            except Exception as exc:
                self._attempts += 1
                if database_unreachable(exc) or self._attempts < MAX_ATTEMPTS:
                    raise
                self._attempts = 0
                self._retry[name] = []
                logger.error("autolog: %d %s of task %s were not recorded (writing them failed %d times): %s: %s",
                             len(batch), "scalars" if name == "scalars" else "reports", self.task_id[:8],
                             MAX_ATTEMPTS, type(exc).__name__, exc)
                continue
            self._attempts = 0
            self._retry[name] = []
            if after is not None:  # never retried: the batch is recorded, whatever this does
                after(batch)

    def _write_scalars(self, store: Any, batch: list) -> Callable[[], None]:
        from .db import reporting

        task_id = self.task_id
        rows = [{"task_id": task_id, "title": t, "series": s, "iteration": i, "value": None if v != v else v,
                 "time": tm} for t, s, i, v, tm in batch]
        return lambda: reporting.insert_scalars(store, rows)

    def _write_work(self, store: Any, batch: list) -> Callable[[], None]:
        from .db import reporting

        singles: dict[tuple, dict] = {}
        reports: list[dict] = []
        scalars: list[dict] = []
        for kind, item in batch:
            if kind == "single":
                key = (item.get("model_id"), item["name"])
                singles.pop(key, None)
                singles[key] = dict(item, task_id=self.task_id)  # reported twice in a batch: the last
            elif kind == "scalar":
                scalars.append(dict(item, task_id=self.task_id))
            else:  # every row with the same keys: they are written with one executemany
                row = self._upload(item) if kind == "image" else item
                reports.append(dict(row, task_id=self.task_id, model_id=row.get("model_id")))

        def write() -> None:
            with store.transaction():
                reporting.put_single_values(store, list(singles.values()))
                reporting.insert_reports(store, reports)
                if scalars:  # a model's scalars (the task's own go through _write_scalars)
                    reporting.insert_scalars(store, scalars)

        return write

    # -- images ------------------------------------------------------------------------------
    def _upload(self, job: ImageJob) -> dict:
        """The image's report row, uploading its bytes first (once: a retried batch reuses the row)."""
        if job.row is not None:
            return job.row
        row = {"kind": job.kind, "title": job.title, "series": job.series, "iteration": job.iteration,
               "body": dict(job.body), "uri": None, "sha256": None, "time": job.time}
        if job.data is None:
            row["uri"] = redact_url(job.url or "")
        else:
            key = report_key(self.run.task_key, job.title, job.series, job.iteration, uuid.uuid4().hex, job.extension)
            try:
                row["uri"] = redact_url(job.store.put_bytes(job.data, key))  # type: ignore[union-attr]
                row["sha256"] = hashlib.sha256(job.data).hexdigest()
                row["body"].update(uploaded=True, size=len(job.data))
            except Exception as exc:  # noqa: BLE001 - recorded with the reason, as a failed snapshot is
                report_failure(f"{job.kind} {job.title!r}/{job.series!r}", exc, kind=f"report_{job.kind} upload")
                row["body"]["error"] = f"{type(exc).__name__}: {scrub(str(exc))}"
            job.data = None
        job.row = row
        return row

    def _after_recorded(self, store: Any, batch: list) -> None:
        for kind, item in batch:
            if kind == "image":
                self._after_image(store, item)

    def _after_image(self, store: Any, job: ImageJob) -> None:
        """Once the row is written: delete the caller's file (delete_after_upload) and the images past
        max_image_history."""
        if job.delete_after is not None and job.row and job.row["body"].get("uploaded"):
            path, identity = job.delete_after
            with shielded(f"delete_after_upload of {path}"):
                if file_identity(path) == identity:  # not a newer image written to the same path since
                    os.remove(path)
        if job.keep > 0 and job.store is not None:
            from .db import reporting

            with shielded(f"max_image_history of {job.title!r}/{job.series!r}"):
                for uri in reporting.drop_old_images(store, self.task_id, job.title, job.series, job.keep):
                    job.store.delete(uri)

    # -- ending ----------------------------------------------------------------------------
    def flush(self, final: bool) -> None:
        """The run's flusher: everything reported so far is written; at close the thread stops."""
        if final:
            self.closed = True
        else:
            self.ensure_running()
        try:
            self.drain()
        except BaseException:
            if final:  # the process is ending: say what will not be recorded
                logger.warning("autolog: task %s ends with %s not recorded", self.task_id[:8], self.left())
            raise
        finally:
            if final:
                self._stopped = True
                self._wake.set()

    def left(self) -> str:
        """What is still buffered: "N scalars and M reports"."""
        return f"{len(self.scalars) + len(self._retry['scalars'])} scalars and " \
               f"{len(self.work) + len(self._retry['work'])} reports"

    def forget_after_fork(self) -> None:
        """In a forked child: the parent writes what this copy holds; this copy writes nothing."""
        self.closed = self._stopped = True
        self.scalars.clear()
        self.work.clear()
        self._retry = {"scalars": [], "work": []}
        self._drain_lock = threading.Lock()
        self.thread = None


def _take(queue: deque, n: int) -> list:
    batch: list = []
    pop = queue.popleft
    try:
        for _ in range(n):
            batch.append(pop())
    except IndexError:
        pass
    return batch


def file_identity(path: str) -> tuple | None:
    """What delete_after_upload compares before deleting (the file read is the file deleted)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


# -- one writer per run ------------------------------------------------------------------------
_writers: "weakref.WeakSet[ReportWriter]" = weakref.WeakSet()
_lock = threading.Lock()


def drain_open_writers() -> None:
    """Write what every open writer of this process buffers (before reading a model's reports, which any
    task running here may have made)."""
    for writer in list(_writers):
        if not writer.closed:
            writer.drain()


def writer_for(run: "TaskRuntime") -> ReportWriter:
    """The run's writer, made (and its thread started) on the first report."""
    with _lock:
        writer = run.reporter
        if writer is None:
            writer = run.reporter = ReportWriter(run)
            run.add_flusher("reported scalars and reports", writer.flush)
            writer.start()
            _drain_at_multiprocessing_exit(run, writer)
        return writer


def _drain_at_multiprocessing_exit(run: "TaskRuntime", writer: ReportWriter) -> None:
    """A multiprocessing child (a DataLoader worker) ends with os._exit, after multiprocessing's own
    exit hooks and no atexit: write its reports from there."""
    from .process import in_multiprocessing_child

    if not in_multiprocessing_child():
        return
    from multiprocessing import util

    util.Finalize(writer, _drain_quietly, args=(writer,), exitpriority=100)


def _drain_quietly(writer: ReportWriter) -> None:
    with shielded("writing reported scalars at the end of a multiprocessing child"):
        writer.flush(final=True)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    for writer in list(_writers):
        writer.forget_after_fork()


on_fork("reporting.writers", after_in_child=_after_fork_in_child)
