"""What the snapshot pipeline works on: its options, and one job per captured save or load."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

from ..db import ModelRecord
from . import objects
from .blobstore import BlobStore
from .objects import OpenedSources


@dataclass(frozen=True)
class PipelineOptions:
    backlog_bytes: int = 8 << 30
    backlog_policy: str = "block"  # or "coalesce"
    max_unread: int = 64  # snapshots whose files are held open, waiting to be read
    upload_workers: int = 4
    upload_retries: int = 5
    retry_backoff: float = 1.0  # seconds, doubled per attempt, capped at 30
    db_retry_seconds: float = 60.0  # uploaders retry recording a stored snapshot while the database is down
    journal_timeout: float = 10.0  # a save waits at most this long for the database to take its pending row


@dataclass(eq=False)
class SnapshotJob:
    snapshot_id: str
    model: ModelRecord
    seq: int
    opened: OpenedSources | None
    store: BlobStore | None
    key: str
    fence_key: str | None
    size: int
    on_stored: Callable[["SnapshotJob"], None] | None = None
    state: str = "queued"  # queued, staged, uploading, done, failed, skipped
    staging: str | None = None
    stats: list = field(default_factory=list)  # the source files' stat when they were opened
    content: objects.Content | None = None
    uri: str | None = None
    error: BaseException | None = None
    staged: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def label(self) -> str:
        return f"{self.model.name} #{self.seq}"


@dataclass(eq=False)
class CallJob:
    """Other work that reads a user's file off the training thread (hashing a loaded file for lineage)."""

    fn: Callable[[], None]
    opened: OpenedSources | None
    fence_key: str | None
    label: str
    size: int = 0
    state: str = "queued"
    error: BaseException | None = None
    staged: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
