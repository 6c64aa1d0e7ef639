"""The read-only queries behind the pages (other than the task list and the lineage graph): SQLAlchemy
Core over one read connection of the store, each lookup by an indexed column (a primary key, a task or
model id), so a page costs the same in a store of 100 tasks or of 100,000."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..db import schema as s
from ..db.records import ArtifactRecord, ModelRecord, SnapshotRecord, TaskRecord, to_record
from .http import UIError
from .rows import TASK_COLUMNS, model_row, snapshot_row, task_row

if TYPE_CHECKING:
    import numpy as np

_ID = re.compile(r"[0-9a-f]{32}")
_KINDS = {"task": s.tasks, "model": s.models, "snapshot": s.snapshots, "artifact": s.artifacts}


def check_id(kind: str, ident: str) -> str:
    """ident when it has the form of an id (32 lowercase hex digits), else UIError(404) naming it: such
    an id names nothing, and only well-formed ids are looked up."""
    if not _ID.fullmatch(ident or ""):
        raise UIError(404, f"There is no {kind} with id {ident[:80]!r}: ids are 32 hex digits.")
    return ident


def exists(conn: Connection, kind: str, ident: str) -> bool:
    table = _KINDS[kind]
    return conn.execute(sa.select(table.c.id).where(table.c.id == check_id(kind, ident))).first() is not None


def require(conn: Connection, kind: str, ident: str) -> None:
    """UIError(404) unless a row of this kind has this id."""
    if not exists(conn, kind, ident):
        raise UIError(404, f"There is no {kind} with id {ident!r} in this store.")


def _one(conn: Connection, cls: type, table: sa.Table, kind: str, ident: str) -> Any:
    row = conn.execute(sa.select(table).where(table.c.id == check_id(kind, ident))).mappings().first()
    if row is None:
        raise UIError(404, f"There is no {kind} with id {ident!r} in this store.")
    return to_record(cls, row)


def task_record(conn: Connection, task_id: str) -> TaskRecord:
    return _one(conn, TaskRecord, s.tasks, "task", task_id)


def model_record(conn: Connection, model_id: str) -> ModelRecord:
    return _one(conn, ModelRecord, s.models, "model", model_id)


def snapshot_record(conn: Connection, snapshot_id: str) -> SnapshotRecord:
    return _one(conn, SnapshotRecord, s.snapshots, "snapshot", snapshot_id)


def artifact_record(conn: Connection, artifact_id: str) -> ArtifactRecord:
    return _one(conn, ArtifactRecord, s.artifacts, "artifact", artifact_id)


def projects(conn: Connection) -> list[dict[str, Any]]:
    """Every project and how many tasks it holds, by name (one scan of the project index)."""
    query = sa.select(s.tasks.c.project, sa.func.count().label("n")).group_by(s.tasks.c.project)
    return [{"name": name, "tasks": n} for name, n in conn.execute(query.order_by(s.tasks.c.project))]


def artifacts_of(conn: Connection, task_id: str) -> list[ArtifactRecord]:
    query = sa.select(s.artifacts).where(s.artifacts.c.task_id == task_id).order_by(s.artifacts.c.created)
    return [to_record(ArtifactRecord, row) for row in conn.execute(query).mappings()]


def input_models(conn: Connection, task_id: str) -> list[dict[str, Any]]:
    """The snapshots the task loaded, first load first: {"model", "snapshot", "loaded_at"}."""
    loads = s.model_loads.c
    query = (sa.select(loads.model_id, loads.snapshot_id, loads.created)
             .where(loads.task_id == task_id).order_by(loads.created))
    found = conn.execute(query).all()
    models = _by_id(conn, s.models, {row.model_id for row in found})
    snapshots = _by_id(conn, s.snapshots, {row.snapshot_id for row in found})
    return [{"model": model_row(models[row.model_id]), "snapshot": snapshot_row(snapshots[row.snapshot_id]),
             "loaded_at": row.created}
            for row in found if row.model_id in models and row.snapshot_id in snapshots]


def output_models(conn: Connection, task_id: str) -> list[dict[str, Any]]:
    """The task's models, least recently saved first, each with its snapshots by seq."""
    m = s.models.c
    query = (sa.select(s.models).where(m.task_id == task_id, m.origin != "imported")
             .order_by(m.updated, m.created))
    models = conn.execute(query).mappings().all()
    snapshots = snapshots_of(conn, [row["id"] for row in models])
    return [{"model": model_row(row), "snapshots": snapshots.get(row["id"], [])} for row in models]


