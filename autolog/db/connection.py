"""Database: the one lazily created SQLAlchemy engine behind MetadataStore, and its connections.

SQLite is opened in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE`` so that concurrent writers wait for each other instead of failing with
"database is locked" when a read lock cannot be upgraded.

Every value written or compared is valid UTF-8: a str holding bytes of a file name that are not
UTF-8 (lone surrogates) is escaped by storage.layout.display_path on its way to the driver, JSON
documents included, so such a name is recorded, and a lookup by the real path finds it.

Errors that mean the SQLite file is damaged become one line (DatabaseCorruptError) at the
connection boundary (read(), write(), opening); a lock held by another process says so.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import weakref
from typing import Any, ContextManager, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..forking import on_fork
from ..storage.layout import display_path, has_undecodable
from . import schema
from .migrations import migrate
from .version import bad_url_error, corrupt_error, locked_error, sqlite_failure, sqlite_path, unreadable_error

_open_databases: "weakref.WeakSet[Database]" = weakref.WeakSet()
# How long checkpoint() waits for other connections' transactions: it runs at close, where a busy
# database must not hold the user up (the WAL is then checkpointed by a later close, or by SQLite).
CHECKPOINT_BUSY_MS = 1000
BUSY_TIMEOUT_MS = 60000
_JSON_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb")


class _RolledBack(Exception):
    """Ends a rehearsal's transaction (rolled back by the exception)."""


