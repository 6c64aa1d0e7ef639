"""Finishing what a crashed or killed run left pending (`autolog sync`).

Every captured snapshot is a `pending` row before any byte is copied, with the source files' size
and mtime and the staged copy's path. For each pending snapshot no process is storing (its process
is gone, or gave it up: see in_the_works): a staged copy whose hash still matches (or, not hashed
yet, a copy marked complete) is published; else an object already uploaded to its final key that
hashes to the journaled digest is recorded (in a local store, a single file there of the journaled
size, which the recorder put there after its hash and checks, is hashed and recorded); else the
source file as it was saved is stored: set aside by a later save of its path (`<staging>.aside`, see
storage/set_aside.py) or unchanged at its path; else the snapshot is marked `failed` with the
reason, and anything at its final key is removed. Runs whose process died without closing are
marked `failed` too.
"""
from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace

from ..config import redact_url, scrub
from ..context import Context
from ..db import SnapshotRecord, TaskRecord
from ..storage import objects
from ..storage.blobstore import BlobStore, remove_quietly
from ..run_info import host_name, process_started
from ..storage.hashing import IDENTITY, algorithm_of, file_digest
from ..storage.layout import display_path, real_path, snapshot_key, task_prefix
from ..storage.objects import copied_marker
from ..storage.sources import Sources, collect_sources, open_sources
from ..storage.set_aside import aside_path
from .dedupe import stored_copy_finder

logger = logging.getLogger("autolog")


@dataclass
class SyncReport:
    stored: list[SnapshotRecord] = field(default_factory=list)
    failed: list[tuple[SnapshotRecord, str]] = field(default_factory=list)
    live: list[SnapshotRecord] = field(default_factory=list)  # still being stored by a running process
    closed_tasks: list[TaskRecord] = field(default_factory=list)


def process_alive(task: TaskRecord) -> bool:
    """Whether the process that ran task is still running (only knowable on its own host). A closed
    task's process may live on and still store what close() gave up waiting for (a notebook, a
    sweep's next trial): it is that very process if its start time is the one recorded (a pid alone
    may name another process since)."""
    info = task.run_info or {}
    if info.get("host") != host_name():
        return task.status == "running"  # another machine's run: assume alive while it runs
    pid = info.get("pid")
    if not (isinstance(pid, int) and pid_alive(pid)):
        return False
    started, now = info.get("pid_started"), process_started(pid)
    if started is None or now is None:  # recorded before start times were, or /proc hides it: the pid says
        return task.status == "running"
    return started == now


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host."""
    if pid <= 0:  # 0 and negative numbers name process groups
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def in_the_works(snap: SnapshotRecord, task: TaskRecord) -> bool:
    """Whether the process of the snapshot's task is still storing it. Not one it gave up on: its
    pipeline then keeps the row pending with a reason (the staged copy kept, "run autolog sync")."""
    return snap.reason is None and process_alive(task)


def unfinished(ctx: Context, exclude_task: str | None = None) -> list[tuple[SnapshotRecord, TaskRecord]]:
    """Pending snapshots that no process is storing."""
    found, tasks = [], {}
    for snap, task_id in ctx.store.pending_snapshots(exclude_task=exclude_task):
        if task_id not in tasks:
            tasks[task_id] = ctx.store.get_task(task_id)
        if not in_the_works(snap, tasks[task_id]):
            found.append((snap, tasks[task_id]))
    return found


def sync(ctx: Context, force: bool = False) -> SyncReport:
    report = SyncReport()
    tasks: dict[str, TaskRecord] = {}
    for snap, task_id in ctx.store.pending_snapshots():
        task = tasks.get(task_id) or tasks.setdefault(task_id, ctx.store.get_task(task_id))
        if in_the_works(snap, task) and not force:
            report.live.append(snap)
            continue
        try:
            finished = _finish(ctx, snap, task)
            if finished.status == "stored":
                report.stored.append(finished)
        except Exception as exc:  # noqa: BLE001 - each snapshot gets its own verdict
            reason = f"not recoverable after the run ended: {scrub(str(exc))}"
            # Only a row still pending: another sync at once may have stored it (and removed the file
            # this one looked for); its object is then not ours to remove.
            if ctx.store.update_pending_snapshot(snap.id, status="failed", reason=reason):
                _discard_unverified_object(ctx, snap, task)
                report.failed.append((snap, reason))
        if snap.stage_uri:  # the file set aside for it, if the run died before its copy was read
            remove_quietly(aside_path(snap.stage_uri))
    for task in ctx.store.find_tasks(status="running"):  # also runs killed with nothing pending
        tasks.setdefault(task.id, task)
    for task in tasks.values():
        if task.status == "running" and not process_alive(task):
            ctx.store.update_task(task.id, status="failed", status_message="the process ended without closing "
                                  "the task (killed?); finished by autolog sync")
            report.closed_tasks.append(task)
    return report


def _finish(ctx: Context, snap: SnapshotRecord, task: TaskRecord) -> SnapshotRecord:
    model = ctx.store.get_model(snap.model_id)
    if task.output_uri is None:
        raise RuntimeError("the run recorded paths only (output_uri=None) and never hashed this file")
    store = BlobStore(task.output_uri)
    key = snapshot_key(task_prefix(task.project, task.name, task.id), model.name, model.id, snap.seq)
    if store.local:  # the dead process's partial copy, staged next to the key
        for stale in glob.glob(glob.escape(store.url(key)) + ".incomplete-*"):
            shutil.rmtree(stale, ignore_errors=True)
    staging, content = _staged_copy(snap)
    if staging is None:
        uri = _published_copy(ctx, store, key, snap)
        if uri is not None:  # uploaded, but the process died before recording it
            return _stored(ctx, snap, uri=redact_url(uri), reason="finished by autolog sync (its upload had completed)")
        in_place = _renamed_into_place(store, key, snap) if store.local else None
        if in_place is not None:
            uri, content = in_place
            return _stored(ctx, snap, uri=redact_url(uri), digest=content.digest, size=content.size,
                           reason="finished by autolog sync (it had been put in place)")
    if staging is not None:
        sources = _sources_like_staged(snap, staging)
    else:
        sources = _set_aside_source(snap) or _unchanged_sources(snap)
        staging = objects.staging_dir(store, str(ctx.settings.cache_dir))
        content = objects.stage(open_sources(sources), staging)
        if snap.digest and algorithm_of(snap.digest) == IDENTITY and content.digest != snap.digest:
            shutil.rmtree(staging, ignore_errors=True)  # same size and mtime, other bytes (a coarse clock)
            raise RuntimeError(f"{snap.source_path} changed after the save (not the bytes it saved), and no "
                               "staged copy is left")
    published = objects.publish_staged(staging, sources, content, store, key, str(ctx.settings.cache_dir),
                                       find_copy=stored_copy_finder(ctx, store, snap.id))
    return _stored(ctx, snap, uri=redact_url(published.uri), entry=published.entry, digest=content.digest,
                   size=content.size, files=content.manifest, reason="finished by autolog sync")


def _stored(ctx: Context, snap: SnapshotRecord, **values: object) -> SnapshotRecord:
    """The snapshot's row says stored (with values) if it is still pending (another sync at once may
    have settled it); its staged copy's marker goes. Returns the row as it is now."""
    if ctx.store.update_pending_snapshot(snap.id, status="stored", stage_uri=None, stored_at=time.time(), **values):
        if snap.stage_uri:
            remove_quietly(copied_marker(snap.stage_uri))
    return ctx.store.get_snapshot(snap.id)