def snapshots_of(conn: Connection, model_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """{model id: [SnapshotRow by seq]} (one query; the unique (model_id, seq) index serves it)."""
    found: dict[str, list[dict[str, Any]]] = {}
    if not model_ids:
        return found
    c = s.snapshots.c
    query = sa.select(s.snapshots).where(c.model_id.in_(model_ids)).order_by(c.model_id, c.seq)
    for row in conn.execute(query).mappings():
        found.setdefault(row["model_id"], []).append(snapshot_row(row))
    return found


def task_rows(conn: Connection, task_ids: set[str]) -> dict[str, dict[str, Any]]:
    """{task id: TaskRow} of these tasks (those that exist)."""
    if not task_ids:
        return {}
    query = sa.select(*TASK_COLUMNS).where(s.tasks.c.id.in_(sorted(task_ids)))
    return {row["id"]: task_row(row) for row in conn.execute(query).mappings()}


def loaded_by(conn: Connection, model_id: str) -> list[dict[str, Any]]:
    """Every load of the model's snapshots, first first: {"task", "snapshot_seq", "snapshot_id", "loaded_at"}."""
    loads, snaps = s.model_loads.c, s.snapshots.c
    query = (sa.select(loads.task_id, loads.snapshot_id, loads.created, snaps.seq)
             .join_from(s.model_loads, s.snapshots, snaps.id == loads.snapshot_id)
             .where(loads.model_id == model_id).order_by(loads.created))
    found = conn.execute(query).all()
    tasks = task_rows(conn, {row.task_id for row in found})
    return [{"task": tasks[row.task_id], "snapshot_seq": row.seq, "snapshot_id": row.snapshot_id,
             "loaded_at": row.created} for row in found if row.task_id in tasks]


def _by_id(conn: Connection, table: sa.Table, ids: set[str]) -> dict[str, Any]:
    if not ids:
        return {}
    return {row["id"]: row for row in conn.execute(sa.select(table).where(table.c.id.in_(sorted(ids)))).mappings()}


def scalar_summaries(conn: Connection, task_id: str) -> list[dict[str, Any]]:
    """Every series of the task, by title and series: {"title", "series", "count", "last", "min", "max",
    "last_iteration"} (NaN, stored as NULL, is left out of min and max; "last" is the value at the
    highest iteration, the last reported there). One grouped pass over the task's index range, then one
    indexed lookup per series: no window over every value (reporting.scalar_summaries's way)."""
    c = s.scalars.c
    stats = (sa.select(c.title, c.series, sa.func.count().label("n"), sa.func.min(c.value).label("lo"),
                       sa.func.max(c.value).label("hi"), sa.func.max(c.iteration).label("top"))
             .where(c.task_id == task_id, c.model_id.is_(None))  # a model's own scalars are not the task's
             .group_by(c.title, c.series).order_by(c.title, c.series))
    last = (sa.select(c.value).where(c.task_id == task_id, c.model_id.is_(None), c.title == sa.bindparam("title"),
                                     c.series == sa.bindparam("series"), c.iteration == sa.bindparam("top"))
            .order_by(c.id.desc()).limit(1))
    found = []
    for row in conn.execute(stats).all():
        value = conn.execute(last, {"title": row.title, "series": row.series, "top": row.top}).scalar()
        found.append({"title": row.title, "series": row.series, "count": row.n, "last": _nan(value),
                      "min": _nan(row.lo), "max": _nan(row.hi), "last_iteration": row.top})
    return found


def scalar_series(conn: Connection, task_id: str) -> Iterator[tuple[str, str, "np.ndarray", "np.ndarray"]]:
    """(title, series, iterations, values) of each series of the task, by iteration, as numpy arrays (NaN
    for NULL); of values reported for one iteration the last counts (as ClearML's server, which keys a
    scalar by iteration). One series at a time: the points of only one are held at once."""
    import numpy as np

    c = s.scalars.c
    own = (c.task_id == task_id, c.model_id.is_(None))  # a model's own scalars are not the task's
    points = (sa.select(c.iteration, c.value).where(*own, c.title == sa.bindparam("title"),
                                                    c.series == sa.bindparam("series")).order_by(c.iteration, c.id))
    for title, series in _series_names(conn, own):
        # the driver's rows as they come (two numbers each): 10,000s of Row objects would cost more than the query
        rows = conn.execute(points, {"title": title, "series": series}).cursor.fetchall()
        table = np.array(rows, dtype=np.float64).reshape(len(rows), 2)  # None (NaN as stored) becomes nan
        iterations, values = table[:, 0].astype(np.int64), table[:, 1]
        last = np.ones(len(rows), dtype=bool)
        last[:-1] = iterations[1:] != iterations[:-1]  # the last row of each iteration
        yield title, series, iterations[last], values[last]


def _series_names(conn: Connection, own: tuple) -> Iterator[tuple[str, str]]:
    """(title, series) of each series, in order: a seek or two of the (task, title, series) index per
    series, from the previous one on (a DISTINCT would read every value's row, to test its model_id)."""
    c = s.scalars.c
    first = sa.select(c.title, c.series).where(*own).order_by(c.title, c.series).limit(1)
    same_title = first.where(c.title == sa.bindparam("title"), c.series > sa.bindparam("series"))
    next_title = first.where(c.title > sa.bindparam("title"))
    found = conn.execute(first).first()
    while found is not None:
        yield found.title, found.series
        at = {"title": found.title, "series": found.series}
        found = conn.execute(same_title, at).first() or conn.execute(next_title, {"title": found.title}).first()


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)
