"""Lineage by content: link a load to the snapshot that produced the loaded bytes, from any task."""
from __future__ import annotations

import os

from .context import Context
from .db import SnapshotRecord
from .storage import Content, Sources
from .storage.hashing import SHA256
from .storage.layout import display_path, folders_above
from .snapshots.in_place import path_only_location
from .storage.objects import hash_sources


def record_load(
    ctx: Context, task_id: str, project: str, path: str, framework: str | None, sources: Sources, content: Content,
    beside: tuple[str, ...] = (),
) -> SnapshotRecord:
    """Link task_id to the snapshot holding the loaded content; an unknown file becomes an imported model.
    beside: globs of files a folder may have gained since its save (binding.spec.Patch.beside)."""
    # Every way a save can be the producer comes before an import of the same bytes: an import recorded
    # first (a copy of the file loaded earlier) is not where a file a task saved came from.
    resolved = _resolved(path)
    snapshot = ctx.store.producer_of(content.digest, path, resolved, imported=False)
    if snapshot is None and beside and content.manifest:
        snapshot = ctx.store.producer_within(content.manifest, path, resolved, beside)
    if snapshot is None and not content.manifest:  # one file of a folder a task saved whole
        snapshot = ctx.store.producer_around(content.digest, _folders_around(path, resolved))
    if snapshot is None:
        snapshot = ctx.store.imported_of(content.digest)
    if snapshot is None and ctx.store.holds_sha256_identities():  # after the import: hashed again only once
        snapshot = _producer_by_sha256(ctx, path, resolved, sources)
    if snapshot is None:
        snapshot = import_content(ctx, project, path, sources, content, framework)
    ctx.store.link_load(task_id, snapshot, path=path, digest=content.digest, framework=framework)
    return snapshot


def _resolved(path: str) -> str | None:
    """The file a local load's path leads to (through symlinks); None for a URL."""
    return None if "://" in path else os.path.realpath(path)


def _producer_by_sha256(ctx: Context, path: str, resolved: str | None, sources: Sources) -> SnapshotRecord | None:
    """A snapshot recorded before schema 4 is known by its sha256 only: a load that matches no digest in
    a store holding such rows hashes the file once more with sha256 (in the background, like the first)."""
    try:
        legacy = hash_sources(sources, SHA256)
    except OSError:  # gone or changed since the first hash: no older producer can be told
        return None
    return ctx.store.producer_of(legacy.digest, path, resolved)


def _folders_around(path: str, resolved: str | None) -> dict[str, set[str]]:
    """Each folder a loaded file is in (by path, and by the file it leads to) -> its names inside that
    folder, as display_path text (how rows hold paths and manifests)."""
    around: dict[str, set[str]] = {}
    if "://" in path:
        return around
    for name in dict.fromkeys(p for p in (path, resolved) if p is not None):
        for folder in folders_above(name):
            inside = os.path.relpath(name, folder).replace(os.sep, "/")
            around.setdefault(display_path(folder), set()).add(display_path(inside))
    return around


def import_content(
    ctx: Context, project: str, path: str, sources: Sources, content: Content, framework: str | None,
    name: str | None = None,
) -> SnapshotRecord:
    """A model no task saved: recorded by path and hash, nothing uploaded."""
    model = ctx.store.create_model(
        task_id=None, origin="imported", name=name or os.path.basename(path.rstrip(os.sep)), project=project,
        framework=framework, source_path=path,
    )
    location = path_only_location(path, sources)
    return ctx.store.add_snapshot(
        model.id, status="local", uri=location, entry=sources.entry, digest=content.digest, size=content.size,
        files=content.manifest, source_path=path,
    )
