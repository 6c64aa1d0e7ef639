"""Dedupe: a snapshot whose bytes are already stored in the same output_uri points at that object."""
from __future__ import annotations

from typing import Callable

from ..config import redact_url
from ..context import Context
from ..storage.blobstore import BlobStore


def stored_copy_finder(
    ctx: Context, store: BlobStore, snapshot_id: str | None = None
) -> Callable[[str], tuple[str, str] | None]:
    """Dedupe: find a stored snapshot of the same content in the same output_uri (still present).

    The object is claimed (the pending snapshot row takes its uri) before it is checked, so that
    retention, which keeps objects any stored or pending row points at, cannot delete it meanwhile.
    """
    def find(digest: str) -> tuple[str, str] | None:
        existing = ctx.store.stored_copy(digest, redact_url(store.root))
        if existing is None or not existing.uri:
            return None
        if snapshot_id is not None:
            ctx.store.update_snapshot(snapshot_id, uri=existing.uri)
        if store.exists(existing.uri):
            return existing.uri, existing.entry
        if snapshot_id is not None:
            ctx.store.update_snapshot(snapshot_id, uri=None)
        return None

    return find
