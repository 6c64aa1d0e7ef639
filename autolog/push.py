"""`autolog push`: copy recorded runs from this store into a team store, objects included.

Rows keep their ids, so lineage holds in the target. Pushed: the chosen tasks with their models,
snapshots, artifacts and loads, plus the rows those loads point at (model, snapshot, task) so that
foreign keys hold. A row already in the target is left alone unless the source has moved on
(`_moved_on`: a task running there ended here, a snapshot pending there settled here, a model saved
again here); an artifact re-uploaded under the same name here replaces the target's older one.
Objects in a local folder (stored snapshots, file artifacts) are copied to the storage URI before any
row naming them is written: push_objects.py. Tasks with `pending` snapshots are held back.
What the tasks reported (scalars, single values, reports and their images) comes along: push_reports.py.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable

import sqlalchemy as sa

from . import push_objects, push_reports
from .config import redact_url
from .context import Context
from .db import open_store
from .db import schema as s
from .db.store import MetadataStore
from .errors import AutologError

KINDS = ("tasks", "models", "snapshots", "artifacts", "loads")
TABLES = {"tasks": s.tasks, "models": s.models, "snapshots": s.snapshots, "artifacts": s.artifacts,
          "loads": s.model_loads}  # in foreign-key order
CHUNK = 500  # ids per IN (...) query: far below SQLite's and PostgreSQL's parameter limits
Rows = dict[str, dict[str, dict]]  # kind -> id -> row


@dataclass
class PushReport:
    target: str
    storage: str | None  # as given (credentials included, if any): print it through redact_url
    dry_run: bool
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {k: dict.fromkeys(("new", "updated", "existing"), 0) for k in KINDS})
    objects: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("copied", "already_there", "bytes_copied"), 0))
    held_back: dict[str, list[str]] = field(default_factory=dict)  # task id -> its pending snapshot ids

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "storage": redact_url(self.storage) if self.storage else None,
                "dry_run": self.dry_run, **self.counts, "objects": self.objects, "held_back": self.held_back}

    def summary(self) -> str:
        from tqdm import tqdm

        parts = [f"{k} {c['new']} new, {c['updated']} updated, {c['existing']} already there"
                 for k, c in self.counts.items()]
        verb = "to copy" if self.dry_run else "copied"
        size = tqdm.format_sizeof(self.objects["bytes_copied"], "B", 1024)
        objects = f"objects {self.objects['copied']} {verb} ({size}), {self.objects['already_there']} already there"
        head = "dry run, nothing written: " if self.dry_run else ""
        where = f" (objects to {redact_url(self.storage)})" if self.storage else ""
        return f"{head}push to {self.target}{where}: " + "; ".join(parts + [objects])

    def held_back_message(self) -> str:
        ids = ", ".join(t[:12] for t in self.held_back)
        return (f"{len(self.held_back)} task(s) not pushed because they have snapshots still pending ({ids}): "
                "wait for those runs to finish, or run `autolog sync` if they were killed, then push again.")


@dataclass
class Plan:
    inserts: dict[str, list[dict]] = field(default_factory=lambda: {k: [] for k in KINDS})
    updates: dict[str, list[dict]] = field(default_factory=lambda: {k: [] for k in KINDS})
    replaced_artifacts: list[str] = field(default_factory=list)  # target artifact ids to delete first


def push(ctx: Context, target_url: str, *, task_ids: Iterable[str] | None = None, project: str | None = None,
         storage: str | None = None, dry_run: bool = False, progress: bool = True) -> PushReport:
    """Push the chosen tasks (default: all) of ctx's store into the store at target_url."""
    try:
        _check_not_same(ctx.settings.db_url, target_url)
        rows, held = _select(ctx.store, task_ids, project)
        target = None if dry_run and not _has_schema(target_url) else _open_target(target_url)
        plan, report = _decide(rows, target, PushReport(redact_url(target_url), None, dry_run, held_back=held))
        jobs = push_objects.relocate(plan, rows, ctx.settings, storage, report)
        push_objects.copy_objects(jobs, report, progress)
        if not dry_run:
            _write(target, plan)  # type: ignore[arg-type]
        return report
    except sa.exc.ArgumentError:
        raise ValueError(f"--to {redact_url(target_url)} is not a database URL. Give a SQLAlchemy URL such as "
                         "postgresql+psycopg://user@host/autolog or sqlite:////path/to/team.db.") from None
    except sa.exc.SQLAlchemyError as exc:
        detail = _scrub(str(getattr(exc, "orig", None) or exc).splitlines()[0], target_url)
        raise AutologError(f"Push to {redact_url(target_url)} failed: {detail}. Rows are written in one "
                           "transaction, so none was half-written: fix the cause and push again.") from None


