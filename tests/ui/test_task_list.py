"""The task list of `autolog ui`: 1,000 tasks paged through with every sort and some filters (keyset
cursors: no task twice, none skipped, the order the sort promises), and every bad parameter refused."""
from __future__ import annotations

import random
import uuid

import pytest


from ui_helpers import assert_error, json_ok, make_client

N = 1000
BIG = 1e308  # a running task's duration in the sort: the longest


@pytest.fixture
def tasks():
    """1,000 rows as Task.init and close write them, with ties in every sort key (ids break them)."""
    from autolog.context import default_context
    from autolog.db import schema as s

    rng = random.Random(7)
    base = 1_700_000_000.0
    rows = []
    for i in range(N):
        status = ("completed", "failed", "running")[i % 3 if i % 10 else 2]
        created = base + (i // 3)  # three tasks per second: ties on created
        ended = None if status == "running" else created + rng.choice([5.0, 10.0, 10.0, 60.5, 3600.0])
        rows.append(dict(id=uuid.uuid4().hex, project=f"p{i % 5}", name=f"run-{i % 97:03d}", task_type="training",
                         status=status, status_message=None, output_uri=None, created=created, ended=ended,
                         tags=["gold"] if i % 7 == 0 else (["silver", "x"] if i % 7 == 1 else []),
                         run_info={"user": "u", "host": "h"}, parameters={}, comment=""))
    with default_context().store.engine.begin() as conn:
        conn.execute(s.tasks.insert(), rows)
    return rows


def _key(sort: str):
    duration = lambda r: BIG if r["ended"] is None else r["ended"] - r["created"]  # noqa: E731
    keys = {"created": lambda r: (r["created"], r["id"]), "name": lambda r: (r["name"], r["id"]),
            "status": lambda r: (r["status"], r["created"], r["id"]), "duration": lambda r: (duration(r), r["id"])}
    return keys[sort.lstrip("-")]


def _walk(client, query: str, limit: int) -> tuple[list[str], set]:
    """Every id of the list, page by page; and the totals the pages gave."""
    ids, totals, cursor = [], set(), None
    for _ in range(N):
        page = json_ok(client, f"/api/tasks?{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        assert len(page["tasks"]) <= limit
        ids += [t["id"] for t in page["tasks"]]
        totals.add(page["total"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids, totals
    raise AssertionError("the list never ended")


@pytest.mark.parametrize("sort", ["created", "-created", "name", "-name", "status", "-status", "duration",
                                  "-duration"])
def test_paging_through_1000_tasks_in_each_sort(tasks, sort):
    with make_client() as client:
        ids, totals = _walk(client, f"sort={sort}", 37)
    expected = [r["id"] for r in sorted(tasks, key=_key(sort), reverse=sort.startswith("-"))]
    assert ids == expected  # each once, none skipped, in the order of the sort and its tie-break
    assert totals == {N}  # counted on the first page, carried by the cursor


@pytest.mark.parametrize("query, keep", [
    ("status=running&sort=-duration", lambda r: r["status"] == "running"),
    ("project=p3&sort=name", lambda r: r["project"] == "p3"),
    ("tag=gold&sort=created", lambda r: "gold" in r["tags"]),
    ("tag=x&sort=-status", lambda r: "x" in r["tags"]),
    ("q=RUN-01&sort=-name", lambda r: "run-01" in r["name"]),
    ("q=p4&status=failed&sort=duration", lambda r: r["project"] == "p4" and r["status"] == "failed"),
])
def test_filters_page_through_exactly_the_matching_tasks(tasks, query, keep):
    sort = query.rsplit("sort=", 1)[1]
    with make_client() as client:
        ids, totals = _walk(client, query, 11)
    expected = [r["id"] for r in sorted(filter(keep, tasks), key=_key(sort), reverse=sort.startswith("-"))]
    assert ids == expected and totals == {len(expected)} and expected


def test_text_filters_matching_many_walk_the_sort_index(tasks, monkeypatch):
    from autolog.ui import task_list

    monkeypatch.setattr(task_list, "HIT_LIST", 5)  # every filter below matches more: the other way is taken
    for query, keep in (("q=run-0&sort=-created", lambda r: "run-0" in r["name"]),
                        ("tag=gold&sort=name", lambda r: "gold" in r["tags"])):
        sort = query.rsplit("sort=", 1)[1]
        with make_client() as client:
            ids, totals = _walk(client, query, 23)
        expected = [r["id"] for r in sorted(filter(keep, tasks), key=_key(sort), reverse=sort.startswith("-"))]
        assert ids == expected and totals == {len(expected)} and len(expected) > 5


def test_a_tag_is_matched_whole_not_as_text(tasks):
    with make_client() as client:
        assert json_ok(client, "/api/tasks?tag=gol")["total"] == 0
        assert json_ok(client, "/api/tasks?tag=%22gold%22")["total"] == 0
        assert json_ok(client, "/api/tasks?tag=silver")["total"] == len([r for r in tasks if "silver" in r["tags"]])


def test_defaults_limit_and_page_size(tasks):
    with make_client() as client:
        page = json_ok(client, "/api/tasks")
        assert len(page["tasks"]) == 50 and page["total"] == N and page["next_cursor"]
        newest = sorted(tasks, key=_key("created"), reverse=True)
        assert [t["id"] for t in page["tasks"]] == [r["id"] for r in newest[:50]]
        assert len(json_ok(client, "/api/tasks?limit=500")["tasks"]) == 500


@pytest.mark.parametrize("query, named", [
    ("sort=size", "sort"), ("sort=-", "sort"), ("limit=0", "limit"), ("limit=501", "limit"), ("limit=ten", "limit"),
    ("limit=-3", "limit"), ("status=done", "status"), ("cursor=%%%", "cursor"), ("cursor=eyJhIjoxfQ", "cursor"),
])
def test_bad_values_are_400_naming_the_parameter(tasks, query, named):
    with make_client() as client:
        assert_error(client.get(f"/api/tasks?{query}"), 400, named)


def test_a_cursor_of_another_sort_or_filter_is_refused(tasks):
    with make_client() as client:
        cursor = json_ok(client, "/api/tasks?sort=name&limit=5")["next_cursor"]
        assert json_ok(client, f"/api/tasks?sort=name&limit=5&cursor={cursor}")["tasks"]
        assert_error(client.get(f"/api/tasks?sort=created&cursor={cursor}"), 400, "cursor")
        assert_error(client.get(f"/api/tasks?sort=name&status=failed&cursor={cursor}"), 400, "cursor")
        edited = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
        assert client.get(f"/api/tasks?sort=name&cursor={edited}").status_code in (200, 400)  # never a 500
