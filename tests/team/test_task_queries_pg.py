"""Task.get_tasks' task_filter on PostgreSQL: the SQL that differs by dialect (regular expressions with `~`,
the user read from the run_info JSON, case-insensitive search, NULL ends ordered last) answers as on SQLite."""
from __future__ import annotations

import getpass
import time

import pytest

from autolog import Task

pytestmark = [pytest.mark.postgres]


def test_task_filter_on_postgresql(pg_url, monkeypatch):
    monkeypatch.setenv("AUTOLOG_DB_URL", pg_url)
    for name in ("train", "pretrain", "Train-2", "eval"):
        Task.init(project_name="pg", task_name=name, auto_connect_frameworks=False).close()
        time.sleep(0.01)
    live = Task.init(project_name="pg", task_name="live", auto_connect_frameworks=False)  # ended is NULL

    def names(**kwargs):
        return [t.name for t in Task.get_tasks(project_name="pg", **kwargs)]

    assert names(task_name="train") == ["pretrain", "train"]  # a regex search, case-sensitive
    assert names(task_name=r"^[Tt]rain(-\d)?$") == ["Train-2", "train"]
    assert names(task_filter={"_any_": {"fields": ["name"], "pattern": "^train"}}) == ["Train-2", "train"]
    assert names(task_filter={"search_text": "RAIN-"}) == ["Train-2"]
    assert names(task_filter={"search_text": "_"}) == []  # a literal underscore, not LIKE's any-character
    assert len(names(task_filter={"user": [getpass.getuser()]})) == 5
    assert names(task_filter={"status": ["in_progress"]}) == ["live"]
    assert names(task_filter={"order_by": ["completed"]})[-1] == "live"  # NULL last ascending ...
    assert names(task_filter={"order_by": ["-completed"]})[-1] == "live"  # ... and descending
    assert names(task_filter={"order_by": ["-last_update"]})[0] == "live"  # its start is the newest change
    pages = [names(task_filter={"page": p, "page_size": 2, "order_by": ["created"]}) for p in range(3)]
    assert pages == [["train", "pretrain"], ["Train-2", "eval"], ["live"]]
    assert Task.get_task(project_name="pg", task_name="train").name == "train"
    live.close()
