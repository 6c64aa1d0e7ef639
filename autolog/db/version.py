"""The schema version, and a quick check of an embedded database that needs no SQLAlchemy.

Task.init opens the database in a background thread (importing SQLAlchemy costs ~0.1 s); for the
embedded SQLite store this check runs first, in ~1 ms with the standard library, so a malformed
URL, a corrupted file or one written by a newer autolog still fails Task.init at once with a clear
message. (An older schema passes: the store upgrades it, see migrations.py.)
"""
from __future__ import annotations

import importlib.util
import os
import re
import shlex
from urllib.parse import quote, unquote

from ..config import redact_url
from ..errors import (AutologError, DatabaseCorruptError, DatabaseLockedError, DatabaseUnreachableError,
                      SchemaVersionError)

SCHEMA_VERSION = 4  # one more than the steps in migrations.py
SCHEMA_TABLE = "autolog_schema"
_URL_START = re.compile(r"([\w+]+)://")  # as in SQLAlchemy's make_url
# How long the pre-start check waits for a lock before calling the database locked: a reader is only
# ever blocked by another process's exclusive lock (WAL lets readers and writers overlap), which a
# longer wait would rarely outlast, and Task.init runs on the training thread.
PREFLIGHT_TIMEOUT_S = 3.0

# SQLite's messages (sqlite3_errstr) for a file that is damaged, and for one another connection locks.
_CORRUPT_MESSAGES = ("database disk image is malformed", "file is not a database", "malformed database schema")
_LOCKED_MESSAGES = ("database is locked", "database table is locked", "database schema is locked")


def newer_schema_error(url: str, version: int) -> SchemaVersionError:
    return SchemaVersionError(
        f"Metadata database {redact_url(url)} has schema version {version}, but this autolog knows only up "
        f"to {SCHEMA_VERSION}. Upgrade autolog (pip install -U autolog)."
    )


def unreadable_error(url: str, detail: object, unreachable: bool = False) -> AutologError:
    """The database cannot be opened. For SQLite, a damaged file and a locked one get their own errors
    (corrupt_error, locked_error): only the first may be moved aside. A server that cannot be reached
    (unreachable) gets DatabaseUnreachableError, which callers retry while it lasts."""
    if url.startswith("sqlite"):
        kind = sqlite_failure(detail)
        path = sqlite_path(url) or redact_url(url)
        if kind == "corrupt":
            return corrupt_error(path, detail)
        if kind == "locked":
            return locked_error(path)
        advice = "Check that the file and its folder are readable and writable by this user."
    else:
        advice = "Check that the server is up and reachable, and the URL's user and database."
        if unreachable:
            return DatabaseUnreachableError(f"Cannot reach metadata database {redact_url(url)}: {detail}. {advice}")
    return AutologError(f"Cannot open metadata database {redact_url(url)}: {detail}. {advice}")


def sqlite_failure(detail: object) -> str | None:
    """"corrupt", "locked" or None: what an SQLite error (or its message) says about the file."""
    message = str(detail).lower()
    if any(m in message for m in _CORRUPT_MESSAGES):
        return "corrupt"
    if any(m in message for m in _LOCKED_MESSAGES):
        return "locked"
    return None


def corrupt_error(path: str, detail: object) -> DatabaseCorruptError:
    """One line: what is wrong and what to do (no SQL, no parameters)."""
    reason = str(detail).splitlines()[0] if str(detail) else "damaged"
    quoted, aside = shlex.quote(path), shlex.quote(path + ".corrupt")
    return DatabaseCorruptError(
        f"Metadata database {path} is corrupted ({reason}): move it aside (mv {quoted} {aside}) and start a new "
        f"one; run `sqlite3 {quoted} .recover` to salvage rows."
    )


def locked_error(path: str) -> DatabaseLockedError:
    return DatabaseLockedError(
        f"Metadata database {path} is locked by another process (one holding an exclusive lock, e.g. "
        f"PRAGMA locking_mode=EXCLUSIVE, or a long transaction): find it with `fuser {shlex.quote(path)}` (or "
        "`lsof`) and close or finish it, then retry. The database itself is fine: do not move it aside."
    )


def sqlite_path(url: str) -> str | None:
    """The file of an embedded SQLite URL (sqlite:///relative, sqlite:////absolute); None for memory."""
    if not url.startswith("sqlite:///"):
        return None
    path = unquote(url[len("sqlite:///"):].split("?", 1)[0])
    return path if path and path != ":memory:" else None


def bad_url_error(url: str, detail: object) -> AutologError:
    return AutologError(
        f"Cannot open metadata database {redact_url(url)}: {detail}. Check AUTOLOG_DB_URL / [db] url (a "
        "SQLAlchemy URL such as sqlite:////path/autolog.db or postgresql+psycopg://user@host/db), and install "
        "the driver (pip install 'autolog[postgres]')."
    )


def check_url_form(url: str) -> None:
    """What SQLAlchemy would reject: no "dialect://", an unknown dialect, a port that is not a number."""
    start = _URL_START.match(url)
    if not start:
        raise bad_url_error(url, "not a database URL (no 'dialect://')")
    if not _known_dialect(start.group(1)):
        raise bad_url_error(url, f"SQLAlchemy knows no database type {start.group(1).split('+')[0]!r}")
    hostport = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
    if hostport.startswith("["):  # [ipv6]:port
        hostport = hostport.rpartition("]")[2]
    port = hostport.partition(":")[2]
    if port and not (port.isascii() and port.isdigit()):
        raise bad_url_error(url, f"the port {port!r} is not a number")


def _known_dialect(name: str) -> bool:
    """Whether SQLAlchemy has this dialect, judged without importing SQLAlchemy (which costs ~0.1 s)."""
    dialect = name.split("+", 1)[0]
    spec = importlib.util.find_spec("sqlalchemy")
    for root in (spec.submodule_search_locations or []) if spec else []:
        if os.path.isdir(os.path.join(root, "dialects", dialect)):
            return True
    if dialect == "mariadb":  # SQLAlchemy's alias of its mysql package
        return True
    from importlib.metadata import entry_points  # third-party dialects only: slower

    names = {e.name for e in entry_points(group="sqlalchemy.dialects")}
    return dialect in names or name.replace("+", ".") in names


def preflight_check(url: str) -> None:
    """Raise the errors the store would raise for a malformed URL or an existing SQLite file, within
    about PREFLIGHT_TIMEOUT_S: DatabaseLockedError when another process locks it, DatabaseCorruptError
    when the file is damaged, SchemaVersionError when a newer autolog wrote it."""
    check_url_form(url)
    path = sqlite_path(url)
    if path is None or not os.path.isfile(path):
        return
    import sqlite3

    try:
        # Bounded: a lock that keeps readers out is reported in seconds, not after the store's 60 s.
        uri = f"file:{quote(os.fsencode(os.path.abspath(path)))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=PREFLIGHT_TIMEOUT_S)
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