class Database:
    """The engine of one database URL (made, and the schema migrated, on first use) and the
    connections every query goes through: read(), write(), transaction()."""

    def __init__(self, url: str):
        self.url = url
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._immediate = threading.local()
        self._sqlite = url.startswith("sqlite")  # whose transactions a fork waits for (_ForkGate)
        _open_databases.add(self)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> Engine:
        try:
            url = sa.engine.make_url(self.url)
            is_sqlite = url.get_backend_name() == "sqlite"
            extra = {"json_serializer": _json_dumps} if url.get_backend_name() in _JSON_DIALECTS else {}
            engine = sa.create_engine(url, pool_pre_ping=not is_sqlite, connect_args=_connect_args(url), **extra)
        except (ImportError, ValueError, sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            # ValueError: make_url's own for a malformed port ("postgresql://:::")
            raise bad_url_error(self.url, exc) from None
        if is_sqlite and url.database and url.database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(url.database)), exist_ok=True)
        sa.event.listen(engine, "before_cursor_execute", _escape_parameters, retval=True)
        if is_sqlite:
            self._configure_sqlite(engine)
        elif url.get_backend_name() == "postgresql":
            schema.use_postgresql_options()
        try:
            self._migrate(engine)
        except (sa.exc.DatabaseError, sa.exc.InterfaceError) as exc:  # OperationalError: "database is locked"
            engine.dispose()
            raise unreadable_error(self.url, exc.orig, unreachable=not is_sqlite and _unreachable(exc)) from None
        except BaseException:
            engine.dispose()
            raise
        return engine

    def _configure_sqlite(self, engine: Engine) -> None:
        immediate = self._immediate

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
            cur = dbapi_conn.cursor()
            _enter_wal(cur)
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE" if getattr(immediate, "on", False) else "BEGIN")

    def _migrate(self, engine: Engine) -> None:
        @contextlib.contextmanager
        def write() -> Iterator[Connection]:
            self._immediate.on = True
            try:
                with engine.begin() as conn:
                    yield conn
            finally:
                self._immediate.on = False

        migrate(self.url, engine.connect, write)

    def reset_after_fork(self) -> None:
        """Forked children must not share the parent's connections (SQLAlchemy's documented recipe)."""
        if self._engine is not None:
            self._engine.dispose(close=False)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        joined = getattr(self._immediate, "conn", None)
        if joined is not None:  # inside transaction(): this write is part of it
            yield joined
            return
        self._immediate.on = True
        try:
            with self._fork_gate(), self._clear_errors(), self.engine.begin() as conn:
                yield conn
        finally:
            self._immediate.on = False

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """The writes this thread makes inside the block share one transaction: all or none commit.
        A transaction costs far more than a row (begin, lock, commit): the snapshot recorder's round
        writes new saves' rows and earlier saves' outcomes together."""
        with self.write() as conn:
            self._immediate.conn = conn
            try:
                yield
            finally:
                self._immediate.conn = None

    @contextlib.contextmanager
    def rehearsal(self) -> Iterator[None]:
        """A transaction() that is always rolled back: the writes and reads made inside run for real, and
        leave nothing. Each statement's first run compiles it in SQLAlchemy (several ms on a slow
        machine), so running a run's statements once early spares their first real use that cost."""
        try:
            with self.transaction():
                yield
                raise _RolledBack
        except _RolledBack:
            pass

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        joined = getattr(self._immediate, "conn", None)
        if joined is not None:  # inside transaction(): read what it wrote. (On SQLite a new connection
            yield joined  # opened here waits for the write lock this thread holds, till the busy timeout.)
            return
        with self._fork_gate(), self._clear_errors(), self.engine.connect() as conn:
            yield conn

    def _fork_gate(self) -> ContextManager[None]:
        return _fork_gate.passage() if self._sqlite else contextlib.nullcontext()

    @contextlib.contextmanager
    def _clear_errors(self) -> Iterator[None]:
        """SQLite errors that say what is wrong with the file, in one line instead of SQLAlchemy's
        statement-and-parameters report.

        A damaged file raises DatabaseCorruptError (retrying cannot help). A lock another process still
        holds after the busy timeout stays an OperationalError (the pipeline's workers retry those while
        the database is unreachable), its message reduced to one line saying the database is locked.
        """
        try:
            yield
        except sa.exc.DBAPIError as exc:
            path = sqlite_path(self.url)
            kind = sqlite_failure(exc.orig) if path is not None else None
            if kind == "corrupt":
                raise corrupt_error(path, exc.orig) from None
            if kind == "locked":
                raise _one_line_operational_error(str(locked_error(path)), exc) from None
            raise

    def checkpoint(self, passive: bool = False) -> bool:
        """Copy SQLite's write-ahead log into the database file and empty it (wal_checkpoint(TRUNCATE)),
        so the .db file alone holds every row (a copy of it is a complete backup). For a run's close.

        Waits at most ~CHECKPOINT_BUSY_MS for other connections; never raises for a busy or locked
        database (returns False: the log is checkpointed later, by SQLite or the next close). True
        when the log was emptied; a no-op (True) for other databases and before the store was used.
        passive: copy what it can without waiting for, or holding up, anyone (wal_checkpoint(PASSIVE)):
        a head start that leaves less for a later checkpoint to copy. It never empties the log, so
        True then only says that it was not blocked.
        """
        path = sqlite_path(self.url)
        if self._engine is None or self._engine.dialect.name != "sqlite" or path is None:
            return True
        try:
            with self._engine.connect() as conn:
                cursor = conn.connection.dbapi_connection.cursor()  # autocommit: outside any transaction
                try:
                    cursor.execute(f"PRAGMA busy_timeout={CHECKPOINT_BUSY_MS}")
                    mode = "PASSIVE" if passive else "TRUNCATE"
                    busy, _log, _done = cursor.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
                finally:
                    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                    cursor.close()
        except (sa.exc.DBAPIError, sqlite3.DatabaseError) as exc:
            detail = getattr(exc, "orig", None) or exc
            kind = sqlite_failure(detail)
            if kind == "locked":
                return False
            if kind == "corrupt":
                raise corrupt_error(path, detail) from None
            raise
        return busy == 0


def _json_dumps(value: Any) -> str:
    """JSON documents as the rows hold them: strings with undecodable bytes escaped (display_path)."""
    text = json.dumps(value)
    # json.dumps writes every surrogate as a \udXXX escape: without one, no string needed escaping, and
    # the recorder's thousands of documents skip the walk through each (an emoji's pair takes it too).
    return text if "\\ud" not in text else json.dumps(_escaped(value))


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return display_path(value) if has_undecodable(value) else value
    if isinstance(value, dict):
        return {_escaped(k): _escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escaped(v) for v in value]
    return value


