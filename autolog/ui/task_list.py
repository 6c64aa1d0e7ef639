"""The task list: filters and sorts as one SQL query, paged by keyset (never OFFSET).

A page ends with the sort key of its last task; the cursor carries that key (and the id, which breaks
ties), so the next page starts with `WHERE (key, id) < (last key, last id)` and the database reads from
that point of the sort's index, not past every earlier task: page 1,000 costs what page 1 does.

Sorts, each with its index (schema.py, ending with the id): created (ix_tasks_created), name
(ix_tasks_name), status (status, then created: ix_tasks_status_created), duration (ended - created; a
running task has no end yet and sorts as the longest: ix_tasks_duration, on schema.DURATION).

A text filter (q, tag) is one scan of a narrow index (_matching). `total` is counted on the first page
(no cursor) and carried in the cursor to the pages after it: counting every matching task is a scan of
them, which later pages need not repeat (a later page's total is the count when the first was read).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..db import schema as s
from .http import UIError
from .rows import TASK_COLUMNS, task_row

STATUSES = ("running", "completed", "failed")
DEFAULT_LIMIT, MAX_LIMIT = 50, 500
DEFAULT_SORT = "-created"
HIT_LIST = 2000  # a text filter matching at most this many tasks reads its page by key (_matching)

t = s.tasks.c
# The sort keys of each sort, most significant first; the id always breaks ties.
_KEYS: dict[str, Callable[[], list[sa.ColumnElement]]] = {
    "created": lambda: [t.created, t.id],
    "name": lambda: [t.name, t.id],
    "status": lambda: [t.status, t.created, t.id],
    "duration": lambda: [s.DURATION, t.id],
}
_NUMERIC = {"created": (True, False), "name": (False, False), "status": (False, True, False),
            "duration": (True, False)}  # per key: a number (else text)
SORTS = tuple(f"{sign}{name}" for name in _KEYS for sign in ("", "-"))


@dataclass(frozen=True)
class TaskFilter:
    """What the list shows: None = any. q is a case-insensitive substring of the name or project."""

    project: str | None = None
    status: str | None = None
    tag: str | None = None
    q: str | None = None

    def fingerprint(self) -> str:
        """A short digest of the filter, carried in the cursor: a cursor taken under another filter
        would start the page at a task that list does not hold."""
        text = json.dumps([self.project, self.status, self.tag, self.q])
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Page:
    tasks: list[dict[str, Any]]
    next_cursor: str | None
    total: int | None


def parse_request(query: Mapping[str, str]) -> tuple[TaskFilter, str, str | None, int]:
    """(filter, sort, cursor, limit) from the query string; UIError(400) naming a bad parameter."""
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        raise UIError(400, f"status={status!r} is not a task status: use one of {', '.join(STATUSES)}.")
    sort = query.get("sort") or DEFAULT_SORT
    if sort not in SORTS:
        raise UIError(400, f"sort={sort!r} is not a sort of the task list: use one of {', '.join(SORTS)}.")
    limit_text = query.get("limit") or str(DEFAULT_LIMIT)
    try:
        limit = int(limit_text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise UIError(400, f"limit={limit_text!r} must be a whole number from 1 to {MAX_LIMIT}.")
    found = TaskFilter(project=query.get("project") or None, status=status, tag=query.get("tag") or None,
                       q=query.get("q") or None)
    return found, sort, query.get("cursor") or None, limit


def list_tasks(conn: Connection, where: TaskFilter, sort: str, cursor: str | None, limit: int) -> Page:
    """One page of tasks (limit of them), and the cursor of the next page (None on the last)."""
    name, descending = sort.lstrip("-"), sort.startswith("-")
    keys = _KEYS[name]()
    conditions = _conditions(conn, where)
    values, total = _decode(cursor, name, where) if cursor is not None else (None, None)
    hits = None
    if where.q is not None or where.tag is not None:  # text tests, which no index orders: see _matching
        hits = _matching(conn, conditions) if total is None or total <= HIT_LIST else None
        total = len(hits) if total is None else total
    elif total is None:
        total = conn.execute(sa.select(sa.func.count()).select_from(s.tasks).where(*conditions)).scalar_one()
    query = sa.select(*TASK_COLUMNS, *(k.label(f"_k{i}") for i, k in enumerate(keys)))
    if hits is not None and len(hits) <= HIT_LIST:
        query = query.where(_row_key(conn).in_(hits))  # the few matching rows, by key
    else:
        query = query.where(*conditions)  # many match: walking the sort's index finds a page at once
    if values is not None:
        query = query.where(*_after(keys, values, descending))
    order = [k.desc() if descending else k.asc() for k in keys]
    rows = conn.execute(query.order_by(*order).limit(limit + 1)).mappings().all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode(name, [rows[-1][f"_k{i}"] for i in range(len(keys))], where, total) if more else None
    return Page([task_row(r) for r in rows], next_cursor, total)


def _matching(conn: Connection, conditions: list[sa.ColumnElement]) -> list[Any]:
    """The keys of every task matching a text filter (q, tag), from one scan.

    A substring or a tag is tested row by row. Walking the sort's index and testing each task finds a
    page at once when many match, but reads every task when few do; a scan of a narrow index (SQLite:
    project-name-created for q, ix_tasks_tags for a tag; never the wide rows) costs the same either way
    and gives the count too. So: one scan; up to HIT_LIST matches, the page is read by key; above that,
    by walking the sort's index (the matches are dense then)."""
    return list(conn.execute(sa.select(_row_key(conn)).where(*conditions)).scalars())


