"""Task's reporting calls (ClearML's Logger side): get_logger() and what was reported, read back.

Reads go to the store; reading the task this process is running first writes what its Logger still
buffers, so that a value reported just before is read back. ReportReaders (scalars, single values,
plots) serve models too (model_reporting.py): each reads its owner's rows only.
"""
from __future__ import annotations

import datetime
import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import Context
    from .logger import Logger

X_AXES = ("iter", "timestamp", "iso_time")


class ReportReaders:
    """What a task or a model recorded, read back in ClearML's shapes. The class mixing it in says whose
    rows to read (_report_owner) and writes what this process still buffers first (_store_after_reports)."""

    id: str
    _ctx: "Context"

    def _report_owner(self) -> Any:
        """A task id, or a db.reporting.Owner."""
        raise NotImplementedError

    def _store_after_reports(self) -> Any:
        raise NotImplementedError

    # -- scalars -------------------------------------------------------------------------------
    def get_reported_scalars(self, max_samples: int = 0, x_axis: str = "iter") -> dict[str, dict[str, dict[str, list]]]:
        """{title: {series: {"name": series, "x": [...], "y": [...]}}}, by iteration. NaN and inf read back
        as such. x_axis: "iter" (default), "timestamp" (ms since the epoch) or "iso_time" (UTC, ISO 8601).
        max_samples: 0 for every value; else at most this many per series, each the mean of a window
        of consecutive values (x: the window's first)."""
        if x_axis not in X_AXES:
            raise ValueError(f"x_axis must be one of {', '.join(X_AXES)}, got {x_axis!r}.")
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 0:
            raise ValueError(f"max_samples must be a whole number, 0 for all values; got {max_samples!r}.")
        result: dict[str, dict[str, dict[str, list]]] = {}
        lines = _queries().scalar_points(self._store_after_reports(), self._report_owner())
        for (title, series), points in lines.items():
            xs = [_x(point, x_axis) for point in points]
            ys = [point[1] for point in points]
            if max_samples and len(points) > max_samples:
                xs, ys = _downsample(xs, ys, max_samples)
            result.setdefault(title, {})[series] = {"name": series, "x": xs, "y": ys}
        return result

    def get_all_reported_scalars(self, x_axis: str = "iter") -> dict[str, dict[str, dict[str, list]]]:
        """Every reported value (get_reported_scalars with no sampling)."""
        return self.get_reported_scalars(0, x_axis)

    def get_last_scalar_metrics(self) -> dict[str, dict[str, dict[str, float]]]:
        """{title: {series: {"last": value at the highest iteration, "min": ..., "max": ...}}}; min and max
        leave NaN out (NaN only when every value is)."""
        result: dict[str, dict[str, dict[str, float]]] = {}
        for row in _queries().scalar_summaries(self._store_after_reports(), self._report_owner()):
            result.setdefault(row.title, {})[row.series] = {"last": row.last, "min": row.min, "max": row.max}
        return result

    def get_reported_single_values(self) -> dict[str, float]:
        """{name: value} of report_single_value."""
        return _queries().single_values(self._store_after_reports(), self._report_owner())

    def get_reported_single_value(self, name: str) -> float | None:
        """One single value by name; None when it was not reported."""
        return self.get_reported_single_values().get(name)

    # -- plots ---------------------------------------------------------------------------------
    def get_reported_plots(self, max_iterations: int | None = None) -> list[dict[str, Any]]:
        """Plots and tables, oldest first, as ClearML returns them: {"metric", "variant", "iter",
        "timestamp" (ms), "plot_str" (the plotly figure as JSON)}; only the last max_iterations
        iterations when given."""
        found = _queries().reports_of(self._store_after_reports(), self._report_owner(), kinds=("plot", "table"))
        if max_iterations:
            last = sorted({r.iteration for r in found})[-int(max_iterations):]
            found = [r for r in found if r.iteration in last]
        return [{"metric": r.title, "variant": r.series, "iter": r.iteration, "timestamp": int(r.time * 1000),
                 "type": "plot", "plot_str": json.dumps(_table_figure(r.body) if r.kind == "table" else r.body)}
                for r in found]


