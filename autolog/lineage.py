"""Lineage by content: identify a loaded file by its sha256 and link it to the snapshot that produced it.

Hashing is skipped when the file looks exactly as when this host last hashed it: the stat cache
maps (device, inode, size, mtime_ns) to a sha256, in memory and in the database.
"""
from __future__ import annotations

import os
import threading

from .context import Context
from .db import LoadRecord, SnapshotRecord
from .storage import Content, Sources, collect_sources, sha256_file
from .storage.hashing import host_name, manifest_sha256

_memory: dict[tuple, str] = {}
_memory_lock = threading.Lock()
_HOST = host_name()


def _stat_key(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def file_sha256(ctx: Context, path: str) -> tuple[str, int]:
    """(sha256, size) of a file, hashing it only when the stat cache has no entry for it."""
    st = os.stat(path)
    key = _stat_key(st)
    sha = _memory.get(key)
    if sha is None:
        sha = ctx.store.cached_sha256(_HOST, st)
        if sha is None:
            sha = sha256_file(path)
            if _stat_key(os.stat(path)) == key:  # not rewritten while we read it
                ctx.store.remember_sha256(_HOST, st, sha)
        with _memory_lock:
            _memory[key] = sha
    return sha, st.st_size


def remember_content(ctx: Context, path: str, st: os.stat_result, sha256: str) -> None:
    """Record the hash of a file we already read (when storing it), so loading it later costs no hash."""
    if _stat_key(os.stat(path)) == _stat_key(st):
        ctx.store.remember_sha256(_HOST, st, sha256)
        with _memory_lock:
            _memory[_stat_key(st)] = sha256


def identify(ctx: Context, sources: Sources) -> Content:
    manifest = []
    for src, rel in sources.files:
        sha, size = file_sha256(ctx, src)
        manifest.append({"name": rel, "size": size, "sha256": sha})
    size = sum(e["size"] for e in manifest)
    if sources.single:
        return Content(sha256=manifest[0]["sha256"], size=size)
    return Content(sha256=manifest_sha256(manifest), size=size, manifest=manifest)


def record_load(ctx: Context, task_id: str, project: str, path: str, framework: str | None) -> SnapshotRecord:
    """Link task_id to the snapshot holding the content at path; an unknown file becomes an imported model."""
    sources = collect_sources(path)
    content = identify(ctx, sources)
    snapshot = ctx.store.producer_of(content.sha256)
    if snapshot is None:
        snapshot = import_content(ctx, project, os.path.abspath(path), sources, content, framework)
    ctx.store.link_load(task_id, snapshot, path=os.path.abspath(path), sha256=content.sha256, framework=framework)
    return snapshot


def import_content(
    ctx: Context, project: str, path: str, sources: Sources, content: Content, framework: str | None,
    name: str | None = None,
) -> SnapshotRecord:
    """A model no task saved: recorded by path and hash, nothing uploaded."""
    model = ctx.store.create_model(
        task_id=None, origin="imported", name=name or os.path.basename(path.rstrip(os.sep)), project=project,
        framework=framework, source_path=path,
    )
    location = path if not sources.entry else os.path.dirname(path)
    return ctx.store.add_snapshot(
        model.id, status="local", uri=location, entry=sources.entry, sha256=content.sha256, size=content.size,
        files=content.manifest, source_path=path,
    )


def loads_of_task(ctx: Context, task_id: str) -> list[LoadRecord]:
    return ctx.store.loads_by_task(task_id)
