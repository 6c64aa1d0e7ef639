"""Versioned schema migrations: upgrade an existing metadata database in place.

STEPS[n - 2] upgrades schema version n - 1 to n (version 1 is the first released schema). Each step
runs in its own transaction together with the update of the version row, so a failed or killed
upgrade leaves the database at the last complete version. DDL goes through Alembic's operations API
(batch mode where SQLite cannot alter a table in place), imported only when a step has to run.

Several processes may open one database at once. Each check-and-upgrade transaction first takes
the database's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-level advisory lock)
and re-reads the version under it, so exactly one process runs each step and the others see it done.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Callable, ContextManager, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..config import redact_url
from ..errors import AutologError
from . import schema as s
from .version import SCHEMA_VERSION, newer_schema_error

if TYPE_CHECKING:
    from alembic.operations import Operations

# pg_advisory_xact_lock key: any constant bigint, the same in every autolog ("autolog" in ASCII).
PG_LOCK_KEY = 0x6175746F6C6F67


def _v2_snapshot_stored_at(op: "Operations") -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("stored_at", s.Time, nullable=True))
    op.create_index("ix_models_source_path", "models", ["source_path"], postgresql_using="hash")


def _v3_reporting(op: "Operations") -> None:
    """Logger's tables, the task's configuration objects and label enumeration, and the task list's indexes."""
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("configuration", sa.JSON, nullable=True))
        batch.add_column(sa.Column("labels", sa.JSON, nullable=True))
    bind = op.get_bind()
    for table in (s.scalars, s.single_values, s.reports):
        table.create(bind)  # with its indexes
    sqlite = s.SQLITE_TASK_INDEXES if bind.dialect.name == "sqlite" else ()
    for index in (*s.UI_TASK_INDEXES, *sqlite):  # `autolog ui`'s task list: an index per sort, one of tags
        index.create(bind)


def _v4_content_digest(op: "Operations") -> None:
    """Snapshots identified by a self-describing digest (BLAKE3 from now on). Rows written before keep
    their sha256 and get the same value as a digest ("sha256:<hex>"), so loads of old files still find
    their snapshot; the stat cache starts over (it is only a cache)."""
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("digest", sa.String(80), nullable=True))
        batch.drop_index("ix_snapshots_sha256")
        batch.create_index("ix_snapshots_digest", ["digest"])
    with op.batch_alter_table("model_loads") as batch:
        batch.add_column(sa.Column("digest", sa.String(80), nullable=True))
    for table in ("snapshots", "model_loads"):
        t = sa.table(table, sa.column("sha256", sa.String), sa.column("digest", sa.String))
        op.execute(t.update().where(t.c.sha256.is_not(None)).values(digest=sa.literal("sha256:") + t.c.sha256))
    op.drop_table("file_hashes")
    s.file_hashes.create(op.get_bind())


STEPS: list[Callable[["Operations"], None]] = [_v2_snapshot_stored_at, _v3_reporting, _v4_content_digest]
assert len(STEPS) == SCHEMA_VERSION - 1, "every schema version after 1 needs its step in STEPS"


def read_version(conn: Connection) -> int | None:
    """The recorded schema version; None for a database autolog has not set up yet."""
    if not sa.inspect(conn).has_table(s.schema_info.name):
        return None
    return conn.execute(sa.select(s.schema_info.c.version)).scalar()


def migrate(url: str, connect: Callable[[], Connection], write: Callable[[], ContextManager[Connection]]) -> None:
    """Bring the database at url to SCHEMA_VERSION.

    connect() opens a read connection; write() is a transaction holding the database's write lock
    (BEGIN IMMEDIATE on SQLite; on PostgreSQL this module adds the advisory lock itself).
    """
    with connect() as conn:
        version = read_version(conn)
    if version == SCHEMA_VERSION:
        return  # the common case: one cheap read, no lock
    if version is not None and version > SCHEMA_VERSION:
        raise newer_schema_error(url, version)
    while True:
        with _locked(write) as conn:
            version = read_version(conn)  # again: another process may have upgraded meanwhile
            if version is not None and version > SCHEMA_VERSION:
                raise newer_schema_error(url, version)
            if version == SCHEMA_VERSION:
                return
            if version is None:
                _create(conn)
                return
            _run_step(url, conn, version)


@contextlib.contextmanager
def _locked(write: Callable[[], ContextManager[Connection]]) -> Iterator[Connection]:
    with write() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(PG_LOCK_KEY)))
        yield conn


def _create(conn: Connection) -> None:
    """A new database: the current schema at once, no steps."""
    s.metadata.create_all(conn)
    conn.execute(s.schema_info.delete())
    conn.execute(s.schema_info.insert().values(id=1, version=SCHEMA_VERSION))


def _run_step(url: str, conn: Connection, version: int) -> None:
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    target = version + 1
    try:
        STEPS[target - 2](Operations(MigrationContext.configure(conn)))
        conn.execute(s.schema_info.update().values(version=target))
    except sa.exc.SQLAlchemyError as exc:
        raise AutologError(
            f"Upgrading metadata database {redact_url(url)} from schema version {version} to {target} failed: "
            f"{getattr(exc, 'orig', None) or exc}. The database is left at version {version}; back it up, "
            "then retry, or report this with the error."
        ) from exc
