"""The settings and the metadata store that API objects work with."""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from .forking import on_fork
from .config import Settings, load_settings
from .db import open_store

if TYPE_CHECKING:
    from .db.store import MetadataStore


# Not functools.cached_property: its lock is shared by every instance and, held by the background
# thread that opens the store when a process forks, would deadlock the child's first save.
_store_lock = threading.Lock()


def _new_locks_after_fork() -> None:
    global _store_lock
    _store_lock = threading.Lock()
    _rows_being_created.clear()  # the threads that would set these events were not forked
    _init_threads.clear()


class Context:
    """Settings plus the store they name; the store (and SQLAlchemy) is opened on first use."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._store: "MetadataStore | None" = None

    @property
    def store(self) -> "MetadataStore":
        if self._store is None:
            with _store_lock:
                if self._store is None:
                    self._store = open_store(self.settings.db_url)
        return self._store

    @property
    def cache_dir(self) -> str:
        return str(self.settings.cache_dir)


# Task.init creates its row in a background thread; a query made meanwhile in this process waits for
# it, so that Task.get_task(task_id=Task.current_task().id) finds the task. That thread waits for the
# script's imports to go quiet (quiet_start.py): setting its `wanted` event starts it at once.
_rows_being_created: dict[threading.Event, threading.Event] = {}  # ready -> wanted
_init_threads: dict[threading.Thread, tuple[threading.Event, threading.Event]] = {}  # -> (wanted, between tries)


def row_being_created(ready: threading.Event, wanted: threading.Event, thread: threading.Thread,
                      between_tries: threading.Event) -> None:
    _rows_being_created[ready] = wanted
    _init_threads[thread] = (wanted, between_tries)


FORK_WAITS_FOR_ROW_S = 60.0


def _finish_rows_before_fork() -> None:
    """A fork while the background thread imports SQLAlchemy would copy held import locks into the
    child, which then hangs at its first save: let that thread finish first (~0.1 s). Not while it
    waits between two tries of a database that is down (db.retry_seconds, 60 s): it holds nothing
    then, and a DataLoader forking its workers must not wait for the database to come back."""
    for thread, (wanted, between_tries) in list(_init_threads.items()):
        if thread is not threading.current_thread():
            wanted.set()
            deadline = time.monotonic() + FORK_WAITS_FOR_ROW_S
            while thread.is_alive() and not between_tries.is_set() and time.monotonic() < deadline:
                thread.join(timeout=0.01)
        if not thread.is_alive():
            _init_threads.pop(thread, None)


on_fork("context.rows", before=_finish_rows_before_fork)
on_fork("context.locks", after_in_child=_new_locks_after_fork)


_ROW_WAIT = 120.0  # seconds


def default_context() -> Context:
    """Read config and environment now, so a changed AUTOLOG_HOME or AUTOLOG_DB_URL takes effect."""
    for ready, wanted in list(_rows_being_created.items()):
        wanted.set()
        ready.wait(_ROW_WAIT)  # bounded: the row's thread itself gives up on the database before this
        _rows_being_created.pop(ready, None)
    return Context(load_settings())