def _escape_parameters(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
    """before_cursor_execute: a str parameter with lone surrogates (a file name that is not UTF-8) cannot
    be encoded for the driver; write it (and compare with it) as display_path text instead."""
    if executemany:
        if _needs_escape(parameters):
            parameters = [_escape_one(p) for p in parameters]
    elif _needs_escape((parameters,)):
        parameters = _escape_one(parameters)
    return statement, parameters


def _needs_escape(many: Any) -> bool:
    """Whether a str among these parameter sets holds undecodable bytes. Tested on their strings joined
    (joining makes no surrogate): one C-level scan per batch, where the recorder's batches hold
    thousands of values, nearly always ASCII."""
    strings = [v for parameters in many
               for v in (parameters.values() if isinstance(parameters, dict) else parameters or ())
               if isinstance(v, str)]
    return has_undecodable("".join(strings))


def _escape_one(parameters: Any) -> Any:
    fix = lambda v: display_path(v) if isinstance(v, str) and has_undecodable(v) else v  # noqa: E731
    if isinstance(parameters, dict):
        return {k: fix(v) for k, v in parameters.items()}
    fixed = [fix(v) for v in parameters]
    return tuple(fixed) if isinstance(parameters, tuple) else fixed


def _one_line_operational_error(message: str, original: sa.exc.DBAPIError) -> sa.exc.OperationalError:
    """An OperationalError (so callers that retry those still do) whose str() is just message."""
    error = sa.exc.OperationalError(None, None, type(original.orig)(message), connection_invalidated=False)
    error.code = None  # no "Background on this error at ..." line
    return error


def _enter_wal(cur: sqlite3.Cursor) -> None:
    """Switch to WAL, waiting up to BUSY_TIMEOUT_MS for the lock it needs. While another connection holds
    a write lock on a file still in rollback-journal mode (a brand-new database that another opener
    is creating) SQLite refuses the switch at once, without the busy handler, to avoid a deadlock."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.001
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if sqlite_failure(exc) != "locked" or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _connect_args(url: sa.engine.URL) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        # Worker threads share the engine; the pool hands each thread its own connection.
        return {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
    if url.get_backend_name() == "postgresql" and url.get_driver_name().startswith("psycopg"):
        # libpq waits for an unreachable server as long as the OS does (minutes): bound connecting and
        # unacknowledged sends, so a black-holed database cannot hang a save. URL parameters win.
        defaults = {"connect_timeout": 10, "tcp_user_timeout": 30_000}
        return {k: v for k, v in defaults.items() if k not in url.query}
    return {}


# libpq's and the server's words for a login that fails the same way on every try (a failed connection
# carries no SQLSTATE in psycopg, only the message).
_REFUSED_LOGIN = ("authentication failed", "no pg_hba.conf entry", "does not exist", "no password supplied",
                  "permission denied")


def _unreachable(exc: sa.exc.DBAPIError) -> bool:
    """The server refused, dropped or timed out the connection, or is starting or shutting down: worth
    retrying. A refused login or a missing database is not: every retry would fail the same way."""
    if not isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)  # psycopg 3 / psycopg2
    if sqlstate:
        return sqlstate.startswith(("08", "57P"))  # connection exception; server starting or shutting down
    return not any(words in str(exc.orig) for words in _REFUSED_LOGIN)


class _ForkGate:
    """No SQLite connection is in a transaction when the process forks. SQLite keeps a process's locks
    in memory that its connections share: a child forked while a parent's thread held a write lock
    inherits it as held by itself, for good, and each write of its own then fails "locked" after
    the busy timeout. A fork waits (FORK_WAIT_S at most: a write takes milliseconds unless another
    process's lock holds it up; DataLoader workers fork at each epoch) for the transactions under way,
    other than the forking thread's own, and holds new ones back until it is done. PostgreSQL's
    connections share nothing in the process: the child's new ones are its own."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._closed = False
        self._mine = threading.local()

    @contextlib.contextmanager
    def passage(self) -> Iterator[None]:
        with self._cond:
            while self._closed and not getattr(self._mine, "depth", 0):  # a thread's nested one goes on
                self._cond.wait()
            self._active += 1
        self._mine.depth = getattr(self._mine, "depth", 0) + 1
        try:
            yield
        finally:
            self._mine.depth -= 1
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def close(self) -> None:
        mine = getattr(self._mine, "depth", 0)
        with self._cond:
            self._closed = True
            self._cond.wait_for(lambda: self._active <= mine, timeout=FORK_WAIT_S)

    def reopen(self) -> None:
        with self._cond:
            self._closed = False
            self._cond.notify_all()


FORK_WAIT_S = 2.0
_fork_gate = _ForkGate()


def _new_gate_in_child() -> None:
    global _fork_gate
    _fork_gate = _ForkGate()  # the parent's threads in passage did not come along


on_fork("db.transactions", before=lambda: _fork_gate.close(), after_in_parent=lambda: _fork_gate.reopen(),
        after_in_child=_new_gate_in_child)


def _reset_all_after_fork() -> None:
    for database in list(_open_databases):
        database.reset_after_fork()


on_fork("db.engines", after_in_child=_reset_all_after_fork)
