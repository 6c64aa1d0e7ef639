"""Queries of what Logger reports: scalars, single values, and text, table, plot and image reports.

Every function takes the MetadataStore and goes through its read()/write() connections, so the
store's error handling (a damaged SQLite file, a lock held too long) applies here too.

Reports belong to a task (model_id NULL) or to a model (ClearML's Model.report_scalar & co.;
task_id is then the task that reported it). Every reader takes the owner as an `Owner`: a task's
readers never see its models' reports, as in ClearML, where a model's reports are the model's.

NaN is written as NULL on both databases (SQLite stores a NaN REAL as NULL anyway, so both are told
the same) and read back as float("nan"); +inf and -inf are stored as such. MIN and MAX ignore NULL,
so a series' min and max leave its NaNs out (they are NaN only when every value is).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import sqlalchemy as sa

from . import schema as s

if TYPE_CHECKING:
    from .store import MetadataStore

NAN = float("nan")
DEBUG_SAMPLES = ("image", "media")  # the report kinds ClearML shows as debug samples


@dataclass(frozen=True)
class Owner:
    """Whose reports to read: a task's own (model_id None) or a model's (from whichever task reported them)."""
    task_id: str | None = None
    model_id: str | None = None

    def of(self, table: sa.Table) -> Any:
        """The WHERE condition selecting this owner's rows of table."""
        if self.model_id is not None:
            return table.c.model_id == self.model_id
        return sa.and_(table.c.task_id == self.task_id, table.c.model_id.is_(None))


def owner_of(owner: "Owner | str") -> Owner:
    """A task id (the common case) or an Owner."""
    return owner if isinstance(owner, Owner) else Owner(task_id=owner)


@dataclass(frozen=True)
class ScalarSummary:
    """One series of a task: how many values, and its last (at the highest iteration), min and max."""
    title: str
    series: str
    count: int
    last_iteration: int
    last: float
    min: float
    max: float


@dataclass(frozen=True)
class ReportRecord:
    """One text, table, plot, image or media report (body: see Logger; uri: an uploaded object)."""
    id: int
    task_id: str
    model_id: str | None
    kind: str
    title: str
    series: str
    iteration: int | None
    body: dict
    uri: str | None
    sha256: str | None
    time: float


def to_db(value: float) -> float | None:
    """A value as the database holds it: NaN as NULL."""
    return None if value != value else value


def from_db(value: float | None) -> float:
    return NAN if value is None else float(value)


# -- writing -------------------------------------------------------------------------------------
def insert_scalars(store: "MetadataStore", rows: Sequence[dict[str, Any]]) -> None:
    """rows: {task_id, title, series, iteration, value (None = NaN), time}; one executemany INSERT."""
    if rows:
        with store.write() as conn:
            conn.execute(s.scalars.insert(), list(rows))


def put_single_values(store: "MetadataStore", rows: Sequence[dict[str, Any]]) -> None:
    """rows: {task_id, model_id (None: the task's own), name, value (None = NaN), time}; a name reported
    again (by the task, or for the model) takes the newer value."""
    if not rows:
        return
    of_task = [dict(r, model_id=None) for r in rows if r.get("model_id") is None]
    of_model = [r for r in rows if r.get("model_id") is not None]
    with store.write() as conn:
        # One upsert per conflict target: each names the partial unique index it may collide with.
        for batch, keys, where in ((of_task, ["task_id", "name"], "model_id IS NULL"),
                                   (of_model, ["model_id", "name"], "model_id IS NOT NULL")):
            if batch:
                insert = _dialect_insert(conn, s.single_values)
                conn.execute(insert.on_conflict_do_update(
                    index_elements=keys, index_where=sa.text(where),
                    set_={"value": insert.excluded.value, "time": insert.excluded.time,
                          "task_id": insert.excluded.task_id},
                ), batch)


def insert_reports(store: "MetadataStore", rows: Sequence[dict[str, Any]]) -> None:
    """rows: {task_id, model_id, kind, title, series, iteration, body, uri, sha256, time}, every row with the
    same keys (one executemany)."""
    if rows:
        with store.write() as conn:
            conn.execute(s.reports.insert(), list(rows))


def drop_old_images(store: "MetadataStore", task_id: str, title: str, series: str, keep: int) -> list[str]:
    """Delete all but the newest `keep` debug samples (images and media: ClearML keeps one history of
    both per title/series) of one title/series; the URIs of the objects autolog uploaded for the deleted
    rows (for the caller to delete after the rows are gone)."""
    t = s.reports.c
    query = (sa.select(t.id, t.uri, t.body)
             .where(Owner(task_id=task_id).of(s.reports), t.kind.in_(DEBUG_SAMPLES), t.title == title,
                    t.series == series)
             .order_by(t.id.desc()).offset(keep))
    with store.write() as conn:
        old = conn.execute(query).all()
        if old:
            conn.execute(s.reports.delete().where(t.id.in_([row.id for row in old])))
    return [row.uri for row in old if row.uri and (row.body or {}).get("uploaded")]


