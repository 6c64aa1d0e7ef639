"""What the snapshot pipeline works on: its options, and one job per captured save or load."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from ..db import ModelRecord
from ..storage import objects
from ..storage.blobstore import BlobStore
from ..storage.copy_progress import CopyProgress
from ..storage.set_aside import SetAside
from ..storage.sources import OpenedSources, Sources, source_path
from .lazy_event import LazyEvent


BATCH = 256  # jobs per database transaction at most


@dataclass(frozen=True)
class PipelineOptions:
    backlog_bytes: int = 8 << 30
    backlog_policy: str = "block"  # or "coalesce"
    max_unread: int = 64  # snapshots whose files are held open, waiting to be read
    upload_workers: int = 4
    upload_retries: int = 5
    retry_backoff: float = 1.0  # seconds, doubled per attempt, capped at 30
    db_retry_seconds: float = 60.0  # uploaders retry recording a stored snapshot while the database is down
    stall_timeout: float = 30.0  # waits end once the background work made no progress for this long
    inline_bytes: int = 256 << 10  # one-file local snapshots up to this size are read on the training thread
    held_bytes: int = 64 << 20  # ...while the bytes held that way, not yet written, stay under this
    # While someone waits for stored snapshots (close, flush), those from this size up are hashed behind
    # their copy (storage/copy_progress.py); smaller ones after it, where the overlap gives little.
    hash_behind_bytes: int = 64 << 20
    journal_window: float = 0.05  # seconds a new save's row may wait to share a transaction
    batch_window: float = 0.05  # seconds the recorder gathers saves into one transaction, while nobody waits
    worker_nice: int = 10  # the stager's and the hasher's CPU priority (cpu_priority.py); 0: the process's


@dataclass(eq=False)
class SnapshotJob:
    """One snapshot on its way: opened on the training thread, journaled (a pending row with its seq),
    staged (copied out and hashed), published (renamed or uploaded), recorded (row stored)."""

    snapshot_id: str  # chosen here, so the row's id is known before the row is written
    model: ModelRecord | None  # None until the journal writer has found or created it (model_request)
    opened: OpenedSources | None
    store: BlobStore | None
    fence_key: str | None
    size: int
    iteration: int | None = None
    key_for: Callable[[ModelRecord, int], str] | None = None
    model_request: Callable[[], ModelRecord] | None = None
    on_stored: Callable[["SnapshotJob"], None] | None = None
    order: int = 0  # submission order: lineage of a later load waits for earlier saves
    created: float = field(default_factory=time.time)  # when it was saved (its row is written later)
    seq: int = 0  # set once its pending row is written (the journal writer runs beside the stager)
    journal_error: BaseException | None = None  # the row could not be written
    key: str = ""
    state: str = "new"  # new, queued (journaled), staged, uploading, published, done, failed, skipped
    staging: str | None = None
    copy_progress: CopyProgress | None = None  # its copy's progress, for a hash behind it (large snapshots)
    hash_queued: bool = False  # handed to the hasher (before its copy ends, when someone waits)
    data: bytes | None = None  # a small snapshot's bytes, read on the training thread (read_inline)
    stats: list = field(default_factory=list)  # the source files' stat when they were opened
    content: objects.Content | None = None
    published: objects.Published | None = None
    uri: str | None = None
    error: BaseException | None = None
    in_backlog: bool = False  # counted in the pipeline's backlog of staged bytes
    overwritten_unread: bool = False  # a later save of its path stopped waiting for it (a stall)
    set_aside: SetAside | None = None  # a later save renamed its file aside (told once read: Outcomes)
    staged: LazyEvent = field(default_factory=LazyEvent)
    done: LazyEvent = field(default_factory=LazyEvent)

    @property
    def journaled(self) -> bool:
        return self.seq > 0

    @property
    def journal_settled(self) -> bool:
        """Its row is written, or cannot be: what happens next may be recorded."""
        return self.seq > 0 or self.journal_error is not None

    @property
    def sources(self) -> Sources:
        return self.opened.sources

    @property
    def label(self) -> str:
        name = self.model.name if self.model is not None else source_path(self.sources)
        return f"{name} #{self.seq}" if self.seq else f"{name} (not journaled)"


@dataclass(eq=False)
class CallJob:
    """A load: the loaded file is hashed off the training thread, then linked to the snapshot that
    produced its bytes once every earlier save of this process is recorded."""

    link: Callable[[objects.Content], None]
    opened: OpenedSources | None
    fence_key: str | None
    label: str
    content_of: Callable[[OpenedSources], objects.Content] | None = None
    order: int = 0
    size: int = 0
    state: str = "queued"
    error: BaseException | None = None
    staged: LazyEvent = field(default_factory=LazyEvent)
    done: LazyEvent = field(default_factory=LazyEvent)


@dataclass
class FlushOutcome:
    """What a flush leaves behind, told in one warning (nothing when all went well)."""

    left: list  # jobs still pending
    failed: list[tuple[str, str]]  # (snapshot label, reason) that failed since the last flush
    unrecorded: list[str]  # saved paths the database could not take
    stalled: str | None  # why waiting stopped early
    timeout: float
    unqueued: list[str] = field(default_factory=list)  # saved paths not queued: the background work had stalled
    kept: list[tuple[str, str]] = field(default_factory=list)  # (label, why) pending with a staged copy kept

    def describe(self, task: str) -> str:
        parts = []
        snapshots = [j for j in self.left if isinstance(j, SnapshotJob)]
        journaled = [j for j in snapshots if j.seq]
        why = self.stalled or f"still going after {self.timeout:.0f} s (pipeline.flush_timeout)"
        if journaled:
            parts.append(f"{len(journaled)} snapshot(s) not stored yet ({why}): {_names(j.label for j in journaled)}. "
                         "They are journaled: run `autolog sync` to finish them")
        if len(journaled) < len(snapshots):
            unjournaled = [j for j in snapshots if not j.seq]
            parts.append(f"{len(unjournaled)} save(s) not even journaled yet ({why}): "
                         f"{_names(j.label for j in unjournaled)}. No row exists for them, so `autolog sync` cannot "
                         "finish them if this process ends now: save them again, or wait longer (flush(timeout=))")
        if self.kept:
            parts.append(f"{len(self.kept)} snapshot(s) not stored yet, their staged copies kept: "
                         + _names(f"{label} ({why})" for label, why in self.kept)
                         + ". Run `autolog sync` once the storage works again")
        if self.failed:
            parts.append(f"{len(self.failed)} snapshot(s) failed: "
                         + _names(f"{label} ({reason})" for label, reason in self.failed))
        if self.unrecorded:
            parts.append(f"{len(self.unrecorded)} save(s) were not recorded, so their files were not copied: "
                         f"{_names(self.unrecorded)}. Save them again, or upload them with task.update_output_model "
                         "(once the database is reachable, where it was not)")
        if self.unqueued:
            parts.append(f"{len(self.unqueued)} save(s) were not stored (autolog's background work had stalled, "
                         f"so they were not queued; their files were not copied): {_names(self.unqueued)}. Save "
                         "them again, or upload them with task.update_output_model")
        return f"task {task}: " + "; ".join(parts) + "." if parts else ""


def _names(items) -> str:  # type: ignore[no-untyped-def]
    items = list(items)
    return ", ".join(items[:10]) + (f" ... ({len(items) - 10} more)" if len(items) > 10 else "")