def _final_uri(store: BlobStore, key: str, snap: SnapshotRecord) -> str | None:
    """Where the pipeline publishes this snapshot (objects.snapshot_uri), from what its row records."""
    if not snap.source_path:
        return None
    name = "" if snap.files and snap.entry else os.path.basename(snap.source_path.rstrip(os.sep))
    return store.url(key) + (f"/{name}" if name else "")


def _published_copy(ctx: Context, store: BlobStore, key: str, snap: SnapshotRecord) -> str | None:
    """The object at the snapshot's final key, if it is there and hashes to the digest journaled at staging."""
    uri = _final_uri(store, key, snap)
    if not snap.digest or uri is None:
        return None
    cache_dir = str(ctx.settings.cache_dir)
    os.makedirs(cache_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="sync-check-") as scratch:
        try:
            objects.fetch(uri, snap.entry, snap.digest, snap.files or [], scratch)
        except (OSError, ValueError):  # missing, or not these bytes (IntegrityError)
            return None
    return uri


def _renamed_into_place(store: BlobStore, key: str, snap: SnapshotRecord) -> tuple[str, objects.Content] | None:
    """A local store's single-file snapshot already at its final key: the pipeline puts a copy there
    (a rename of the staged copy, or held bytes written through a temporary name) only once it is
    hashed and checked against the source, and records its digest after. So a file there of the
    journaled size is that copy, whatever became of the source since."""
    files = (snap.source_stat or {}).get("files", [])
    uri = _final_uri(store, key, snap)
    if uri is None or len(files) != 1 or snap.entry or snap.files:
        return None
    try:
        if not os.path.isfile(uri) or os.path.getsize(uri) != files[0][1]:
            return None
        return uri, objects.Content(digest=file_digest(uri), size=files[0][1])
    except OSError:
        return None


