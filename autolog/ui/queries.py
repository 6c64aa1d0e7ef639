"""The read-only queries behind the pages (other than the task list and the lineage graph): SQLAlchemy
Core over one read connection of the store, each lookup by an indexed column (a primary key, a task or
model id), so a page costs the same in a store of 100 tasks or of 100,000."""
from __future__ import annotations

import functools
import re
from typing import Any, Iterator, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..db import schema as s
from ..db.records import ArtifactRecord, ModelRecord, SnapshotRecord, TaskRecord, to_record
from .http import UIError
from .rows import TASK_COLUMNS, model_row, snapshot_row, task_row

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


def scalar_series(conn: Connection, task_id: str,
                  most: int) -> Iterator[tuple[str, str, list[int], list[float | None]]]:
    """(title, series, x, y) of each series of the task: at most `most` points, x (iterations) increasing, NaN
    (NULL as stored) as None. One series at a time.

    A series of at most `most` stored values (or whose iterations span at most `most`) is sent whole: each
    iteration once, with the last value reported for it (as ClearML's server, which keys a scalar by
    iteration). A longer one is aggregated in SQL (GROUP BY a bucket of iterations: count, min and max of
    the value and of the iteration), so about `most` rows leave the database however long it is. It is
    drawn as its first and last point, exact as above, and between them (most - 2) // 2 buckets of equal
    iteration ranges, each as
      - its lowest and its highest value (NaN left out), at its first and its last iteration, in the order
        that continues the line: the one nearer the last number drawn before it comes first. A monotone
        stretch is drawn exactly (a bucket's extremes are then its ends); elsewhere the extremes keep their
        values but are drawn at the bucket's ends, less than a bucket's width from where they were reported;
      - its points, exact as above, if it holds one or two values, or values of one iteration only;
      - one None, at its first iteration, if it holds NaN only: a run of NaN that covers a bucket stays a
        gap; a shorter one, in a bucket with numbers, is not drawn.
    Values re-reported for an iteration all count toward the lowest and highest of its bucket (only exact
    points take the last one): telling them apart would cost a second pass over the rows."""
    c = s.scalars.c
    own = (c.task_id == task_id, c.model_id.is_(None))  # a model's own scalars are not the task's
    for title, series in _series_names(conn, own):
        x, y = _points(conn, {"task_id": task_id, "title": title, "series": series}, most)
        yield title, series, x, y


def _points(conn: Connection, one: dict[str, str], most: int) -> tuple[list[int], list[float | None]]:
    """The (x, y) of scalar_series for one series (`one`: its task_id, title and series)."""
    sql = _series_sql()
    lo, hi = conn.execute(sql.ends, one).one()
    buckets, span = (most - 2) // 2, hi - lo - 1  # span: how many iterations lie strictly between the ends
    if span < most - 1 or span >= 2**63:  # too few iterations to need buckets; (absurd) beyond 64-bit arithmetic
        return _whole(conn, sql.whole, one)
    # bucket = (iteration - first) * scale // divisor: `buckets` of equal ranges, or (where that product could
    # overflow 64 bits) of equal widths, fewer maybe; max_points=3 has one bucket, to count rows, not drawn
    scale, divisor = max(buckets, 1), span
    if span * scale >= 2**63:
        scale, divisor = 1, -(-span // buckets)
    bounds = {"lo": lo, "hi": hi, "first": lo + 1, "scale": scale, "divisor": divisor}
    rows = conn.execute(sql.buckets, {**one, **bounds}).all()  # (bucket, count, min, max, first, last iteration)

    def exact(count: int, first: int, final: int) -> bool:  # a bucket drawn as its stored points
        return count <= 2 or first == final

    at = sorted({lo, hi, *(it for _, n, _, _, first, final in rows if exact(n, first, final) for it in (first, final))})
    found = [row for k in range(0, len(at), _IN_LIST)  # rows by iteration, then id
             for row in conn.execute(sql.at, {**one, "at": at[k:k + _IN_LIST]})]
    if sum(row[1] for row in rows) + sum(1 for row in found if row[0] in (lo, hi)) <= most:
        return _whole(conn, sql.whole, one)  # few values, far apart
    last = dict(found)  # iteration -> the last value reported there (rows in id order)
    x, y = [lo], [last[lo]]
    before = last[lo]  # the last number drawn
    for _, n, low, high, first, final in rows if buckets else ():
        if exact(n, first, final):
            x += sorted({first, final})
            y += [last[it] for it in sorted({first, final})]
        elif low is None:  # NaN only
            x.append(first)
            y.append(None)
        else:  # the extreme nearer the last number drawn comes first (none yet: the lowest)
            near_high = before is not None and abs(before - high) < abs(before - low)
            x += [first, final]
            y += [high, low] if near_high else [low, high]
        before = next((v for v in reversed(y[-2:]) if v is not None), before)
    x.append(hi)
    y.append(last[hi])
    return x, [None if v is None or v != v else v for v in y]


def _whole(conn: Connection, whole: sa.Select, one: dict[str, str]) -> tuple[list[int], list[float | None]]:
    """Every iteration of the series once, with the last value reported there."""
    # the driver's rows as they come (two numbers each): up to 100,000 Row objects would cost more than the query
    last = dict(conn.execute(whole, one).cursor.fetchall())  # rows in id order within an iteration: the last wins
    return list(last), [None if v is None or v != v else v for v in last.values()]


_IN_LIST = 10_000  # iterations looked up per statement (SQLite takes 32,766 parameters at most, PostgreSQL 65,535)


class _SeriesSQL(NamedTuple):
    ends: sa.Select  # (first iteration, last iteration)
    whole: sa.Select  # (iteration, value) of every row, by iteration and id
    at: sa.Select  # the same at the iterations `at`
    buckets: sa.Select  # (bucket, rows, min and max value, first and last iteration) of each bucket of
    #                      the iterations strictly between lo and hi, by bucket


@functools.cache
def _series_sql() -> _SeriesSQL:
    """The statements of scalar_series, built once: one series of a task (bind parameters task_id, title,
    series; a model's own scalars are not the task's), read through the (task, title, series, iteration)
    index; SQL that runs alike on SQLite and PostgreSQL (the bucket: a division of integers >= 0)."""
    c = s.scalars.c
    one = (c.task_id == sa.bindparam("task_id"), c.model_id.is_(None), c.title == sa.bindparam("title"),
           c.series == sa.bindparam("series"))
    lo, hi, first, scale, divisor = (sa.bindparam(name, type_=sa.BigInteger)
                                     for name in ("lo", "hi", "first", "scale", "divisor"))
    whole = sa.select(c.iteration, c.value).where(*one).order_by(c.iteration, c.id)
    bucket = ((c.iteration - first) * scale // divisor).label("bucket")
    return _SeriesSQL(
        ends=sa.select(sa.select(c.iteration).where(*one).order_by(c.iteration).limit(1).scalar_subquery(),
                       sa.select(c.iteration).where(*one).order_by(c.iteration.desc()).limit(1).scalar_subquery()),
        whole=whole,
        at=whole.where(c.iteration.in_(sa.bindparam("at", expanding=True))),
        buckets=sa.select(bucket, sa.func.count(), sa.func.min(c.value), sa.func.max(c.value), sa.func.min(c.iteration),
                          sa.func.max(c.iteration)).where(*one, c.iteration > lo, c.iteration < hi)
                  .group_by(bucket).order_by(bucket))


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
