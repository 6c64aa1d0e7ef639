"""Snapshots recorded in place (output_uri None or False): no copy, the row names the user's files.

One rule for where such a row points, used by what writes it (the pipeline, lineage's imports) and by
what reads it (the SDK's get_local_copy and sha256, `autolog ui` downloads).
"""
from __future__ import annotations

import os

from ..db import SnapshotRecord
from ..storage.layout import real_path
from ..storage.sources import Sources, collect_sources


def path_only_location(path: str, sources: Sources) -> str:
    """The uri of a snapshot recorded in place: the path itself, or for a checkpoint prefix the folder
    holding it (its entry names the prefix)."""
    return os.path.dirname(path) if sources.entry else path


def local_location(snap: SnapshotRecord) -> str:
    """The path a row written by path_only_location names (display text: real_path turns it back into
    the path on disk). Rows before 2026-11-29 held a checkpoint prefix itself as their uri."""
    if not snap.entry:
        return snap.uri
    if os.path.basename(snap.uri.rstrip(os.sep)) == snap.entry and not os.path.isdir(snap.uri):
        return snap.uri
    return os.path.join(snap.uri, snap.entry)


def recorded_sources(snap: SnapshotRecord, path: str) -> Sources:
    """The files the snapshot was made of: exactly those, so other files beside them don't count."""
    recorded = [real_path(entry[0]) for entry in (snap.source_stat or {}).get("files", [])]
    if not snap.files or len(recorded) != len(snap.files):
        return collect_sources(path)
    return Sources(files=tuple(zip(recorded, (e["name"] for e in snap.files))), name="", entry=snap.entry)
