"""TaskQuery: the task search behind Task.get_task / get_tasks / query_tasks, as one SQL query.

A query is plain data (`TaskQuery`); `find_tasks` turns it into SQL that runs alike on SQLite and
PostgreSQL. Regular expressions use the database's own operator (SQLite's REGEXP is Python's `re.search`,
which SQLAlchemy registers on each connection; PostgreSQL's `~` is a POSIX ARE, the same for the
patterns names use). Only the tag filter runs in Python, on the rows SQL selected: tags are a JSON list,
and matching list members portably in SQL costs more than it saves at the size of a task table.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import sqlalchemy as sa

from . import schema as s
from .records import TaskRecord

if TYPE_CHECKING:
    from .store import MetadataStore

__all__ = ["FieldPattern", "TagFilter", "TaskQuery", "find_tasks", "ORDER_COLUMNS", "PATTERN_COLUMNS"]


def _last_update() -> sa.ColumnElement:
    # No row tracks every change: a task's last update is taken as its end, else its start.
    return sa.func.coalesce(s.tasks.c.ended, s.tasks.c.created)


# What order_by may name: ClearML's field names and ours, each to an expression.
ORDER_COLUMNS = {
    "created": lambda: s.tasks.c.created, "started": lambda: s.tasks.c.created,
    "last_update": _last_update, "last_change": _last_update,
    "completed": lambda: s.tasks.c.ended, "ended": lambda: s.tasks.c.ended,
    "name": lambda: s.tasks.c.name, "status": lambda: s.tasks.c.status, "type": lambda: s.tasks.c.task_type,
    "project": lambda: s.tasks.c.project, "project.name": lambda: s.tasks.c.project, "id": lambda: s.tasks.c.id,
}

# What an _all_ / _any_ pattern may search: ClearML's field names mapped to our columns.
PATTERN_COLUMNS = {
    "name": lambda: s.tasks.c.name, "comment": lambda: s.tasks.c.comment, "id": lambda: s.tasks.c.id,
    "project": lambda: s.tasks.c.project, "project.name": lambda: s.tasks.c.project,
    "status": lambda: s.tasks.c.status, "type": lambda: s.tasks.c.task_type,
    "user": lambda: s.tasks.c.run_info["user"].as_string(),
}


@dataclass(frozen=True)
class TagFilter:
    """include: tags to look for (every one when match_all, else any one); exclude: tags a task must not have."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    match_all: bool = True

    def matches(self, tags: Sequence[str]) -> bool:
        have = set(tags)
        if have.intersection(self.exclude):
            return False
        if not self.include:
            return True
        wanted = set(self.include)
        return wanted <= have if self.match_all else bool(wanted & have)


@dataclass(frozen=True)
class FieldPattern:
    """A regular expression searched (case-insensitive) in several fields: in every one, or in any one."""

    fields: tuple[str, ...]
    pattern: str
    match_all: bool


@dataclass(frozen=True)
class TaskQuery:
    """What to look for. None means "any"; every condition given must hold.

    names are exact names; name_pattern is a regular expression searched in the name (re.search: "train" matches "pretrain-2";
    "^train$" only "train"). search_text is a case-insensitive substring of the name, comment or id.
    order_by: (field of ORDER_COLUMNS, descending) pairs; the id always breaks ties.
    """

    ids: tuple[str, ...] | None = None
    projects: tuple[str, ...] | None = None
    names: tuple[str, ...] | None = None
    name_pattern: str | None = None
    statuses: tuple[str, ...] | None = None
    types: tuple[str, ...] | None = None
    users: tuple[str, ...] | None = None
    search_text: str | None = None
    tags: TagFilter | None = None
    patterns: tuple[FieldPattern, ...] = ()
    order_by: tuple[tuple[str, bool], ...] = (("created", True),)
    offset: int = 0
    limit: int | None = None


def find_tasks(store: "MetadataStore", query: TaskQuery) -> list[TaskRecord]:
    """The tasks matching query, in its order, its page only."""
    select = sa.select(s.tasks).where(*_conditions(query)).order_by(*_ordering(query.order_by))
    if query.tags is None:
        if query.offset:
            select = select.offset(query.offset)
        return store._all(TaskRecord, select.limit(query.limit))
    found = [t for t in store._all(TaskRecord, select) if query.tags.matches(t.tags or [])]
    end = None if query.limit is None else query.offset + query.limit
    return found[query.offset:end]


def _conditions(query: TaskQuery) -> list[sa.ColumnElement]:
    t = s.tasks.c
    where: list[sa.ColumnElement] = []
    for values, column in ((query.ids, t.id), (query.projects, t.project), (query.names, t.name),
                           (query.statuses, t.status),
                           (query.types, t.task_type), (query.users, t.run_info["user"].as_string())):
        if values is not None:
            where.append(column.in_(values))
    if query.name_pattern is not None:
        where.append(t.name.regexp_match(query.name_pattern))
    if query.search_text:
        text = query.search_text
        where.append(sa.or_(*(c.icontains(text, autoescape=True) for c in (t.name, t.comment, t.id))))
    for pattern in query.patterns:
        # "(?i)" is read as "ignore case" by Python's re (SQLite) and by PostgreSQL's AREs alike.
        each = [PATTERN_COLUMNS[f]().regexp_match("(?i)" + pattern.pattern) for f in pattern.fields]
        where.append(sa.and_(*each) if pattern.match_all else sa.or_(*each))
    return where


def _ordering(order_by: Sequence[tuple[str, bool]]) -> list[sa.ColumnElement]:
    terms = []
    for field, descending in order_by:
        column = ORDER_COLUMNS[field]()
        # NULLs (a running task's end) last both ways: SQLite and PostgreSQL default to opposite ends.
        terms.append(column.desc().nulls_last() if descending else column.asc().nulls_last())
    if not any(field == "id" for field, _ in order_by):
        terms.append(s.tasks.c.id)  # a stable order, so that pages neither repeat nor skip a task
    return terms
