"""`autolog push` for what Logger reported: the pushed tasks' scalars, single values and reports.

push.py calls these at its steps (select, decide, relocate, write). Scalar and report rows have
autoincrement ids, which differ between databases, so a row is matched by what it is instead:
(task, model, title, series, iteration, time) for a scalar, the same with the kind for a report,
(task, model, name) for a single value (model: None for the task's own, else the model reported on;
such a model is pushed with the rows, as a load's model is: push.py). A row the target already has is
left alone, so pushing again adds only what was reported since; a single value reported again here
(newer time) replaces the target's.
Uploaded images are objects like artifacts: push.py copies those in a local folder to the storage
URI under the same key (checked against their sha256) and points the pushed rows at the copies.
"""
from __future__ import annotations

import os
from typing import Any, Iterable

import sqlalchemy as sa

from .db import schema as s
from .storage.blobstore import normalize_uri
from .storage.layout import safe_component, task_prefix

KINDS = ("scalars", "single_values", "reports")
TABLES = {"scalars": s.scalars, "single_values": s.single_values, "reports": s.reports}
CHUNK = 500  # tasks per IN (...) query
INSERT_BATCH = 5_000


def _key(kind: str, row: dict) -> tuple:
    if kind == "single_values":
        return row["task_id"], row["model_id"], row["name"]
    if kind == "scalars":
        return row["task_id"], row["model_id"], row["title"], row["series"], row["iteration"], row["time"]
    return row["task_id"], row["model_id"], row["kind"], row["title"], row["series"], row["iteration"], row["time"]


def _rows(conn: sa.Connection, kind: str, task_ids: list[str], columns: Iterable[str] | None = None) -> dict:
    """{natural key: row} of these tasks' rows of one kind (columns: only these, else all but id)."""
    table = TABLES[kind]
    names = list(columns) if columns is not None else [c.name for c in table.columns if c.name != "id"]
    found: dict[tuple, dict] = {}
    for i in range(0, len(task_ids), CHUNK):
        query = sa.select(*(table.c[n] for n in names)).where(table.c.task_id.in_(task_ids[i:i + CHUNK]))
        if "id" in table.c:
            query = query.order_by(table.c.id)
        for row in conn.execute(query).mappings():
            row = dict(row)
            found[_key(kind, row)] = row
    return found


def select(conn: sa.Connection, task_ids: list[str]) -> dict[str, dict]:
    """The rows to push of the chosen tasks (an uploaded image's row also carries its object's size)."""
    rows = {kind: _rows(conn, kind, task_ids) for kind in KINDS}
    for row in rows["reports"].values():
        if row["kind"] == "image":
            row["size"] = (row["body"] or {}).get("size") or 0
    return rows


_KEY_COLUMNS = {"scalars": ("task_id", "model_id", "title", "series", "iteration", "time"),
                "single_values": ("task_id", "model_id", "name", "time"),
                "reports": ("task_id", "model_id", "kind", "title", "series", "iteration", "time")}


def reported_models(rows: dict) -> set[str]:
    """The ids of the models the chosen tasks reported on (Model.report_scalar & co.)."""
    return {row["model_id"] for kind in KINDS for row in rows.get(kind, {}).values() if row.get("model_id")}


def decide(rows: dict, target: Any, plan: Any, report: Any) -> None:
    """Add to plan what the target lacks (or, for single values, holds an older value of); count it."""
    task_ids = sorted({key[0] for kind in KINDS for key in rows[kind]})
    existing: dict[str, dict] = {kind: {} for kind in KINDS}
    if target is not None and task_ids:
        with target.read() as conn:
            existing = {kind: _rows(conn, kind, task_ids, _KEY_COLUMNS[kind]) for kind in KINDS}
    for kind in KINDS:
        counts = report.counts.setdefault(kind, dict.fromkeys(("new", "updated", "existing"), 0))
        plan.inserts.setdefault(kind, [])
        plan.updates.setdefault(kind, [])
        for key, row in rows[kind].items():
            there = existing[kind].get(key)
            if there is None:
                plan.inserts[kind].append(row)
                counts["new"] += 1
            elif kind == "single_values" and row["time"] > there["time"]:
                plan.updates[kind].append(row)
                counts["updated"] += 1
            else:
                counts["existing"] += 1


def uploaded_images(plan: Any) -> list[tuple[str, dict]]:
    """("reports", row) of each image row to write whose object autolog uploaded (url= references are
    recorded where they are, not copied)."""
    return [("reports", row) for row in plan.inserts.get("reports", [])
            if row["kind"] == "image" and row["sha256"] and row["uri"]]


def own_key(row: dict, rows: dict) -> str:
    """The key of an image kept outside every known root (set_default_upload_destination)."""
    task = rows["tasks"][row["task_id"]]
    name = os.path.basename(normalize_uri(row["uri"]))
    return (f"{task_prefix(task['project'], task['name'], task['id'])}/reports/{safe_component(row['title'])}/"
            f"{safe_component(row['series'])}/{name}")


def write(conn: sa.Connection, plan: Any) -> None:
    """Insert the new rows (ids given by the target) and replace the updated single values; in push's
    transaction."""
    for kind, table in TABLES.items():
        columns = [c.name for c in table.columns if c.name != "id"]
        new = [{c: row[c] for c in columns} for row in plan.inserts.get(kind, [])]
        for i in range(0, len(new), INSERT_BATCH):
            conn.execute(table.insert(), new[i:i + INSERT_BATCH])
    t = s.single_values.c
    for row in plan.updates.get("single_values", []):
        owner = t.model_id == row["model_id"] if row["model_id"] else sa.and_(t.task_id == row["task_id"],
                                                                               t.model_id.is_(None))
        conn.execute(s.single_values.update().where(owner, t.name == row["name"])
                     .values(task_id=row["task_id"], value=row["value"], time=row["time"]))
