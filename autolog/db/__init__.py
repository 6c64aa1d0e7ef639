"""Records: the schema, the queries, and one store per database URL in this process."""
from __future__ import annotations

import threading

from .records import ArtifactRecord, LoadRecord, ModelRecord, SnapshotRecord, TaskRecord
from .store import MetadataStore, new_id

__all__ = [
    "ArtifactRecord", "LoadRecord", "MetadataStore", "ModelRecord", "SnapshotRecord", "TaskRecord",
    "new_id", "open_store",
]

_stores: dict[str, MetadataStore] = {}
_lock = threading.Lock()


def open_store(url: str) -> MetadataStore:
    with _lock:
        if url not in _stores:
            _stores[url] = MetadataStore(url)
        return _stores[url]
