"""Finding stored tasks with ClearML's calls: Task.get_task, Task.get_tasks and Task.query_tasks.

The arguments and `task_filter` keys mean what ClearML documents (task_filter.py lists them and what
they map to here). Differences, each deliberate:

- Nothing is archived here, so allow_archived changes nothing.
- get_task raises TaskNotFoundError (a ValueError) when no task matches, where ClearML returns None:
  a None would fail later, far from the query that found nothing.
- get_tasks returns every match (ClearML stops at 500: a server limit); newest first unless order_by says
  otherwise. query_tasks returns ids, or with additional_return_fields one dict per task.
"""
from __future__ import annotations

import dataclasses
import datetime
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .context import default_context
from .db import TaskRecord
from .errors import TaskNotFoundError

if TYPE_CHECKING:
    from .task import Task

__all__ = ["TaskLookup", "RETURN_FIELDS"]


def _time(value: float | None) -> datetime.datetime | None:
    return None if value is None else datetime.datetime.fromtimestamp(value, datetime.timezone.utc)


# What query_tasks' additional_return_fields may name (ClearML's field names), read from a task's row.
RETURN_FIELDS: dict[str, Callable[[TaskRecord], Any]] = {
    "id": lambda r: r.id, "name": lambda r: r.name, "project": lambda r: r.project,
    "project.name": lambda r: r.project, "status": lambda r: r.status, "status_message": lambda r: r.status_message,
    "type": lambda r: r.task_type, "tags": lambda r: list(r.tags or []), "comment": lambda r: r.comment,
    "created": lambda r: _time(r.created), "started": lambda r: _time(r.created),
    "completed": lambda r: _time(r.ended), "last_update": lambda r: _time(r.ended or r.created),
    "user": lambda r: (r.run_info or {}).get("user"), "output.destination": lambda r: r.output_uri,
    "script.entry_point": lambda r: (r.run_info or {}).get("script"),
    "script.version_num": lambda r: (r.run_info or {}).get("git_commit"),
    "script.branch": lambda r: (r.run_info or {}).get("git_branch"),
}


def _queries() -> tuple[Callable, Callable]:
    """The query builder and runner, imported on first use: they import SQLAlchemy, which
    `from autolog import Task` must not (Task.init opens the database in a background thread)."""
    from .db.task_query import find_tasks
    from .task_filter import build_query

    return find_tasks, build_query


class TaskLookup:
    """Mixed into Task: fetching stored tasks by id, or by project, name, tags and task_filter."""

    @classmethod
    def get_task(
        cls,
        task_id: str | None = None,
        project_name: str | None = None,
        task_name: str | None = None,
        tags: Sequence[str] | None = None,
        allow_archived: bool = True,
        task_filter: dict | None = None,
    ) -> "Task":
        """A task by id (or a unique prefix of one), else the newest task with exactly this project and name.

        task_id: when given, the other arguments are ignored (as in ClearML). tags: the task must have every
        one ("-tag" excludes). task_filter: more conditions, as for get_tasks; its order_by picks which task
        wins when several match (default: the newest). Raises TaskNotFoundError (a ValueError) if none does.
        """
        ctx = default_context()
        if task_id is not None:
            return cls._fetched(ctx, ctx.store.get_task(task_id))  # type: ignore[attr-defined]
        if project_name is None and task_name is None and not tags and not task_filter:
            raise ValueError("get_task needs task_id=, or project_name= and/or task_name= (or tags=, task_filter=).")
        find_tasks, build_query = _queries()
        query = build_query(project_name, task_name, tags, task_filter, exact_name=True)
        found = find_tasks(ctx.store, dataclasses.replace(query, limit=1))
        if not found:
            wanted = ", ".join(f"{k}={v!r}" for k, v in (("project_name", project_name), ("task_name", task_name),
                                                         ("tags", tags), ("task_filter", task_filter)) if v)
            raise TaskNotFoundError(f"No task matches {wanted}. List tasks with `autolog task list`.")
        return cls._fetched(ctx, found[0])  # type: ignore[attr-defined]

    @classmethod
    def get_tasks(
        cls,
        task_ids: Sequence[str] | None = None,
        project_name: str | Sequence[str] | None = None,
        task_name: str | None = None,
        tags: Sequence[str] | None = None,
        allow_archived: bool = True,
        task_filter: dict | None = None,
    ) -> list["Task"]:
        """Every matching task, newest first (or in task_filter's order_by).

        task_ids: these tasks, in this order (the other arguments are then ignored, as in ClearML).
        project_name: a project, or a list of them (exact names). task_name: a regular expression searched
        in the name, so "train" also finds "train-2"; "^train$" finds only "train". tags: every one must be
        present; "-tag" excludes. task_filter: status, type, user, order_by, page/page_size, search_text,
        ... (see autolog.task_filter). An unsupported key raises ValueError naming it.
        """
        ctx = default_context()
        if task_ids:
            ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
            return [cls._fetched(ctx, ctx.store.get_task(i)) for i in ids]  # type: ignore[attr-defined]
        find_tasks, build_query = _queries()
        records = find_tasks(ctx.store, build_query(project_name, task_name, tags, task_filter))
        return [cls._fetched(ctx, r) for r in records]  # type: ignore[attr-defined]

    @classmethod
    def query_tasks(
        cls,
        project_name: str | Sequence[str] | None = None,
        task_name: str | None = None,
        tags: Sequence[str] | None = None,
        additional_return_fields: Sequence[str] | None = None,
        task_filter: dict | None = None,
    ) -> list[str] | list[dict[str, Any]]:
        """The ids of the matching tasks (arguments as for get_tasks); with additional_return_fields, one
        dict per task holding "id" and those fields (names, status, dates as UTC datetimes, ...)."""
        fields = list(additional_return_fields or [])
        unknown = [f for f in fields if f not in RETURN_FIELDS]
        if unknown:
            raise ValueError(f"additional_return_fields cannot return {', '.join(map(repr, unknown))}. "
                             f"Fields: {', '.join(RETURN_FIELDS)}.")
        find_tasks, build_query = _queries()
        records = find_tasks(default_context().store, build_query(project_name, task_name, tags, task_filter))
        if not fields:
            return [r.id for r in records]
        return [{f: RETURN_FIELDS[f](r) for f in ["id", *fields]} for r in records]
