"""Every table autolog keeps, in SQLAlchemy Core; the same schema runs on SQLite and PostgreSQL.

Times are UNIX seconds (double precision): portable, sortable, and exact enough to order
snapshots saved in the same second. ids are 32-hex-digit uuids.
"""
from __future__ import annotations

import threading

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
    # schema 3: {name: {"type": "dictionary" | "text", "value": ..., "description": ...}}; NULL = none
    sa.Column("configuration", sa.JSON),
    sa.Column("labels", sa.JSON),  # schema 3: the task's label enumeration {label: int}; NULL = none
    sa.Index("ix_tasks_project_name_created", "project", "name", "created"),
    sa.Index("ix_tasks_created", "created"),
)

# A task's duration as `autolog ui` sorts by it: a running task (no end yet) as the longest. A literal,
# not a bound parameter: SQLite uses an index on an expression only for that very expression text.
DURATION = sa.func.coalesce(tasks.c.ended - tasks.c.created, sa.literal_column("1e308"))

# The task list of `autolog ui` (schema 3): each sort reads its index in order and stops after a page
# (ui/task_list.py). ix_tasks_tags is a narrow copy of the tags, which a tag filter scans instead of the
# wide rows (run_info holds every installed package); SQLite only: PostgreSQL's json has no btree order.
# Each ends with the id, which breaks ties: many tasks share a name, and a page must not sort them all.
UI_TASK_INDEXES = (
    sa.Index("ix_tasks_name", tasks.c.name, tasks.c.id),
    sa.Index("ix_tasks_status_created", tasks.c.status, tasks.c.created, tasks.c.id),
    sa.Index("ix_tasks_duration", DURATION, tasks.c.id),
)
SQLITE_TASK_INDEXES = (sa.Index("ix_tasks_tags", tasks.c.tags).ddl_if(dialect="sqlite"),)

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
    # Lineage (producer_of) looks loads up by path; hash on PostgreSQL (use_postgresql_options),
    # because a btree there refuses entries over ~2.7 kB and paths may be longer.
    sa.Index("ix_models_source_path", "source_path"),
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
    # The content's identity, "<algorithm>:<hex>" (storage/hashing.py; schema 4): blake3, or sha256 on
    # rows written before. sha256: the plain sha256, on rows before schema 4 and once computed on demand.
    sa.Column("digest", sa.String(80)),
    sa.Column("sha256", sa.String(64)),
    sa.Column("size", sa.BigInteger),
    sa.Column("files", sa.JSON, nullable=False),  # [{"name", "size", "digest"}] for multi-file snapshots
    sa.Column("source_path", sa.Text),
    sa.Column("source_stat", sa.JSON),  # journal: what the file looked like when saved
    sa.Column("stage_uri", sa.Text),  # journal: the staged local copy, until it is uploaded
    sa.Column("created", Time, nullable=False),
    sa.Column("stored_at", Time),  # when the object reached its final key (schema 2; NULL until then)
    sa.UniqueConstraint("model_id", "seq", name="uq_snapshots_model_seq"),
    sa.Index("ix_snapshots_digest", "digest"),
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
    sa.Column("sha256", sa.String(64)),  # loads recorded before schema 4
    sa.Column("digest", sa.String(80)),  # the loaded content's digest (schema 4)
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
    sa.Column("digest", sa.String(80), nullable=False),  # schema 4 (a sha256 column before: dropped, a cache)
)

# -- reporting (schema 3): what Logger records ------------------------------------------------
# Row ids autoincrement: scalars are written by the hundred thousand, in batches, and read in order.
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def model_id_column() -> sa.Column:
    """A report of a model (Model.report_scalar & co., ClearML's model-level reporting) names it here;
    NULL for the task's own reports. task_id is then the task that reported it."""
    return sa.Column("model_id", ID, sa.ForeignKey("models.id"))


