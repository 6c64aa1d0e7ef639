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
from urllib.parse import unquote

from ..config import redact_url
from ..errors import AutologError, SchemaVersionError

SCHEMA_VERSION = 2  # one more than the steps in migrations.py
SCHEMA_TABLE = "autolog_schema"
_URL_START = re.compile(r"([\w+]+)://")  # as in SQLAlchemy's make_url


def newer_schema_error(url: str, version: int) -> SchemaVersionError:
    return SchemaVersionError(
        f"Metadata database {redact_url(url)} has schema version {version}, but this autolog knows only up "
        f"to {SCHEMA_VERSION}. Upgrade autolog (pip install -U autolog)."
    )


def unreadable_error(url: str, detail: object) -> AutologError:
    advice = (
        "If it is a corrupted SQLite file, move it aside and start a new one."
        if url.startswith("sqlite") else "Check that the server is up and reachable, and the URL's user and database."
    )
    return AutologError(f"Cannot open metadata database {redact_url(url)}: {detail}. {advice}")


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
    """Raise the errors the store would raise for a malformed URL or an existing SQLite file."""
    check_url_form(url)
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
