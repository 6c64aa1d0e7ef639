"""The JSON API: one handler per route of the contract (README, "Web UI: `autolog ui`").

Handlers are plain functions of (Reader, path and query parameters) returning what the route answers; the
app (app.py) turns them into responses and every error into one line. Each handler reads through one
connection of the store (`Reader.read()`), so a page's queries see one state of the database.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

from sqlalchemy.engine import Connection

from ..context import Context
from ..db import reporting
from . import downloads, lineage_graph, previews, queries, task_list
from .http import UIError, Unavailable
from .rows import artifact_row, configuration_view, model_row, parameters_view, run_info_view, task_detail_row

DEFAULT_POINTS, MAX_POINTS = 2000, 100_000


class Reader:
    """The store the app reads, opened on first use (and again after a failure: a database that was
    down at start is read once it is back)."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        store = self.ctx.store
        try:
            store.engine  # noqa: B018 - opening it here tells "cannot open" apart from a failing query
        except Exception as exc:  # noqa: BLE001 - whatever stops opening it (down, bad URL, newer schema)
            raise Unavailable(f"The metadata database cannot be opened: {exc}") from None
        with store.read() as conn:
            yield conn


def projects(reader: Reader) -> dict[str, Any]:
    with reader.read() as conn:
        return {"projects": queries.projects(conn)}


def tasks(reader: Reader, query: Mapping[str, str]) -> dict[str, Any]:
    where, sort, cursor, limit = task_list.parse_request(query)
    with reader.read() as conn:
        page = task_list.list_tasks(conn, where, sort, cursor, limit)
    return {"tasks": page.tasks, "next_cursor": page.next_cursor, "total": page.total}


def task(reader: Reader, task_id: str) -> dict[str, Any]:
    """Everything the task page shows."""
    with reader.read() as conn:
        record = queries.task_record(conn, task_id)
        artifacts = queries.artifacts_of(conn, task_id)
        inputs = queries.input_models(conn, task_id)
        outputs = queries.output_models(conn, task_id)
        summaries = queries.scalar_summaries(conn, task_id)
        values = reporting.single_values(reader.ctx.store, task_id)
    return {
        "task": task_detail_row(record), "run_info": run_info_view(record.run_info),
        "parameters": parameters_view(record.parameters), "configuration": configuration_view(record.configuration),
        "scalars": summaries, "single_values": values,
        "artifacts": [artifact_row(a) for a in artifacts], "input_models": inputs, "output_models": outputs,
    }


def scalars(reader: Reader, task_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    """Every series of the task, each at most max_points points: a longer one aggregated in SQL, the lowest
    and highest value of each bucket of iterations (queries.scalar_series)."""
    text = query.get("max_points") or str(DEFAULT_POINTS)
    try:
        most = int(text)
    except ValueError:
        most = 0
    if not 3 <= most <= MAX_POINTS:
        raise UIError(400, f"max_points={text!r} must be a whole number from 3 to {MAX_POINTS}.")
    series = []
    with reader.read() as conn:
        queries.require(conn, "task", task_id)
        for title, name, x, y in queries.scalar_series(conn, task_id, most):
            series.append({"title": title, "series": name, "x": x, "y": y})
    return {"series": series}


def model(reader: Reader, model_id: str) -> dict[str, Any]:
    with reader.read() as conn:
        record = queries.model_record(conn, model_id)
        producer = queries.task_rows(conn, {record.task_id} if record.task_id else set())
        snapshots = queries.snapshots_of(conn, [model_id]).get(model_id, [])
        loads = queries.loaded_by(conn, model_id)
    return {"model": model_row(record), "task": producer.get(record.task_id or ""), "snapshots": snapshots,
            "loaded_by": loads}


def lineage(reader: Reader, query: Mapping[str, str]) -> dict[str, Any]:
    kind, ident, depth, max_nodes = lineage_graph.parse_request(dict(query))
    with reader.read() as conn:
        return lineage_graph.lineage(conn, kind, ident, depth, max_nodes)


def artifact_preview(reader: Reader, artifact_id: str) -> dict[str, Any]:
    with reader.read() as conn:
        record = queries.artifact_record(conn, artifact_id)
    return previews.preview(reader.ctx, record)


def artifact_download(reader: Reader, artifact_id: str) -> downloads.Outgoing:
    with reader.read() as conn:
        record = queries.artifact_record(conn, artifact_id)
    return downloads.artifact_download(reader.ctx, record)


def snapshot_download(reader: Reader, snapshot_id: str) -> downloads.Outgoing:
    with reader.read() as conn:
        snap = queries.snapshot_record(conn, snapshot_id)
        name = queries.model_record(conn, snap.model_id).name
    return downloads.snapshot_download(reader.ctx, snap, name)