def _rows_where(condition: str) -> dict[str, sa.TextClause]:
    """A partial index's WHERE (PostgreSQL's is the same, set by use_postgresql_options)."""
    return {"sqlite_where": sa.text(condition)}


# The model side indexes only the (few) model rows: a task's scalar INSERTs do not pay for it.
OF_MODELS = _rows_where("model_id IS NOT NULL")
OF_TASKS = _rows_where("model_id IS NULL")

scalars = sa.Table(
    "scalars",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("task_id", ID, sa.ForeignKey("tasks.id"), nullable=False),  # the task that reported it
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("series", sa.Text, nullable=False),
    sa.Column("iteration", sa.BigInteger, nullable=False),
    # NULL = NaN: SQLite stores a NaN REAL as NULL, so both databases are given NULL for it alike.
    sa.Column("value", sa.Double),
    sa.Column("time", Time, nullable=False),
    model_id_column(),
    # value and model_id too: the UI's charts aggregate a series from the index alone (no table reads)
    sa.Index("ix_scalars_task_series", "task_id", "title", "series", "iteration", "value", "model_id"),
    sa.Index("ix_scalars_model_series", "model_id", "title", "series", "iteration", **OF_MODELS),
)

# A name is reported once per task, and once per model: two partial unique indexes (the upserts of
# db/reporting.py name them as their conflict targets), as NULL model_ids are distinct in a unique index.
single_values = sa.Table(
    "single_values",
    metadata,
    sa.Column("task_id", ID, sa.ForeignKey("tasks.id"), nullable=False),
    sa.Column("name", sa.String(1000), nullable=False),
    sa.Column("value", sa.Double),  # NULL = NaN, as in scalars
    sa.Column("time", Time, nullable=False),
    model_id_column(),
    sa.Column("id", RowId, primary_key=True, autoincrement=True),  # last: the columns before keep their places
    sa.Index("uq_single_values_task_name", "task_id", "name", unique=True, **OF_TASKS),
    sa.Index("uq_single_values_model_name", "model_id", "name", unique=True, **OF_MODELS),
)

reports = sa.Table(
    "reports",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("task_id", ID, sa.ForeignKey("tasks.id"), nullable=False),
    # text | table | plot (a plotly figure) | image | media (report_media: audio, video, html, text, ...)
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("series", sa.Text, nullable=False),
    sa.Column("iteration", sa.BigInteger),
    # text: {"text", "level"}; table: {"columns", "rows", "extra_layout", "extra_data"}; plot: {"data", "layout"};
    # image: {"source", "uploaded", "size", "width", "height", ...} or {"error"} when its upload failed
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("uri", sa.Text),  # redacted URI of an uploaded object (images)
    sa.Column("sha256", sa.String(64)),
    sa.Column("time", Time, nullable=False),
    model_id_column(),
    sa.Index("ix_reports_task", "task_id", "kind", "id"),
    sa.Index("ix_reports_model", "model_id", "kind", "id", **OF_MODELS),
)


# PostgreSQL's index options are set when a PostgreSQL database is opened, not in the definitions
# above: naming a postgresql_* option imports SQLAlchemy's PostgreSQL dialect (~20 ms, in the
# background start that a training script's first steps share the GIL with) in every SQLite run.
HASH_INDEXES = ("ix_models_source_path",)
_postgresql_options_lock = threading.Lock()
_postgresql_options_set = False


def use_postgresql_options() -> None:
    """Give every partial index its WHERE on PostgreSQL too, and the hash indexes their method."""
    global _postgresql_options_set
    with _postgresql_options_lock:
        if _postgresql_options_set:
            return
        for table in metadata.tables.values():
            for index in table.indexes:
                where = index.dialect_options["sqlite"]["where"]
                if where is not None:
                    index.dialect_kwargs["postgresql_where"] = where
                if index.name in HASH_INDEXES:
                    index.dialect_kwargs["postgresql_using"] = "hash"
        _postgresql_options_set = True
