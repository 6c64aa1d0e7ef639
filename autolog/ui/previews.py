"""What the task page shows of an artifact: an image, the first rows of a table, JSON, or text.

Only bytes checked against the recorded sha256 are read (downloads.artifact_local_path), and only for
artifacts up to PREVIEW_BYTES; a larger one, or a kind with no safe reading (a pickle is never
unpickled here), shows the preview text recorded when it was uploaded.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
from typing import Any

from ..context import Context
from ..db.records import ArtifactRecord
from .downloads import artifact_local_path

PREVIEW_BYTES = 16 << 20
TABLE_ROWS = 20
TEXT_CHARS = 100_000
_IMAGES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}
_TABLES = {".csv": ",", ".tsv": "\t", ".csv.gz": ",", ".tsv.gz": "\t"}
_TEXTS = {".txt", ".log", ".md", ".rst", ".yaml", ".yml", ".py", ".cfg", ".ini", ".toml", ".xml", ".sh"}


def preview(ctx: Context, record: ArtifactRecord) -> dict[str, Any]:
    """{"kind": "image"|"table"|"json"|"text"|"none", ...} (the shapes of the API's preview route)."""
    if record.kind == "url" or not record.sha256:
        return _recorded(record)
    extension = _extension(record.filename)
    if record.kind == "image" or (record.kind == "file" and extension in _IMAGES):
        return {"kind": "image", "url": f"/api/artifacts/{record.id}/download"}
    readable = record.kind in ("pandas", "json") or (record.kind == "file" and (extension in _TABLES or
                                                                               extension in _TEXTS or extension == ".json"))
    if not readable or (record.size or 0) > PREVIEW_BYTES:
        return _recorded(record)
    path = artifact_local_path(ctx, record)
    if record.kind == "pandas" or extension in _TABLES:
        return _table(path, _TABLES.get(extension, ","), gzipped=extension.endswith(".gz"))
    if record.kind == "json" or extension == ".json":
        return _json(path)
    return {"kind": "text", "text": _read_text(path)}


def _recorded(record: ArtifactRecord) -> dict[str, Any]:
    return {"kind": "text", "text": record.preview} if record.preview else {"kind": "none"}


def _extension(filename: str) -> str:
    name = filename.lower()
    for double in (".csv.gz", ".tsv.gz"):
        if name.endswith(double):
            return double
    return os.path.splitext(name)[1]


def _table(path: str, delimiter: str, gzipped: bool) -> dict[str, Any]:
    opener = gzip.open if gzipped else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as f:  # type: ignore[operator]
        reader = csv.reader(f, delimiter=delimiter)
        columns = next(reader, [])
        rows = [row for _, row in zip(range(TABLE_ROWS), reader)]
    return {"kind": "table", "columns": columns, "rows": rows}


def _json(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read(TEXT_CHARS + 1)
    if len(text) > TEXT_CHARS:
        return {"kind": "text", "text": text[:TEXT_CHARS] + "\n..."}
    try:
        return {"kind": "json", "text": json.dumps(json.loads(text), indent=2, ensure_ascii=False)}
    except ValueError:
        return {"kind": "text", "text": text}


def _read_text(path: str) -> str:
    with io.open(path, encoding="utf-8", errors="replace") as f:
        text = f.read(TEXT_CHARS + 1)
    return text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + "\n..."
