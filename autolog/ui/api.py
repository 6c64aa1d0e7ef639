"""The JSON API: one handler per route of the contract (README, "Web UI: `autolog ui`").

Handlers are plain functions of (Reader, path and query parameters) returning what the route answers; the
app (app.py) turns them into responses and every error into one line. Each handler reads through one
connection of the store (`Reader.read()`), so a page's queries see one state of the database.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from sqlalchemy.engine import Connection

from ..context import Context
from ..db import reporting
from . import downloads, lineage_graph, previews, queries, task_list
from .http import UIError, Unavailable
from .rows import artifact_row, configuration_view, model_row, parameters_view, run_info_view, task_detail_row

if TYPE_CHECKING:
    import numpy as np

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
    """Every series of the task, each downsampled to at most max_points points (min and max per bucket)."""
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
        for title, name, iterations, values in queries.scalar_series(conn, task_id):
            x, y = downsample(iterations, values, most)
            series.append({"title": title, "series": name, "x": x, "y": y})
    return {"series": series}


def downsample(iterations: "np.ndarray", values: "np.ndarray", most: int) -> tuple[list[int], list[float | None]]:
    """(x, y) of at most `most` points of a series, in order: the first, the last, and between them the
    lowest and the highest of each bucket (a spike stays visible, as in the full curve); NaN as None (a
    bucket of NaN only keeps one, so the gap stays)."""
    import numpy as np

    keep = np.arange(len(values))
    if len(values) > most:
        inner = values[1:-1]
        bounds = np.unique(np.linspace(0, len(inner), (most - 2) // 2 + 1).astype(np.int64))
        starts, sizes = bounds[:-1], np.diff(bounds)
        bucket = np.repeat(np.arange(len(starts)), sizes)  # each inner point's bucket
        nan = np.isnan(inner)
        low, high = np.where(nan, np.inf, inner), np.where(nan, -np.inf, inner)
        lows = _first_where(low == np.minimum.reduceat(low, starts)[bucket], bucket)
        highs = _first_where(high == np.maximum.reduceat(high, starts)[bucket], bucket)
        keep = np.unique(np.concatenate(([0], lows + 1, highs + 1, [len(values) - 1])))
    y = [None if v != v else v for v in values[keep].tolist()]
    return iterations[keep].tolist(), y


def _first_where(mask: "np.ndarray", bucket: "np.ndarray") -> "np.ndarray":
    """The index of the first True of mask in each bucket."""
    import numpy as np

    hits = np.flatnonzero(mask)
    _, first = np.unique(bucket[hits], return_index=True)
    return hits[first]


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

