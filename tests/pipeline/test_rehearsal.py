"""The background start's head starts for a run's first rows and its end. It rehearses a first save's
statements (snapshots/rehearsal.py): a run that builds its model before it saves compiles none of the
statements its saves and its end write, and the rehearsal leaves nothing in the database. And it
checkpoints its own writes, so close() has only the run's rows left to copy into the database file."""
from __future__ import annotations

import logging
import shutil
import sqlite3
import threading

import pytest
import sqlalchemy as sa
import torch
from sqlalchemy.engine.interfaces import CacheStats

from autolog import Task, runtime
import pipeline_helpers
from pipeline_helpers import assert_stored_tensor, output_snapshots, tensor, wait_for_start

SMALL, STAGED = 16, 100_000  # read on the training thread (inline), and copied by the stager (400 KB)


def compiled_statements(engine: sa.Engine) -> list[str]:
    """The statements SQLAlchemy compiles from now on (a first use: not found in the engine's cache)."""
    compiled: list[str] = []

    def after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if context.cache_hit is CacheStats.CACHE_MISS:
            compiled.append(statement.split("\n")[0])

    sa.event.listen(engine, "after_cursor_execute", after)
    return compiled


@pytest.mark.parametrize("n", [SMALL, STAGED], ids=["inline", "staged"])
@pytest.mark.parametrize("output", ["local store", "remote store", "in place"])
def test_saves_after_the_start_compile_no_statement(local_store, remote_store, work, autolog_home, n, output):
    task = Task.init(project_name="pipeline", task_name="rehearsed",
                     output_uri={"local store": local_store, "remote store": remote_store}.get(output))
    wait_for_start(task)
    compiled = compiled_statements(runtime.live().ctx.store.engine)
    for step in range(3):  # back to back: a round takes one row or several (executemany)
        torch.save(tensor(step, n), work / "ckpt.pt")
    task.close()

    assert compiled == [], f"statements compiled by the saves or close(): {compiled}"
    snaps = output_snapshots(task, "ckpt.pt")
    assert [s.seq for s in snaps] == [1, 2, 3]
    if output != "in place":
        for step, snap in enumerate(snaps):
            assert_stored_tensor(snap, tensor(step, n))
    with sqlite3.connect(autolog_home / "autolog.db") as db:  # nothing of the rehearsal is left
        assert db.execute("SELECT source_path FROM models").fetchall() == [(str(work / "ckpt.pt"),)]
        assert db.execute("SELECT count(*) FROM snapshots").fetchall() == [(3,)]
        assert db.execute("SELECT status FROM tasks").fetchall() == [("completed",)]


@pytest.mark.postgres
def test_saves_after_the_start_compile_no_statement_on_postgresql(pg_url, local_store, work, monkeypatch):
    monkeypatch.setenv("AUTOLOG_DB_URL", pg_url)
    task = Task.init(project_name="pipeline", task_name="rehearsed", output_uri=local_store)
    wait_for_start(task)
    compiled = compiled_statements(runtime.live().ctx.store.engine)
    for step in range(3):
        torch.save(tensor(step, STAGED), work / "ckpt.pt")
    task.close()

    assert compiled == [], f"statements compiled by the saves or close(): {compiled}"
    assert [m.name for m in Task.get_task(task_id=task.id).models["output"]] == ["ckpt.pt"]
    assert [s.seq for s in output_snapshots(task, "ckpt.pt")] == [1, 2, 3]


@pytest.mark.parametrize("then", ["nothing", "a save", "close"])
def test_the_start_rehearses_only_while_no_save_came_and_the_run_goes_on(local_store, work, monkeypatch, then):
    """Once a save came, the recorder compiles the statements: a rehearsal beside it would only hold the
    database's write lock. Once close() began, no save will come and close() checkpoints itself."""
    rehearsed: list[object] = []
    monkeypatch.setattr(runtime, "rehearse_rounds", lambda *args: rehearsed.append(args))
    listed = threading.Event()
    import autolog.run_info

    real_list = autolog.run_info.installed_packages
    monkeypatch.setattr(autolog.run_info, "installed_packages", lambda: (listed.wait(60), real_list())[1])
    task = Task.init(project_name="pipeline", task_name="held start", output_uri=local_store)
    run = runtime.live()
    closing = threading.Thread(target=task.close)
    if then == "a save":
        torch.save(tensor(1), work / "ckpt.pt")  # while the start is held before its rehearsal
    elif then == "close":
        closing.start()
        pipeline_helpers.wait_until(lambda: run.closed, "close() to begin")
    listed.set()
    wait_for_start(task)
    if then != "close":
        torch.save(tensor(2), work / "ckpt.pt")
        closing.start()
    closing.join(60)

    assert len(rehearsed) == (1 if then == "nothing" else 0)
    assert Task.get_task(task_id=task.id).status == "completed"
    if then != "close":
        assert_stored_tensor(output_snapshots(task, "ckpt.pt")[-1], tensor(2))


def test_a_failed_rehearsal_is_no_warning_and_changes_nothing(local_store, work, autolog_home, tmp_path,
                                                               monkeypatch, caplog):
    """It is only a head start: the saves compile what they need, and the user hears nothing of it. The
    start's checkpoint is taken all the same."""
    def broken(*args):
        raise OSError("the rehearsal's database went away")

    monkeypatch.setattr(runtime, "rehearse_rounds", broken)  # AUTOLOG_STRICT=1 too: a failure here is no bug
    caplog.set_level(logging.DEBUG, logger="autolog")
    task = Task.init(project_name="pipeline", task_name="not rehearsed", output_uri=local_store)
    wait_for_start(task)
    shutil.copyfile(autolog_home / "autolog.db", tmp_path / "copy.db")  # the .db file alone
    torch.save(tensor(1), work / "ckpt.pt")
    task.close()

    with sqlite3.connect(tmp_path / "copy.db") as db:
        assert db.execute("SELECT name FROM tasks").fetchall() == [("not rehearsed",)]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any("head start" in r.getMessage() for r in caplog.records)
    assert_stored_tensor(output_snapshots(task, "ckpt.pt")[-1], tensor(1))


def test_the_start_leaves_its_rows_in_the_database_file(local_store, autolog_home, tmp_path):
    """The start's writes (the schema, the task's row, the package list: most of a run's log) are
    checkpointed in the background, so close() has only the run's own rows left to copy."""
    task = Task.init(project_name="pipeline", task_name="checkpointed", output_uri=local_store)
    wait_for_start(task)
    copy = tmp_path / "copy.db"
    shutil.copyfile(autolog_home / "autolog.db", copy)  # the .db file alone, without its log
    with sqlite3.connect(copy) as db:
        [(name, run_info)] = db.execute("SELECT name, run_info FROM tasks").fetchall()
    assert name == "checkpointed" and '"packages"' in run_info
    task.close()