# -- what to push -----------------------------------------------------------------------------------
def _select(store: MetadataStore, task_ids: Iterable[str] | None, project: str | None) -> tuple[Rows, dict]:
    """The rows to push, and the tasks held back because of pending snapshots."""
    if task_ids:
        ids = list(dict.fromkeys(store.get_task(t).id for t in task_ids))  # prefixes allowed, as everywhere
        query = sa.select(s.tasks).where(s.tasks.c.id.in_(ids))
    else:
        query = sa.select(s.tasks) if project is None else sa.select(s.tasks).where(s.tasks.c.project == project)
    with store.read() as conn:
        tasks = {r["id"]: dict(r) for r in conn.execute(query).mappings()}
        if project is not None and not tasks:
            raise LookupError(f"There are no tasks in project {project!r}. List them with `autolog task list`.")
        held = _pending_by_task(conn, list(tasks))
        chosen = [t for t in tasks if t not in held]
        rows: Rows = {"tasks": {t: tasks[t] for t in chosen}}
        rows["models"] = _fetch(conn, s.models, s.models.c.task_id, chosen)
        rows["snapshots"] = _fetch(conn, s.snapshots, s.snapshots.c.model_id, list(rows["models"]))
        rows["artifacts"] = _fetch(conn, s.artifacts, s.artifacts.c.task_id, chosen)
        rows["loads"] = _fetch(conn, s.model_loads, s.model_loads.c.task_id, chosen)
        rows.update(push_reports.select(conn, chosen))
        _add_load_targets(conn, rows)
    return rows, held


def _add_load_targets(conn: sa.Connection, rows: Rows) -> None:
    """The models and snapshots pushed loads point at, the models the pushed reports are of, and the tasks
    that saved them."""
    loads = rows["loads"].values()
    models = ({ld["model_id"] for ld in loads} | push_reports.reported_models(rows)) - rows["models"].keys()
    rows["models"].update(_fetch(conn, s.models, s.models.c.id, models))
    snapshots = {ld["snapshot_id"] for ld in loads} - rows["snapshots"].keys()
    rows["snapshots"].update(_fetch(conn, s.snapshots, s.snapshots.c.id, snapshots))
    owners = {m["task_id"] for m in rows["models"].values() if m["task_id"]} - rows["tasks"].keys()
    rows["tasks"].update(_fetch(conn, s.tasks, s.tasks.c.id, owners))


def _pending_by_task(conn: sa.Connection, task_ids: list[str]) -> dict[str, list[str]]:
    held: dict[str, list[str]] = {}
    for chunk in _chunks(task_ids):
        query = (sa.select(s.models.c.task_id, s.snapshots.c.id)
                 .join(s.models, s.models.c.id == s.snapshots.c.model_id)
                 .where(s.snapshots.c.status == "pending", s.models.c.task_id.in_(chunk)))
        for task_id, snap_id in conn.execute(query):
            held.setdefault(task_id, []).append(snap_id)
    return held


