"""Records: the schema, the queries, and one store per database URL in this process.

Importing this package loads no SQLAlchemy: the record types are plain dataclasses, and the store
module (and SQLAlchemy with it, ~0.1 s) is imported when a store is first opened.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ..forking import on_fork
from .records import (
    ArtifactRecord, LoadRecord, ModelRecord, SnapshotRecord, TaskRecord, new_id, new_time_ordered_id,
)

if TYPE_CHECKING:
    from .store import MetadataStore

__all__ = [
    "ArtifactRecord", "LoadRecord", "MetadataStore", "ModelRecord", "SnapshotRecord", "TaskRecord",
    "new_id", "new_time_ordered_id", "open_store",
]

_stores: dict[str, "MetadataStore"] = {}
_lock = threading.Lock()


def _new_lock_after_fork() -> None:
    global _lock
    _lock = threading.Lock()


on_fork("db.lock", after_in_child=_new_lock_after_fork)


def open_store(url: str) -> "MetadataStore":
    from .store import MetadataStore

    with _lock:
        if url not in _stores:
            _stores[url] = MetadataStore(url)
        return _stores[url]


def __getattr__(name: str) -> Any:
    if name == "MetadataStore":
        from .store import MetadataStore

        return MetadataStore
    raise AttributeError(f"module 'autolog.db' has no attribute {name!r}")
