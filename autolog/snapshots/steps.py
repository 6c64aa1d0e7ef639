"""The steps a snapshot goes through in the background: its pending row, staging (copy out of the
user's file and hash the copy), publishing (rename into place, or dedupe and upload with retries),
and its outcome recorded with the stat cache.

Each step is a plain function of the job and what it needs; the pipeline decides which worker runs
it, batches the database writes, and settles failures. A step that fails raises.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from typing import Any, Callable

from ..config import redact_url
from ..context import Context
from ..storage import objects
from ..storage.blobstore import remove_quietly
from ..storage.handoff import Handoff
from ..storage.objects import Published, copied_marker
from ..storage.sources import source_path
from . import identity
from .database_guard import database_unreachable
from .dedupe import stored_copy_finder
from .in_place import path_only_location
from .jobs import PipelineOptions, SnapshotJob
from .worker import attempt

logger = logging.getLogger("autolog")


def pending_row(job: SnapshotJob) -> dict[str, Any]:
    """The journal entry of a save: enough for `autolog sync` to finish it after a crash (the staging
    folder was chosen at submit, so a copy that finished before a crash is found). A small save read
    at once has its digest too: sync then stores from its path only the bytes it saved."""
    sources = job.sources
    return {
        "id": job.snapshot_id, "model_id": job.model.id, "status": "pending", "iteration": job.iteration,
        "created": job.created, "digest": job.content.digest if job.content is not None else None,
        "entry": sources.entry, "source_path": source_path(sources), "stage_uri": job.staging,
        "source_stat": {"files": [[src, st.st_size, st.st_mtime_ns] for (src, _), st in zip(sources.files, job.stats)]},
    }


def content_in_place(ctx: Context, job: SnapshotJob) -> objects.Content:
    """output_uri=None: the snapshot is its path and hash only."""
    return identity.opened_content(ctx, job.opened)


def read_inline(job: SnapshotJob, limit: int) -> bool:
    """On the training thread, for a small one-file snapshot kept locally: read and hash it now (one
    read of a few hundred KB costs less than waking a worker), so the next save of the path never
    waits at the fence and no staging copy is written. False, with nothing changed, when it does not
    apply or the read failed: the stager then copies it, and reports why if that fails too."""
    if job.size > limit or not job.sources.single or (job.store is not None and not job.store.local):
        return False
    try:
        job.data, job.content = objects.read_small(job.opened)
    except Exception:  # noqa: BLE001 - the stager reads it again and settles the snapshot
        job.data = job.content = None
        return False
    # Its bytes are held: closing the file is cleanup, and a failure there must not lose the save.
    attempt("closing the saved file", job.opened.close)
    return True


def copy(job: SnapshotJob, on_copied: Callable[[], None], beat: Callable[..., None],
         handoff: Handoff | None = None) -> None:
    """Copy the user's files into the staging folder; then they may be overwritten. handoff: who may
    finish the copy (storage/handoff.py)."""
    progress = job.copy_progress

    def copied(count: int) -> None:
        beat()
        if progress is not None:  # the hasher reads behind the copy
            progress.advance(count)

    try:
        objects.copy_out(job.opened, job.staging, on_progress=copied,
                         followed=progress.followed if progress is not None else None, handoff=handoff)
    finally:
        attempt("closing the saved file", job.opened.close)
    # Before the source may be overwritten: the copy is complete and checked, so `autolog sync` may
    # store it after a crash however the source changed since (local stores too: a staged copy waits
    # there for its hash and the recorder's round).
    open(copied_marker(job.staging), "wb").close()
    on_copied()


def hash_staged(job: SnapshotJob, beat: Callable[..., None], handoff: Handoff | None = None) -> None:
    """Hash the staged copies (nobody else writes them): job.content. With job.copy_progress, as far
    as the copy has written them (CopyAbandoned if that copy fails). handoff: as for copy."""
    targets = objects.staged_targets(job.sources, job.stats, job.staging)
    job.content = objects.hash_copies(job.sources, targets, on_progress=beat, behind=job.copy_progress,
                                      handoff=handoff)


def discard_staging(job: SnapshotJob) -> list[tuple[str, Callable[[], object]]]:
    """The cleanup effects of a snapshot whose staged copy is not kept (each attempted on its own)."""
    if not job.staging:
        return []
    staging = job.staging
    return [(f"removing {staging}", lambda: shutil.rmtree(staging, ignore_errors=True)),
            (f"removing the marker of {staging}", lambda: remove_quietly(copied_marker(staging)))]


def journal_staged(ctx: Context, job: SnapshotJob) -> None:
    """What sync needs to publish the staged copy after a crash (its copied marker covers the time
    before this); the upload goes on when the database is unreachable."""
    try:
        ctx.store.update_snapshot(job.snapshot_id, digest=job.content.digest, size=job.content.size,
                                  files=job.content.manifest, stage_uri=job.staging)
    except Exception as exc:  # noqa: BLE001
        if not database_unreachable(exc):
            raise
        logger.debug("autolog: staged copy of %s not journaled (%s)", job.label, exc)


def stored_copies(ctx: Context, jobs: list[SnapshotJob]) -> dict[str, tuple[str, str]]:
    """digest -> (uri, entry) of stored snapshots holding the bytes of these local snapshots: one query
    per output_uri for the whole batch."""
    found: dict[str, tuple[str, str]] = {}
    by_root: dict[str, list[str]] = {}
    for job in jobs:
        by_root.setdefault(redact_url(job.store.root), []).append(job.content.digest)
    for root, digests in by_root.items():
        for snap in ctx.store.stored_copies(digests, root):
            found.setdefault(snap.digest, (snap.uri, snap.entry))
    return found


def publish_local(ctx: Context, job: SnapshotJob, stored_copies: dict[str, tuple[str, str]]) -> None:
    """Local store: reuse a stored copy of the same bytes, else rename the staged copy into place.

    stored_copies (digest -> (uri, entry)) holds what the batch's lookup found; what this publishes
    is added, so the same bytes saved twice in one batch are stored once.
    """
    content, sources = job.content, job.sources
    found = stored_copies.get(content.digest)
    if found is not None:  # claimed before it is checked, as dedupe.stored_copy_finder does: retention
        ctx.store.update_snapshot(job.snapshot_id, uri=found[0])  # keeps what a pending row points at
        if not os.path.exists(found[0]):
            ctx.store.update_snapshot(job.snapshot_id, uri=None)
            found = None
    if found is not None:
        if job.staging:
            attempt(f"removing the duplicate staged copy {job.staging}",
                    lambda: shutil.rmtree(job.staging, ignore_errors=True))
        job.published = Published(uri=found[0], entry=found[1], content=content, deduplicated=True)
    else:
        if job.data is not None:
            job.published = objects.publish_bytes(job.data, sources, content, job.store, job.key)
        else:
            job.published = objects.publish_staged(job.staging, sources, content, job.store, job.key,
                                                   ctx.cache_dir, find_copy=lambda digest: None)
        stored_copies[content.digest] = (job.published.uri, job.published.entry)
    job.uri = job.published.uri


def upload(ctx: Context, options: PipelineOptions, job: SnapshotJob, beat: Callable[..., None]) -> None:
    """Remote store: find a stored copy of the same bytes (claimed by the row), else upload it."""
    finder = stored_copy_finder(ctx, job.store, job.snapshot_id)
    job.published = objects.publish_staged(
        job.staging, job.sources, job.content, job.store, job.key, ctx.cache_dir,
        find_copy=finder, put_file=put_with_retries(options, job, beat),
    )
    job.uri = job.published.uri


def record_outcomes(ctx: Context, jobs: list[SnapshotJob]) -> None:
    """Every job's row stored (or local, for output_uri=None) and the stat cache, in one transaction."""
    updates, hashes = outcome_rows(jobs, time.time())
    identity.remember_many(ctx, hashes, lambda rows: ctx.store.finish_snapshots(updates, rows))
    for job in jobs:
        if job.store is not None and job.staging:
            attempt(f"removing the copied marker of {job.label}",
                    lambda job=job: remove_quietly(copied_marker(job.staging)))