def _fetch(conn: sa.Connection, table: sa.Table, column: sa.Column, values: Iterable[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for chunk in _chunks(sorted(values)):
        found.update((r["id"], dict(r)) for r in conn.execute(sa.select(table).where(column.in_(chunk))).mappings())
    return found


def _chunks(values: list) -> Iterable[list]:
    return (values[i:i + CHUNK] for i in range(0, len(values), CHUNK))


# -- what the target lacks ----------------------------------------------------------------------------
_NATURAL_KEY = {"artifacts": ("task_id", "name"), "loads": ("task_id", "model_id", "snapshot_id")}


def _decide(rows: Rows, target: MetadataStore | None, report: PushReport) -> tuple[Plan, PushReport]:
    plan = Plan()
    existing = _existing(target, rows) if target is not None else {k: {} for k in KINDS}
    index = {kind: {tuple(r[f] for f in fields): r for r in existing[kind].values()}
             for kind, fields in _NATURAL_KEY.items()}
    for kind in KINDS:
        for row in rows[kind].values():
            outcome = _outcome(kind, row, _match(kind, row, existing, index, plan))
            if outcome != "existing":
                (plan.updates if outcome == "updated" else plan.inserts)[kind].append(row)
            report.counts[kind]["updated" if outcome == "replaced" else outcome] += 1
    push_reports.decide(rows, target, plan, report)
    return plan, report


def _match(kind: str, row: dict, existing: dict, index: dict, plan: Plan) -> dict | None:
    """The target's row with this id; else its artifact of the same name (an older upload, which a
    newer one replaces) or its load of the same link (the same fact, recorded twice)."""
    there = existing[kind].get(row["id"])
    if there is None and kind in _NATURAL_KEY:
        there = index[kind].get(tuple(row[f] for f in _NATURAL_KEY[kind]))
        if there is not None and kind == "artifacts" and row["created"] > there["created"]:
            plan.replaced_artifacts.append(there["id"])
            return dict(there, replace=True)
    return there


def _outcome(kind: str, row: dict, there: dict | None) -> str:
    if there is None:
        return "new"
    if there["id"] != row["id"]:
        return "replaced" if there.get("replace") else "existing"
    return "updated" if _moved_on(kind, row, there) else "existing"


def _moved_on(kind: str, source: dict, target: dict) -> bool:
    """Whether a row the target already has must take the source's values (see the module doc)."""
    if kind == "tasks":
        return target["status"] == "running" and source["status"] != "running"
    if kind == "snapshots":
        return target["status"] == "pending" and source["status"] != "pending"
    if kind == "models":
        return source["updated"] > target["updated"]
    return False


def _existing(target: MetadataStore, rows: Rows) -> dict[str, dict[str, dict]]:
    task_ids = list(rows["tasks"])
    with target.read() as conn:
        found = {k: _fetch(conn, TABLES[k], TABLES[k].c.id, rows[k]) for k in ("tasks", "models", "snapshots")}
        found["artifacts"] = _fetch(conn, s.artifacts, s.artifacts.c.task_id, task_ids)
        found["loads"] = _fetch(conn, s.model_loads, s.model_loads.c.task_id, task_ids)
    return found


def _write(target: MetadataStore, plan: Plan) -> None:
    with target.write() as conn:
        for chunk in _chunks(plan.replaced_artifacts):
            conn.execute(s.artifacts.delete().where(s.artifacts.c.id.in_(chunk)))
        for kind, table in TABLES.items():
            for chunk in _chunks(plan.inserts[kind]):
                conn.execute(table.insert(), chunk)
            for row in plan.updates[kind]:
                conn.execute(table.update().where(table.c.id == row["id"]).values(**row))
        push_reports.write(conn, plan)


def _has_schema(url: str) -> bool:
    """Whether url already holds an autolog schema, found without creating anything (for --dry-run)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and not (parsed.database and os.path.isfile(parsed.database)):
        return False
    engine = sa.create_engine(parsed, poolclass=sa.pool.NullPool)
    try:
        return sa.inspect(engine).has_table(s.schema_info.name)
    finally:
        engine.dispose()


def _open_target(url: str) -> MetadataStore:
    store = open_store(url)
    try:
        store.engine  # connects and creates or migrates the schema
    except AutologError as exc:  # a driver's message may span lines: the CLI prints one
        raise AutologError(" ".join(_scrub(str(exc), url).split())) from None
    return store


def _check_not_same(source_url: str, target_url: str) -> None:
    def where(url: str) -> str:
        parsed = sa.engine.make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            return os.path.realpath(parsed.database)
        return parsed.render_as_string(hide_password=True)

    if where(source_url) == where(target_url):
        raise ValueError(f"--to {redact_url(target_url)} is this machine's own store: push to another database "
                         "(e.g. --to postgresql+psycopg://user@host/autolog).")


def _scrub(text: str, url: str) -> str:
    """Error text from a driver, without the URL's password should the driver have echoed it."""
    password = sa.engine.make_url(url).password
    return text.replace(str(password), "***") if password else text

