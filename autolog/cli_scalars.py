"""`autolog task scalars TASK_ID`, and the scalars section of `autolog task show`.

    autolog task scalars TASK_ID           every series: title, series, values, last iteration, last/min/max
    autolog task scalars TASK_ID --json    the same with every value ("x": iterations, "y": values),
                                           and the single values; NaN and infinities are null
"""
from __future__ import annotations

import argparse
from typing import Any, Callable


def add_command(task_commands: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    """Register `task scalars` (command: cli._command, which adds --json)."""
    cmd = command(task_commands, "scalars", "a task's reported scalars and single values", task_scalars)
    cmd.add_argument("task_id")


def summaries(task: Any) -> list[dict[str, Any]]:
    """One dict per series: title, series, count, last_iteration, last, min, max (for --json)."""
    from .db import reporting

    store = task._store_after_reports()
    return [{"title": s.title, "series": s.series, "count": s.count, "last_iteration": s.last_iteration,
             "last": s.last, "min": s.min, "max": s.max} for s in reporting.scalar_summaries(store, task.id)]


def show_section(series: list[dict[str, Any]], table: Callable[[list[str], list[list[Any]]], str]) -> list[str]:
    """The lines `task show` adds: "scalars (N series)" and the last value of each."""
    lines = ["", f"scalars ({len(series)} series)"]
    if series:
        lines.append(table(["title", "series", "last", "iteration"],
                           [[s["title"], s["series"], _number(s["last"]), s["last_iteration"]] for s in series]))
    return lines


def task_scalars(args: argparse.Namespace) -> None:
    from .cli_format import emit, table
    from .task import Task

    task = Task.get_task(task_id=args.task_id)
    rows = summaries(task)
    singles = task.get_reported_single_values()
    data: dict[str, Any] = {"task": task.id, "series": rows, "single_values": singles}
    if args.json:
        points = task.get_reported_scalars()
        for row in rows:
            line = points.get(row["title"], {}).get(row["series"], {"x": [], "y": []})
            row.update(x=line["x"], y=line["y"])

    def human() -> str:
        lines = [f"scalars of task {task.id} ({len(rows)} series)",
                 table(["title", "series", "values", "last iter", "last", "min", "max"], [
                     [r["title"], r["series"], r["count"], r["last_iteration"], _number(r["last"]), _number(r["min"]),
                      _number(r["max"])] for r in rows])]
        if singles:
            lines += ["", f"single values ({len(singles)})",
                      table(["name", "value"], [[name, _number(v)] for name, v in singles.items()])]
        return "\n".join(lines)

    emit(args, data, human)


def _number(value: float) -> str:
    """A value as a table shows it: 6 significant digits; nan, inf and -inf as such."""
    return f"{value:.6g}"