def _row_key(conn: Connection) -> sa.ColumnElement:
    """SQLite's rowid (in every index entry, so a covering index's scan yields it), else the id."""
    return sa.literal_column("tasks.rowid") if conn.dialect.name == "sqlite" else t.id


def _contains(conn: Connection, column: sa.ColumnElement, text: str) -> sa.ColumnElement:
    """column holds text, ignoring case. SQLite's LIKE ignores ASCII case already (and its lower() knows
    no more), so the column is not wrapped in lower(): its index entries are read as they are."""
    if conn.dialect.name == "sqlite":
        return column.contains(text, autoescape=True)
    return column.icontains(text, autoescape=True)


def _conditions(conn: Connection, where: TaskFilter) -> list[sa.ColumnElement]:
    found: list[sa.ColumnElement] = []
    if where.project is not None:
        found.append(t.project == where.project)
    if where.status is not None:
        found.append(t.status == where.status)
    if where.q is not None:
        found.append(sa.or_(_contains(conn, t.name, where.q), _contains(conn, t.project, where.q)))
    if where.tag is not None:
        found.extend(_has_tag(conn, where.tag))
    return found


def _has_tag(conn: Connection, tag: str) -> list[sa.ColumnElement]:
    """The tag among the task's tags (a JSON list), exactly: a cheap text test first (the tag's JSON text
    inside the list's), then the exact one on the few rows that pass it."""
    text = sa.cast(t.tags, sa.Text).contains(json.dumps(tag), autoescape=True)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        return [text, sa.cast(t.tags, JSONB).has_key(tag)]
    each = sa.func.json_each(t.tags).table_valued("value")
    return [text, sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == tag))]


def _after(keys: list[sa.ColumnElement], values: list[Any], descending: bool) -> list[sa.ColumnElement]:
    """The tasks after the cursor's: the row value (key, ..., id) past the cursor's, plus the same test on
    the first key alone, which a planner reads as a range of that key's index."""
    if descending:
        return [keys[0] <= values[0], sa.tuple_(*keys) < sa.tuple_(*values)]
    return [keys[0] >= values[0], sa.tuple_(*keys) > sa.tuple_(*values)]


def _encode(sort: str, values: list[Any], where: TaskFilter, total: int | None) -> str:
    text = json.dumps([sort, where.fingerprint(), total, *values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str, sort: str, where: TaskFilter) -> tuple[list[Any], int | None]:
    """(the sort key values, the total) a cursor carries; UIError(400) for one that is not a cursor of this list."""
    bad = UIError(400, "cursor= is not a cursor of this list (another sort or filter, or altered): "
                       "load the list again without cursor=.")
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    kinds = _NUMERIC[sort]
    if not isinstance(data, list) or len(data) != 3 + len(kinds) or data[:2] != [sort, where.fingerprint()]:
        raise bad
    total, values = data[2], data[3:]
    if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < 0):
        raise bad
    for value, numeric in zip(values, kinds):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) if numeric else isinstance(value, str)
        if not ok:
            raise bad
    return values, total
