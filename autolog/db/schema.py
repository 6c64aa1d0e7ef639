"""Every table autolog keeps, in SQLAlchemy Core; the same schema runs on SQLite and PostgreSQL.

Times are UNIX seconds (double precision): portable, sortable, and exact enough to order
snapshots saved in the same second. ids are 32-hex-digit uuids.
"""
from __future__ import annotations

import sqlalchemy as sa

from .version import SCHEMA_TABLE, SCHEMA_VERSION  # noqa: F401 - re-exported for tests

metadata = sa.MetaData()

ID = sa.String(32)
Time = sa.Double

schema_info = sa.Table(
    SCHEMA_TABLE,
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project", sa.String(255), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("task_type", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # running | completed | failed
    sa.Column("status_message", sa.Text),  # why it failed
    sa.Column("output_uri", sa.Text),  # redacted; NULL = record paths only
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("created", Time, nullable=False),
    sa.Column("ended", Time),
    sa.Column("run_info", sa.JSON, nullable=False),  # argv, script, cwd, git, python, host, packages
    sa.Column("parameters", sa.JSON, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Index("ix_tasks_project_name_created", "project", "name", "created"),
    sa.Index("ix_tasks_created", "created"),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("task_id", ID, sa.ForeignKey("tasks.id")),  # NULL for imported models
    sa.Column("origin", sa.String(16), nullable=False),  # capture | api | imported
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("project", sa.String(255), nullable=False),
    sa.Column("framework", sa.String(64)),
    sa.Column("source_path", sa.Text),  # where the user saved it (capture) or imported it from
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("created", Time, nullable=False),
    sa.Column("updated", Time, nullable=False),  # time of the last snapshot
    sa.Index("ix_models_task_updated", "task_id", "updated"),
    sa.Index("ix_models_project_name", "project", "name"),
    # Lineage (producer_of) looks loads up by path; hash, because a btree on PostgreSQL refuses
    # entries over ~2.7 kB and paths may be longer.
    sa.Index("ix_models_source_path", "source_path", postgresql_using="hash"),
)

snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("model_id", ID, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("iteration", sa.Integer),
    # pending | stored (copied to output_uri) | local (path + hash only) | failed | skipped | deleted
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("uri", sa.Text),  # redacted URI of the stored object (or local path for "local")
    sa.Column("entry", sa.Text, nullable=False),  # what to open inside uri: "" = uri itself
    sa.Column("sha256", sa.String(64)),
    sa.Column("size", sa.BigInteger),
    sa.Column("files", sa.JSON, nullable=False),  # [{"name", "size", "sha256"}] for multi-file snapshots
    sa.Column("source_path", sa.Text),
    sa.Column("source_stat", sa.JSON),  # journal: what the file looked like when saved
    sa.Column("stage_uri", sa.Text),  # journal: the staged local copy, until it is uploaded
    sa.Column("created", Time, nullable=False),
    sa.Column("stored_at", Time),  # when the object reached its final key (schema 2; NULL until then)
    sa.UniqueConstraint("model_id", "seq", name="uq_snapshots_model_seq"),
    sa.Index("ix_snapshots_sha256", "sha256"),
    sa.Index("ix_snapshots_status", "status"),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("task_id", ID, sa.ForeignKey("tasks.id"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # file | folder | numpy | pandas | image | json | pickle | url
    sa.Column("uri", sa.Text, nullable=False),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64)),
    sa.Column("size", sa.BigInteger),
    sa.Column("preview", sa.Text, nullable=False),
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("created", Time, nullable=False),
    sa.UniqueConstraint("task_id", "name", name="uq_artifacts_task_name"),
)

model_loads = sa.Table(
    "model_loads",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("task_id", ID, sa.ForeignKey("tasks.id"), nullable=False),
    sa.Column("model_id", ID, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("snapshot_id", ID, sa.ForeignKey("snapshots.id"), nullable=False),
    sa.Column("path", sa.Text),
    sa.Column("sha256", sa.String(64)),
    sa.Column("framework", sa.String(64)),
    sa.Column("created", Time, nullable=False),
    sa.UniqueConstraint("task_id", "model_id", "snapshot_id", name="uq_model_loads_link"),
    sa.Index("ix_model_loads_task", "task_id", "created"),
    sa.Index("ix_model_loads_model", "model_id"),
)

# The stat cache: a file this host has hashed is not hashed again while it looks the same.
file_hashes = sa.Table(
    "file_hashes",
    metadata,
    sa.Column("host", sa.String(255), primary_key=True),
    sa.Column("device", sa.BigInteger, primary_key=True),
    sa.Column("inode", sa.BigInteger, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("ctime_ns", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
)
