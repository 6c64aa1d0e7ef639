"""What a flush that ends early says about saves not even journaled yet: no row exists for them, so
`autolog sync` could not finish them (telling the user to run it would be false)."""
from __future__ import annotations

import logging
import threading

import torch

from autolog import Task
from pipeline_helpers import tensor, wait_for_start


def test_a_flush_that_ends_before_the_journal_says_sync_cannot_finish_those(local_store, work, monkeypatch, caplog):
    task = Task.init(project_name="pipeline", task_name="slow journal", output_uri=local_store)
    wait_for_start(task)  # its rehearsal of the first rows writes pending rows too
    store = task._ctx.store
    release = threading.Event()
    real_add = store.add_snapshots

    def slow_add(rows):
        release.wait(60)  # the database is slow to take the journal rows
        return real_add(rows)

    monkeypatch.setattr(store, "add_snapshots", slow_add)
    torch.save(tensor(0), work / "a.pt")
    with caplog.at_level(logging.WARNING, logger="autolog"):
        assert task.flush(timeout=0.5) is False
    warning = "\n".join(r.getMessage() for r in caplog.records if "not even journaled" in r.getMessage())
    assert "1 save(s) not even journaled yet" in warning and "a.pt (not journaled)" in warning, caplog.text
    assert "cannot finish them" in warning
    assert "They are journaled" not in warning

    release.set()
    task.close()
    [model] = task.models["output"]
    assert [s.status for s in model.snapshots] == ["stored"]