def outcome_rows(jobs: list[SnapshotJob], now: float) -> tuple[list, list]:
    """(snapshot id, values) of each job's outcome row, and (stat, digest) of each file read to store it."""
    updates, hashes = [], []
    for job in jobs:
        content = job.content
        if job.store is None:
            location = path_only_location(source_path(job.sources), job.sources)
            updates.append((job.snapshot_id, {"status": "local", "uri": location,
                                              "digest": content.digest, "size": content.size,
                                              "files": content.manifest}))
            continue
        published = job.published
        updates.append((job.snapshot_id, {
            "status": "stored", "uri": redact_url(published.uri), "entry": published.entry,
            "digest": content.digest, "size": content.size, "files": content.manifest, "stage_uri": None,
            "reason": None, "stored_at": now,
        }))
        entries = content.manifest or [{"digest": content.digest}]
        hashes += [(st, entry["digest"]) for st, entry in zip(job.stats, entries)]
    return updates, hashes


def put_with_retries(options: PipelineOptions, job: SnapshotJob, beat: Callable[..., None]
                     ) -> Callable[[str, str], object]:
    def put(local: str, key: str) -> object:
        delay = options.retry_backoff
        for attempt_number in range(1, options.upload_retries + 1):
            try:
                return job.store.put_file(local, key, on_progress=beat)
            except Exception as exc:  # noqa: BLE001 - storage errors come in many types
                if attempt_number >= options.upload_retries:
                    raise
                logger.debug("autolog: upload of %s failed (%s), retry %d in %.1fs", key, exc, attempt_number,
                             delay)
                time.sleep(delay)
                beat()
                delay = min(delay * 2, 30.0)
        raise ValueError(f"upload_retries must be at least 1, got {options.upload_retries}")

    return put
