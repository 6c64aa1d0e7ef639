"""The content hash (digest) of registered objects (`update_weights(register_uri=)`), read off the training thread.

ClearML records a registered URL as it is. autolog also wants its content hash (lineage is by
content), but reading a remote object may take long or never succeed (no network, a host that does
not answer). So the snapshot is recorded at once, by URL, with digest and size NULL, and one daemon
thread per process (started with the first job) reads each object through fsspec and fills them in
when it can. Until then a load of those bytes cannot be linked to that snapshot: lineage looks
snapshots up by hash. An object that cannot be read keeps no hash, and one INFO line says why.

Objects are read one at a time, in the order registered: one that does not answer delays the ones
after it (until its storage gives up). The thread's loop cannot die (worker.py). `wait` lets close()
wait for a task's hashes while they progress, and no longer than `patience` seconds once they do not.
A process that ends first leaves those snapshots without a hash (`autolog sync` does not read them).
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field

from ..config import redact_url, scrub
from ..context import Context
from ..forking import on_fork
from ..safety import report_failure
from ..storage.objects import Content, object_content
from .database_guard import retry_while_unreachable
from .worker import Heartbeat, Worker

logger = logging.getLogger("autolog")


@dataclass
class HashJob:
    ctx: Context
    snapshot_id: str
    uri: str  # the URL as given, credentials included: kept in memory only, never written
    task_id: str
    label: str  # the redacted URL, for messages
    done: threading.Event = field(default_factory=threading.Event)
    content: Content | None = None  # once hashed
    unreadable: str | None = None  # why it could not be read


class RegisteredHashes:
    """Hashes registered objects in submission order on one daemon thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: collections.deque[HashJob] = collections.deque()
        self._unfinished: list[HashJob] = []
        self._heartbeat = Heartbeat()
        self._worker = Worker("autolog-registered-hashes", self._take, self._hash, self._failed, self._settle)

    def submit(self, ctx: Context, snapshot_id: str, uri: str, task_id: str) -> HashJob:
        """Queue the hash of the object at uri for the snapshot's row; returns at once."""
        job = HashJob(ctx, snapshot_id, uri, task_id, redact_url(uri))
        with self._cond:
            self._queue.append(job)
            self._unfinished.append(job)
            self._heartbeat.beat()  # a wait's patience starts from the newest job
            self._cond.notify_all()
            if not self._worker.alive():  # started lazily; restarted if a bug ever ended its loop
                self._worker.start()
        return job

    def wait(self, task_id: str, patience: float, timeout: float) -> list[HashJob]:
        """Wait for the task's jobs while reading progresses (a chunk read, a job settled), until
        `patience` seconds pass without progress or `timeout` in all; returns the jobs left."""
        deadline = time.monotonic() + timeout
        watch = self._heartbeat.watch(patience)
        with self._cond:
            while True:
                left = [job for job in self._unfinished if job.task_id == task_id]
                remaining = deadline - time.monotonic()
                if not left or watch.stalled() is not None or remaining <= 0:
                    return left
                self._cond.wait(watch.poll(min(remaining, 0.25)))

    # -- the thread ----------------------------------------------------------------------
    def _take(self) -> HashJob:
        with self._cond:
            while not self._queue:
                self._cond.wait()
            return self._queue.popleft()

    def _hash(self, job: HashJob) -> None:
        try:
            content = object_content(job.uri, on_progress=self._heartbeat.beat)
        except Exception as exc:  # noqa: BLE001 - an object that cannot be read is expected, not a bug
            job.unreadable = f"{type(exc).__name__}: {scrub(str(exc))}"
            logger.info("autolog: registered %s could not be read to hash it (%s). Its snapshot stays recorded "
                        "by URL without a content hash, so loads of it are not linked to it.", job.label, job.unreadable)
            return
        # A database that is down for a while must not lose a hash that took long to read.
        retry_while_unreachable(lambda: job.ctx.store.update_snapshot(
            job.snapshot_id, digest=content.digest, size=content.size), job.ctx.settings.db_retry_seconds)
        job.content = content
        logger.debug("autolog: registered %s hashed: %s, %d bytes", job.label, content.digest[:19],
                     content.size)

    def _failed(self, job: HashJob, exc: BaseException) -> None:
        """Recording the hash failed (the database, not the object): warned once per kind."""
        report_failure(f"the content hash of registered {job.label}", exc, kind="the content hash of a registered object")

    def _settle(self, job: HashJob) -> None:
        with self._cond:
            if job in self._unfinished:
                self._unfinished.remove(job)
            self._heartbeat.beat()
            self._cond.notify_all()
        job.done.set()


_hashes: RegisteredHashes | None = None
_lock = threading.Lock()


def registered_hashes() -> RegisteredHashes:
    """This process's hasher of registered objects."""
    global _hashes
    with _lock:
        if _hashes is None:
            _hashes = RegisteredHashes()
        return _hashes


def _forget_in_child() -> None:
    """A forked child has no hashing thread; the parent's jobs are the parent's to finish."""
    global _hashes, _lock
    _hashes, _lock = None, threading.Lock()


on_fork("snapshots.registered", after_in_child=_forget_in_child)
