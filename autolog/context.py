"""The settings and the metadata store that API objects work with."""
from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from .config import Settings, load_settings
from .db import open_store

if TYPE_CHECKING:
    from .db.store import MetadataStore


class Context:
    """Settings plus the store they name; the store (and SQLAlchemy) is opened on first use."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def store(self) -> "MetadataStore":
        return open_store(self.settings.db_url)

    @property
    def cache_dir(self) -> str:
        return str(self.settings.cache_dir)


# Task.init creates its row in a background thread; a query made meanwhile in this process waits for
# it, so that Task.get_task(task_id=Task.current_task().id) finds the task.
_rows_being_created: set[threading.Event] = set()


def row_being_created(ready: threading.Event) -> None:
    _rows_being_created.add(ready)


def default_context() -> Context:
    """Read config and environment now, so a changed AUTOLOG_HOME or AUTOLOG_DB_URL takes effect."""
    for ready in list(_rows_being_created):
        ready.wait()
        _rows_being_created.discard(ready)
    return Context(load_settings())
