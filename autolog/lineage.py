"""Lineage by content: link a load to the snapshot that produced the loaded bytes, from any task."""
from __future__ import annotations

import os

from .context import Context
from .db import SnapshotRecord
from .storage import Content, Sources


def record_load(
    ctx: Context, task_id: str, project: str, path: str, framework: str | None, sources: Sources, content: Content
) -> SnapshotRecord:
    """Link task_id to the snapshot holding the loaded content; an unknown file becomes an imported model."""
    snapshot = ctx.store.producer_of(content.sha256, path)
    if snapshot is None:
        snapshot = import_content(ctx, project, path, sources, content, framework)
    ctx.store.link_load(task_id, snapshot, path=path, sha256=content.sha256, framework=framework)
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