# -- reading -------------------------------------------------------------------------------------
def scalar_points(store: "MetadataStore",
                  owner: "Owner | str") -> dict[tuple[str, str], list[tuple[int, float, float]]]:
    """{(title, series): [(iteration, value, time), ...]} by iteration; of values reported for the same
    iteration the last one counts (as ClearML, whose server keys a scalar by its iteration)."""
    t = s.scalars.c
    query = (sa.select(t.title, t.series, t.iteration, t.value, t.time).where(owner_of(owner).of(s.scalars))
             .order_by(t.title, t.series, t.iteration, t.id))
    points: dict[tuple[str, str], list[tuple[int, float, float]]] = defaultdict(list)
    with store.read() as conn:
        for title, series, iteration, value, time in conn.execute(query):
            line = points[(title, series)]
            if line and line[-1][0] == iteration:
                line.pop()
            line.append((iteration, from_db(value), time))
    return dict(points)


def scalar_summaries(store: "MetadataStore", owner: "Owner | str") -> list[ScalarSummary]:
    """Every series of the task (or model), by title then series."""
    t = s.scalars.c
    where = owner_of(owner).of(s.scalars)
    stats = (sa.select(t.title, t.series, sa.func.count().label("n"), sa.func.min(t.value).label("lo"),
                       sa.func.max(t.value).label("hi"))
             .where(where).group_by(t.title, t.series))
    rank = sa.func.row_number().over(partition_by=(t.title, t.series), order_by=(t.iteration.desc(), t.id.desc()))
    ranked = sa.select(t.title, t.series, t.iteration, t.value, rank.label("rank")).where(where)
    ranked = ranked.subquery()
    lasts = sa.select(ranked.c.title, ranked.c.series, ranked.c.iteration, ranked.c.value).where(ranked.c.rank == 1)
    with store.read() as conn:
        last = {(r.title, r.series): (r.iteration, r.value) for r in conn.execute(lasts)}
        rows = conn.execute(stats).all()
    summaries = [ScalarSummary(r.title, r.series, r.n, last[(r.title, r.series)][0],
                               from_db(last[(r.title, r.series)][1]), from_db(r.lo), from_db(r.hi)) for r in rows]
    return sorted(summaries, key=lambda x: (x.title, x.series))


def single_values(store: "MetadataStore", owner: "Owner | str") -> dict[str, float]:
    """{name: value}, by name."""
    t = s.single_values.c
    query = sa.select(t.name, t.value).where(owner_of(owner).of(s.single_values)).order_by(t.name)
    with store.read() as conn:
        return {name: from_db(value) for name, value in conn.execute(query)}


def reports_of(store: "MetadataStore", owner: "Owner | str", kinds: Iterable[str] | None = None,
               title: str | None = None, series: str | None = None) -> list[ReportRecord]:
    """The task's (or model's) reports, oldest first; only these kinds / this title and series when given."""
    t = s.reports.c
    query = sa.select(s.reports).where(owner_of(owner).of(s.reports)).order_by(t.id)
    if kinds is not None:
        query = query.where(t.kind.in_(list(kinds)))
    if title is not None:
        query = query.where(t.title == title)
    if series is not None:
        query = query.where(t.series == series)
    with store.read() as conn:
        return [ReportRecord(**{k: row[k] for k in ReportRecord.__dataclass_fields__})
                for row in conn.execute(query).mappings()]


@dataclass(frozen=True)
class ReportCount:
    """How many reports of one kind a title/series holds (`autolog task show`)."""
    kind: str
    title: str
    series: str
    count: int


def report_counts(store: "MetadataStore", owner: "Owner | str") -> list[ReportCount]:
    """The reports of a task (or model) counted per kind, title and series: one grouped query."""
    t = s.reports.c
    query = (sa.select(t.kind, t.title, t.series, sa.func.count().label("n")).where(owner_of(owner).of(s.reports))
             .group_by(t.kind, t.title, t.series).order_by(t.kind, t.title, t.series))
    with store.read() as conn:
        return [ReportCount(r.kind, r.title, r.series, r.n) for r in conn.execute(query)]


def last_texts(store: "MetadataStore", owner: "Owner | str", n: int) -> list[ReportRecord]:
    """The newest n text reports (report_text), oldest first: read from the end, not the whole log."""
    t = s.reports.c
    query = sa.select(s.reports).where(owner_of(owner).of(s.reports), t.kind == "text").order_by(t.id.desc()).limit(n)
    with store.read() as conn:
        rows = [ReportRecord(**{k: row[k] for k in ReportRecord.__dataclass_fields__})
                for row in conn.execute(query).mappings()]
    return rows[::-1]


def _dialect_insert(conn: sa.Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)
