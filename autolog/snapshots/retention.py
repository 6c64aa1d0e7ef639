"""Retention: keep the last N stored snapshots of a model and delete the objects nobody else uses.

Snapshots that share an object (deduplicated content) keep it until the last of them goes. A
deleted snapshot keeps its row (status `deleted`, with the reason), so lineage still names it.
"""
from __future__ import annotations

import logging

from ..config import redact_url
from ..context import Context
from ..db import SnapshotRecord
from ..storage.blobstore import BlobStore, normalize_uri

logger = logging.getLogger("autolog")


def prune(ctx: Context, model_id: str, keep_last: int, dry_run: bool = False) -> list[SnapshotRecord]:
    """Delete all but the newest keep_last stored snapshots of a model; returns those deleted."""
    if keep_last < 1:
        raise ValueError(f"keep_last must be at least 1, got {keep_last}.")
    root = _output_root(ctx, model_id)
    stored = [s for s in ctx.store.snapshots_of(model_id) if s.status == "stored" and _copied_into(root, s.uri)]
    victims = stored[:-keep_last]
    if dry_run:
        return victims
    for snap in victims:
        ctx.store.update_snapshot(snap.id, status="deleted", reason=f"retention: keep_last={keep_last}")
        if snap.uri and not ctx.store.snapshots_with_uri(snap.uri):
            BlobStore(_root_of(snap.uri)).delete(snap.uri)
        logger.debug("autolog: retention deleted snapshot %d of model %s (%s)", snap.seq, model_id[:8],
                     redact_url(snap.uri or ""))
    return victims


def _output_root(ctx: Context, model_id: str) -> str | None:
    task_id = ctx.store.get_model(model_id).task_id
    output_uri = ctx.store.get_task(task_id).output_uri if task_id else None
    return redact_url(normalize_uri(output_uri)).rstrip("/") + "/" if output_uri else None


def _copied_into(root: str | None, uri: str | None) -> bool:
    """Whether autolog copied this snapshot into the task's output_uri (under <project>/<task>/models/).
    Retention deletes only such copies: an object registered with update_weights(register_uri=) is the
    user's, wherever it is (a `models` folder right under the output_uri included), and is never a
    retention candidate."""
    return bool(root and uri and uri.startswith(root) and "/models/" in uri[len(root):])


def _root_of(uri: str) -> str:
    """The model folder above the snapshot (<...>/models), so deleting also clears emptied folders."""
    return uri.rpartition("/models/")[0] + "/models"