class TaskReporting(ReportReaders):
    """Mixed into Task: the logger of a task and the scalars, single values and reports it recorded."""

    def _report_owner(self) -> Any:
        return self.id

    def get_logger(self) -> "Logger":
        """The task's Logger (one per task). Reporting through it needs the task to be running in this
        process; a task fetched with Task.get_task() reads only."""
        from .logger import Logger

        logger = getattr(self, "_logger", None)
        if logger is None:
            logger = self._logger = Logger(self)  # type: ignore[arg-type]
        return logger

    @property
    def logger(self) -> "Logger":
        """The task's Logger (task.get_logger())."""
        return self.get_logger()

    def _store_after_reports(self) -> Any:
        """The store, once what this process still buffers for this task is written."""
        from . import runtime

        for run in (getattr(self, "_runtime", None), runtime.live()):
            writer = getattr(run, "reporter", None)
            if writer is not None and run.task_id == self.id and not writer.closed:  # type: ignore[union-attr]
                writer.drain()
        return self._ctx.store

    # -- reports -------------------------------------------------------------------------------
    def get_reported_console_output(self, number_of_reports: int = 1) -> list[str]:
        """The last number_of_reports texts of report_text, oldest first."""
        number = max(int(number_of_reports), 0)
        texts = _queries().last_texts(self._store_after_reports(), self.id, number) if number else []
        return [r.body.get("text", "") for r in texts]

    def get_debug_samples(self, title: str, series: str, n_last_iterations: int | None = None) -> list[dict[str, Any]]:
        """Debug samples (report_image, report_media) of one title/series, newest first: {"metric",
        "variant", "iter", "url", "timestamp", "sha256"} ("url" is None for one whose upload failed:
        "error" says why)."""
        queries = _queries()
        found = queries.reports_of(self._store_after_reports(), self.id, queries.DEBUG_SAMPLES, title, series)
        if n_last_iterations:
            last = sorted({r.iteration for r in found})[-int(n_last_iterations):]
            found = [r for r in found if r.iteration in last]
        return [dict({"metric": r.title, "variant": r.series, "iter": r.iteration, "url": r.uri,
                      "timestamp": int(r.time * 1000), "sha256": r.sha256},
                     **({"error": r.body["error"]} if "error" in r.body else {})) for r in reversed(found)]


def _queries() -> Any:
    """db.reporting, imported on first use: `from autolog import Task` must not load SQLAlchemy."""
    from .db import reporting

    return reporting


def _x(point: tuple[int, float, float], axis: str) -> Any:
    iteration, _value, time = point
    if axis == "iter":
        return iteration
    if axis == "timestamp":
        return int(time * 1000)
    return datetime.datetime.fromtimestamp(time, datetime.timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


def _downsample(xs: list, ys: list[float], samples: int) -> tuple[list, list[float]]:
    """samples windows of consecutive values; each the mean of its window, at its first x."""
    n = len(xs)
    bounds = [i * n // samples for i in range(samples + 1)]
    pairs = [(xs[a], math.fsum(ys[a:b]) / (b - a)) for a, b in zip(bounds, bounds[1:]) if b > a]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _table_figure(body: dict) -> dict[str, Any]:
    """A table report as a plotly table figure (columns of cells), as ClearML stores tables."""
    columns = body.get("columns", [])
    rows = body.get("rows", [])
    cells = [[row[i] if i < len(row) else None for row in rows] for i in range(len(columns))]
    figure = {"data": [{"type": "table", "header": {"values": columns}, "cells": {"values": cells}}],
              "layout": body.get("extra_layout") or {}}
    if body.get("extra_data"):
        figure["data"][0].update(body["extra_data"])
    return figure
