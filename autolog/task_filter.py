"""ClearML's task search vocabulary (get_task / get_tasks / query_tasks arguments and `task_filter`),
read into a `TaskQuery` (db/task_query.py).

Supported `task_filter` keys, as ClearML documents them:

- ``status``: a status or a list. Ours are ``running``, ``completed``, ``failed``; ClearML's
  ``in_progress`` means ``running``; its other statuses (``created``, ``queued``, ``stopped``,
  ``published``, ``closed``, ...) are accepted and match no task (autolog never gives them).
- ``type``: task types (``training``, ``testing``, ...). ``user``: user names (the OS user recorded in
  run_info; ClearML takes user ids). ``id``: task ids. ``name``: a regular expression, as task_name.
- ``tags``: added to the tags argument. ``system_tags``: no autolog task has system tags (nothing is
  archived), so a tag to include matches nothing and one to exclude ("-archived") changes nothing.
- ``order_by``: field names, "-" first for descending: ``created``/``started``, ``last_update``
  (the end of a task, else its start), ``completed``, ``name``, ``status``, ``type``, ``project``, ``id``.
- ``page`` (from 0) with ``page_size``. ``search_text``: a case-insensitive substring of name, comment
  or id. ``_all_`` / ``_any_``: ``dict(fields=[...], pattern=regex)``, searched case-insensitively in
  all / any of name, comment, id, project, status, type, user. ``only_fields``: accepted, unused.

Tags (the argument and the key): a task must have every listed tag (ClearML's get_tasks documents
this); "-tag" or "__$not", "tag" excludes one; "__$any" first asks for any one of them instead.
Any other key raises ValueError naming it and the supported ones.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

from .db.task_query import ORDER_COLUMNS, PATTERN_COLUMNS, FieldPattern, TagFilter, TaskQuery

__all__ = ["build_query", "FILTER_KEYS"]

OUR_STATUSES = ("running", "completed", "failed")
# ClearML's statuses: accepted, so that a script written for ClearML runs; only these three can match.
CLEARML_STATUSES = ("created", "queued", "in_progress", "stopped", "published", "publishing", "closed",
                    "failed", "completed", "unknown")
STATUS_ALIASES = {"in_progress": "running"}
FILTER_KEYS = ("status", "type", "user", "id", "name", "tags", "system_tags", "order_by", "page", "page_size",
               "search_text", "_all_", "_any_", "only_fields")
# Keys ClearML has that map to nothing here, with what to do instead.
UNSUPPORTED = {
    "parent": "autolog tasks have no parent task (a child process logs into its parent's task)",
    "project": "autolog has no project ids: pass project_name= (a name or a list of names)",
    "scroll_id": "pass page= and page_size= instead",
}


def build_query(project_name: str | Sequence[str] | None, task_name: str | None, tags: Sequence[str] | None,
                task_filter: dict | None, exact_name: bool = False) -> TaskQuery:
    """The TaskQuery for ClearML's arguments. exact_name: task_name is a name (get_task), not a regex."""
    flt = _check_filter(task_filter)
    if task_name is not None and "name" in flt:
        raise ValueError("Pass the task name once: task_name= or task_filter['name'], not both.")
    name = task_name if task_name is not None else flt.get("name")
    exact = exact_name and task_name is not None
    tag_values = [*_strings("tags", tags), *_strings("task_filter['tags']", flt.get("tags"))]
    ids = _strings("task_filter['id']", flt.get("id")) if "id" in flt else None
    if any(not t.startswith("-") for t in _strings("task_filter['system_tags']", flt.get("system_tags"))):
        ids = ()  # no task has a system tag to include
    offset, limit = _page(flt.get("page"), flt.get("page_size"))
    return TaskQuery(
        ids=None if ids is None else tuple(ids),
        projects=_projects(project_name),
        names=(name,) if exact else None,
        name_pattern=None if exact or name is None else _regex("task_name", name),
        statuses=_statuses(flt["status"]) if "status" in flt else None,
        types=tuple(_strings("task_filter['type']", flt["type"])) if "type" in flt else None,
        users=tuple(_strings("task_filter['user']", flt["user"])) if "user" in flt else None,
        search_text=_text("task_filter['search_text']", flt.get("search_text")),
        tags=_tag_filter(tag_values) if tag_values else None,
        patterns=tuple(_pattern(key, flt[key]) for key in ("_all_", "_any_") if flt.get(key) is not None),
        order_by=_order_by(flt["order_by"]) if flt.get("order_by") else (("created", True),),
        offset=offset,
        limit=limit,
    )