def _discard_unverified_object(ctx: Context, snap: SnapshotRecord, task: TaskRecord) -> None:
    """A failed snapshot owns nothing in the store: an object at its own final key (an upload that no
    verified row records) is removed, so every stored object belongs to a stored snapshot."""
    try:
        if task.output_uri is None:
            return
        store = BlobStore(task.output_uri)
        model = ctx.store.get_model(snap.model_id)
        folder = store.url(snapshot_key(task_prefix(task.project, task.name, task.id), model.name, model.id,
                                        snap.seq))
        if store.exists(folder):
            store.delete(folder)
    except Exception as exc:  # noqa: BLE001 - the verdict (failed) stands either way
        logger.debug("autolog: could not remove the unverified object of snapshot %s: %s", snap.id, exc)


def _staged_copy(snap: SnapshotRecord) -> tuple[str | None, objects.Content | None]:
    """The staged copy, if it is complete and matches the hash recorded when it was staged (or, staged
    but not yet hashed when the process died, if it is a complete, checked copy of one file)."""
    if not snap.stage_uri or not os.path.isdir(snap.stage_uri):
        return None, None
    base = snap.stage_uri
    try:
        if not snap.digest:
            return base, _checked_single_copy(snap)
        objects.verify(_staged_root(snap), snap.digest, snap.files or [], base)
    except (OSError, ValueError):
        shutil.rmtree(base, ignore_errors=True)
        remove_quietly(copied_marker(base))
        return None, None
    return base, objects.Content(digest=snap.digest, size=snap.size or 0, manifest=snap.files or [])


def _checked_single_copy(snap: SnapshotRecord) -> objects.Content:
    """Hash a staged single file whose copy finished and passed the change check (its marker exists)."""
    files = (snap.source_stat or {}).get("files", [])
    if len(files) != 1 or snap.entry or not os.path.exists(copied_marker(snap.stage_uri)):
        raise ValueError("the staged copy is not known to be complete")
    root = _staged_root(snap)
    if not os.path.isfile(root) or os.path.getsize(root) != files[0][1]:
        raise ValueError("the staged copy is not the size of the saved file")
    return objects.Content(digest=file_digest(root), size=files[0][1])


def _staged_root(snap: SnapshotRecord) -> str:
    entries = os.listdir(snap.stage_uri)
    if not snap.files and len(entries) == 1:
        return os.path.join(snap.stage_uri, entries[0])  # a single staged file
    if len(entries) == 1 and os.path.isdir(os.path.join(snap.stage_uri, entries[0])):
        return os.path.join(snap.stage_uri, entries[0])  # a staged folder
    return snap.stage_uri


def _sources_like_staged(snap: SnapshotRecord, staging: str) -> Sources:
    root = _staged_root(snap)
    if not snap.files:
        return Sources(files=((root, os.path.basename(root)),), name=os.path.basename(root), single=True)
    name = os.path.basename(root) if root != staging else ""
    return Sources(files=tuple((os.path.join(root, e["name"]), e["name"]) for e in snap.files), name=name,
                   entry=snap.entry)


def _set_aside_source(snap: SnapshotRecord) -> Sources | None:
    """The saved file, renamed aside by a later save of its path before its copy was read (a rename
    keeps its size and mtime: it must still match the journal)."""
    files = (snap.source_stat or {}).get("files", [])
    if not snap.stage_uri or len(files) != 1 or snap.files or snap.entry:
        return None
    aside = aside_path(snap.stage_uri)
    try:
        st = os.stat(aside)
    except FileNotFoundError:
        return None
    if (st.st_size, st.st_mtime_ns) != (files[0][1], files[0][2]):
        return None
    name = os.path.basename(files[0][0])
    return Sources(files=((aside, name),), name=name, single=True)


def _unchanged_sources(snap: SnapshotRecord) -> Sources:
    # Rows hold display text (display_path): compare the files found now the same way.
    recorded = {path: (size, mtime) for path, size, mtime in (snap.source_stat or {}).get("files", [])}
    if not recorded or not snap.source_path:
        raise RuntimeError("no record of the source files")
    # A file saved with companions (ONNX external data) lists them too; a folder's snapshot may have left
    # files out (a Trainer's checkpoint-*, what a save that raised wrote): the journal's list is the snapshot's.
    companions = tuple(real_path(p) for p in recorded) if len(recorded) > 1 else ()
    sources = collect_sources(snap.source_path, companions=companions)
    kept = tuple((src, name) for src, name in sources.files if display_path(src) in recorded)
    current = {display_path(src): (os.stat(src).st_size, os.stat(src).st_mtime_ns) for src, _ in kept}
    if current != recorded:
        raise RuntimeError(f"{snap.source_path} changed or was deleted after the save, and no staged copy is left")
    return replace(sources, files=kept)
