"""The schema version, and a quick check of an embedded database that needs no SQLAlchemy.

Task.init opens the database in a background thread (importing SQLAlchemy costs ~0.1 s); for the
embedded SQLite store this check runs first, in ~1 ms with the standard library, so a corrupted
file or one written by a newer autolog still fails Task.init at once with a clear message.
"""
from __future__ import annotations

import os
from urllib.parse import unquote

from ..config import redact_url
from ..errors import AutologError, SchemaVersionError

SCHEMA_VERSION = 1
SCHEMA_TABLE = "autolog_schema"


def newer_schema_error(url: str, version: int) -> SchemaVersionError:
    return SchemaVersionError(
        f"Metadata database {redact_url(url)} has schema version {version}, but this autolog knows only up "
        f"to {SCHEMA_VERSION}. Upgrade autolog (pip install -U autolog)."
    )


def unreadable_error(url: str, detail: object) -> AutologError:
    return AutologError(
        f"Cannot open metadata database {redact_url(url)}: {detail}. "
        "If it is a corrupted SQLite file, move it aside and start a new one."
    )


def check_sqlite_file(url: str) -> None:
    """Raise the errors the store would raise, for an existing SQLite file; other URLs pass."""
    if not url.startswith("sqlite:///"):
        return
    path = unquote(url[len("sqlite:///"):].split("?", 1)[0])
    if not path or path == ":memory:" or not os.path.isfile(path):
        return
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            has_table = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (SCHEMA_TABLE,)
            ).fetchone()
            version = conn.execute(f"SELECT version FROM {SCHEMA_TABLE}").fetchone() if has_table else None
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise unreadable_error(url, exc) from None
    if version is not None and version[0] > SCHEMA_VERSION:
        raise newer_schema_error(url, version[0])