def _check_filter(task_filter: dict | None) -> dict:
    if task_filter is None:
        return {}
    if not isinstance(task_filter, dict):
        raise ValueError(f"task_filter must be a dict such as {{'status': ['completed']}}, got "
                         f"{type(task_filter).__name__}.")
    for key in task_filter:
        if key in UNSUPPORTED:
            raise ValueError(f"task_filter key {key!r} is not supported: {UNSUPPORTED[key]}.")
        if key not in FILTER_KEYS:
            raise ValueError(f"task_filter key {key!r} is not supported. Supported keys: {', '.join(FILTER_KEYS)}.")
    return task_filter


def _strings(what: str, value: Any) -> list[str]:
    """A string or a list of strings, as a list."""
    if value is None:
        return []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple, set, frozenset)) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{what} must be a string or a list of strings, got {value!r}.")
    return list(values)


def _text(what: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {value!r}.")
    return value or None


def _projects(project_name: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if project_name is None:
        return None
    return tuple(_strings("project_name", project_name))


def _regex(what: str, pattern: str) -> str:
    if not isinstance(pattern, str):
        raise ValueError(f"{what} must be a string (a regular expression), got {pattern!r}.")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{what} {pattern!r} is not a valid regular expression ({exc}). Task names are "
                         "matched as regular expressions: escape it with re.escape(), or use '^name$' for "
                         "an exact name.") from None
    return pattern


def _statuses(value: Any) -> tuple[str, ...]:
    statuses = _strings("task_filter['status']", value)
    for status in statuses:
        if status not in OUR_STATUSES and status not in CLEARML_STATUSES:
            raise ValueError(f"task_filter['status'] {status!r} is not a task status. autolog's are "
                             f"{', '.join(OUR_STATUSES)} (ClearML's in_progress is running).")
    return tuple(dict.fromkeys(STATUS_ALIASES.get(s, s) for s in statuses))


def _tag_filter(values: Iterable[str]) -> TagFilter:
    include: list[str] = []
    exclude: list[str] = []
    match_all, negate = True, False
    for value in values:
        if value in ("__$all", "__$and", "__$any", "__$or"):
            match_all = value in ("__$all", "__$and")
        elif value == "__$not":
            negate = True
        elif negate or value.startswith("-"):
            exclude.append(value if negate else value[1:])
            negate = False
        else:
            include.append(value)
    return TagFilter(include=tuple(include), exclude=tuple(exclude), match_all=match_all)


def _order_by(value: Any) -> tuple[tuple[str, bool], ...]:
    terms = []
    for field in _strings("task_filter['order_by']", value):
        name = field.lstrip("-+")
        if name not in ORDER_COLUMNS:
            raise ValueError(f"task_filter['order_by'] cannot order by {field!r}. Use one of "
                             f"{', '.join(ORDER_COLUMNS)}, with '-' first for descending (e.g. ['-last_update']).")
        terms.append((name, field.startswith("-")))
    return tuple(terms)


def _page(page: Any, page_size: Any) -> tuple[int, int | None]:
    """(offset, limit) of a page, as ClearML's server reads page (from 0) and page_size."""
    for what, value, low in (("page", page, 0), ("page_size", page_size, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ValueError(f"task_filter['{what}'] must be a whole number of at least {low}, got {value!r}.")
    if page_size is None:
        if page is not None:
            raise ValueError("task_filter['page'] needs task_filter['page_size'] too (the number of tasks per page).")
        return 0, None
    return (page or 0) * page_size, page_size


def _pattern(key: str, value: Any) -> FieldPattern:
    if not isinstance(value, dict) or set(value) - {"fields", "pattern"} or "pattern" not in value:
        raise ValueError(f"task_filter['{key}'] must be dict(fields=[...], pattern='regex'), got {value!r}.")
    fields = _strings(f"task_filter['{key}']['fields']", value.get("fields"))
    unknown = [f for f in fields if f not in PATTERN_COLUMNS]
    if unknown:
        raise ValueError(f"task_filter['{key}'] cannot search {', '.join(map(repr, unknown))}. "
                         f"Searchable fields: {', '.join(PATTERN_COLUMNS)}.")
    if not fields:
        raise ValueError(f"task_filter['{key}'] needs at least one field in fields=[...].")
    return FieldPattern(fields=tuple(fields), pattern=_regex(f"task_filter['{key}']['pattern']", value["pattern"]),
                        match_all=key == "_all_")
