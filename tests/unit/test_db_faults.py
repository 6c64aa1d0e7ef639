"""Faults of the embedded SQLite database, on real files and real processes (nothing mocked):

* a lock another process holds (PRAGMA locking_mode=EXCLUSIVE, or a long write transaction) is
  reported within seconds as a lock, never as a file to move aside;
* checkpoint() leaves every row in the .db file itself, so a copy of that file alone is a backup;
* garbage in the middle pages of a database becomes one clear line, not SQLAlchemy's report.
"""
from __future__ import annotations

import contextlib
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from autolog.db import MetadataStore
from autolog.db import connection as connection_module
from autolog.db.version import preflight_check
from autolog.errors import AutologError, DatabaseCorruptError, DatabaseLockedError

# A second process that locks the database and keeps it locked.
#   exclusive: locking_mode=EXCLUSIVE plus a write, so even readers are kept out;
#   write:     an open BEGIN IMMEDIATE transaction, so other writers are kept out.
_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[2] == "exclusive":
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    conn.execute("CREATE TABLE IF NOT EXISTS held (x)")
    conn.execute("INSERT INTO held VALUES (1)")
else:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("CREATE TABLE IF NOT EXISTS held (x)")
print("held", flush=True)
time.sleep(120)
"""


@contextlib.contextmanager
def lock_held(path: Path, mode: str) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "held", f"the lock holder failed: {proc.stderr.read()}"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def make_task(store: MetadataStore, **overrides):
    values = dict(project="p", name="t", task_type="training", status="running", output_uri=None, tags=[],
                  run_info={}, parameters={}, comment="")
    values.update(overrides)
    return store.create_task(**values)


def closed(store: MetadataStore) -> None:
    if store._engine is not None:
        store._engine.dispose()
        store._engine = None


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "autolog.db"


@pytest.fixture
def healthy_db(db_path: Path) -> Path:
    """A real autolog database holding a task, with no connection left open."""
    st = MetadataStore(f"sqlite:///{db_path}")
    make_task(st)
    closed(st)
    return db_path


def assert_says_locked(message: str, path: Path) -> None:
    assert "\n" not in message
    assert str(path) in message
    assert "locked by another process" in message
    assert "fuser" in message
    assert "do not move it aside" in message
    assert "mv " not in message and "corrupt" not in message.lower()


# -- a lock held by another process --------------------------------------------------------------


def test_preflight_reports_a_lock_that_keeps_readers_out_within_seconds(healthy_db):
    url = f"sqlite:///{healthy_db}"
    with lock_held(healthy_db, "exclusive"):
        start = time.monotonic()
        with pytest.raises(DatabaseLockedError) as info:
            preflight_check(url)
        elapsed = time.monotonic() - start
    assert elapsed < 5, f"the pre-start check waited {elapsed:.1f} s"
    assert_says_locked(str(info.value), healthy_db)
    preflight_check(url)  # the lock is gone: the same, healthy database passes


def test_task_init_on_a_locked_database_fails_within_seconds(autolog_home, run_py):
    made = run_py("from autolog import Task; Task.init(project_name='p', task_name='first').close()")
    assert made.returncode == 0, made.stderr
    db = autolog_home / "autolog.db"
    assert db.is_file()
    code = """
        import time
        from autolog import Task
        start = time.monotonic()
        try:
            Task.init(project_name='p', task_name='second')
        except Exception as exc:
            print(type(exc).__name__)
            print(f"{time.monotonic() - start:.2f}")
            print(exc)
        else:
            print("no error")
    """
    with lock_held(db, "exclusive"):
        result = run_py(code)
    assert result.returncode == 0, result.stderr
    kind, elapsed, message = result.stdout.splitlines()[:3]
    assert kind == "DatabaseLockedError", result.stdout + result.stderr
    assert float(elapsed) < 5
    assert_says_locked(message, db)


def test_opening_the_store_on_a_locked_database_says_locked(healthy_db, monkeypatch):
    monkeypatch.setattr(connection_module, "BUSY_TIMEOUT_MS", 1000)  # the store's 60 s, shortened for the test
    st = MetadataStore(f"sqlite:///{healthy_db}")
    with lock_held(healthy_db, "exclusive"):
        with pytest.raises(DatabaseLockedError) as info:
            st.find_tasks()
    assert_says_locked(str(info.value), healthy_db)
    assert [t.name for t in st.find_tasks()] == ["t"]  # the lock is gone: the store opens
    closed(st)


def test_a_write_kept_out_by_another_process_says_locked_in_one_line(healthy_db, monkeypatch):
    monkeypatch.setattr(connection_module, "BUSY_TIMEOUT_MS", 1000)
    st = MetadataStore(f"sqlite:///{healthy_db}")
    st.find_tasks()  # opened before the other process takes the lock
    with lock_held(healthy_db, "write"):
        start = time.monotonic()
        with pytest.raises(sa.exc.OperationalError) as info:  # still retried by the pipeline's workers
            make_task(st, name="blocked")
        assert time.monotonic() - start < 10
    message = str(info.value)
    assert "INSERT" not in message and "[SQL" not in message
    assert_says_locked(message.removeprefix("(sqlite3.OperationalError) "), healthy_db)
    make_task(st, name="after")
    assert sorted(t.name for t in st.find_tasks()) == ["after", "t"]
    closed(st)


def test_opening_waits_out_a_writer_that_keeps_the_switch_to_wal_out(db_path):
    """SQLite answers `PRAGMA journal_mode=WAL` with "database is locked" at once, without its busy
    handler, while another connection holds a write lock on a rollback-journal file: what a brand-new
    database is until its first opener has switched it. Four processes opening one new database at
    once met that (1 in ~40 openers here); the opener must wait for the lock as any writer does."""
    legacy = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)  # rollback journal, as SQLite makes a file
    legacy.execute("CREATE TABLE other (x)")
    legacy.execute("BEGIN IMMEDIATE")
    threading.Timer(0.5, legacy.rollback).start()
    st = MetadataStore(f"sqlite:///{db_path}")
    start = time.monotonic()
    make_task(st, name="after the writer")
    assert 0.4 < time.monotonic() - start < 10
    assert [t.name for t in st.find_tasks()] == ["after the writer"]
    closed(st)
    legacy.close()


# -- checkpoint: the .db file alone is a backup --------------------------------------------------


def count_tasks_in(copy: Path) -> int:
    conn = sqlite3.connect(copy)
    try:
        return conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
    except sqlite3.DatabaseError:  # no tasks table at all: it is still in the log
        return 0
    finally:
        conn.close()


def test_checkpoint_leaves_every_row_in_the_db_file(db_path, tmp_path):
    st = MetadataStore(f"sqlite:///{db_path}")
    ids = {make_task(st, name=f"t{i}").id for i in range(20)}
    wal = Path(f"{db_path}-wal")
    assert wal.exists() and wal.stat().st_size > 0

    before = tmp_path / "before" / "copy.db"
    before.parent.mkdir()
    shutil.copyfile(db_path, before)  # the .db file alone, without -wal and -shm
    assert count_tasks_in(before) < len(ids)  # the rows are still in the log: this copy lacks them

    assert st.checkpoint() is True
    assert wal.stat().st_size == 0

    after = tmp_path / "after" / "copy.db"
    after.parent.mkdir()
    shutil.copyfile(db_path, after)
    conn = sqlite3.connect(after)
    try:
        assert {row[0] for row in conn.execute("SELECT id FROM tasks")} == ids
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    assert not Path(f"{after}-wal").exists() or Path(f"{after}-wal").stat().st_size == 0
    make_task(st, name="later")  # the store goes on after a checkpoint
    assert len(st.find_tasks()) == len(ids) + 1
    closed(st)


def test_checkpoint_of_a_busy_database_neither_waits_nor_raises(healthy_db):
    st = MetadataStore(f"sqlite:///{healthy_db}")
    make_task(st, name="in the log")
    with lock_held(healthy_db, "write"):
        start = time.monotonic()
        assert st.checkpoint() is False
        assert time.monotonic() - start < 3
    assert st.checkpoint() is True
    closed(st)


def test_a_passive_checkpoint_copies_the_log_beside_a_writer_without_waiting(db_path, tmp_path):
    """The background start's: the rows committed so far reach the .db file, and a writer holding its
    lock (the recorder's round) is neither waited for nor held up."""
    st = MetadataStore(f"sqlite:///{db_path}")
    ids = {make_task(st, name=f"t{i}").id for i in range(20)}
    with lock_held(db_path, "write"):
        start = time.monotonic()
        assert st.checkpoint(passive=True) is True
        assert time.monotonic() - start < 1
    copy = tmp_path / "copy" / "autolog.db"
    copy.parent.mkdir()
    shutil.copyfile(db_path, copy)  # the .db file alone
    assert count_tasks_in(copy) == len(ids)
    assert Path(f"{db_path}-wal").stat().st_size > 0  # not emptied: close()'s checkpoint does that
    make_task(st, name="later")
    assert st.checkpoint() is True and Path(f"{db_path}-wal").stat().st_size == 0
    closed(st)


def test_checkpoint_before_the_store_is_used_is_a_no_op(db_path):
    st = MetadataStore(f"sqlite:///{db_path}")
    assert st.checkpoint() is True
    assert not db_path.exists()


# -- corruption: one clear line --------------------------------------------------------------------


def corrupt_middle_pages(path: Path, seed: int = 7) -> int:
    """Overwrite the middle third of the file's pages (never the header page) with random bytes."""
    data = path.read_bytes()
    page_size = int.from_bytes(data[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = len(data) // page_size
    first, last = pages // 3, 2 * pages // 3
    rng = random.Random(seed)
    with open(path, "r+b") as f:
        for page in range(max(first, 1), last):
            f.seek(page * page_size)
            f.write(rng.randbytes(page_size))
    return last - first


def assert_one_clear_line(error: BaseException, path: Path) -> None:
    message = str(error)
    assert isinstance(error, DatabaseCorruptError), f"{type(error).__name__}: {message}"
    assert isinstance(error, AutologError)
    assert "\n" not in message
    for noise in ("SELECT", "INSERT", "UPDATE", "[SQL", "parameters", "sqlalche.me"):
        assert noise not in message
    assert message.startswith(f"Metadata database {path} is corrupted (")
    assert "database disk image is malformed" in message or "file is not a database" in message
    assert f"mv {path} {path}.corrupt" in message
    assert f"sqlite3 {path} .recover" in message


def test_garbage_in_middle_pages_is_reported_in_one_clear_line(db_path):
    st = MetadataStore(f"sqlite:///{db_path}")
    tasks = [make_task(st, name=f"task {i}", run_info={"argv": ["train.py"] * 50, "cwd": "/w" * 100})
             for i in range(300)]
    for task in tasks[::10]:
        st.create_model(task_id=task.id, origin="capture", name="m", project="p", framework="torch",
                        source_path=f"/work/{task.id}/model.pt")
    assert st.checkpoint() is True
    closed(st)
    assert corrupt_middle_pages(db_path) >= 4

    st = MetadataStore(f"sqlite:///{db_path}")
    calls = {
        "find_tasks": st.find_tasks,
        "get_task": lambda: st.get_task(tasks[len(tasks) // 2].id),
        "find_models": st.find_models,
        "create_task": lambda: make_task(st, name="after the damage"),
        "update_task": lambda: st.update_task(tasks[len(tasks) // 2].id, status="completed"),
    }
    failures = {}
    for name, call in calls.items():
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - each is checked below
            failures[name] = exc
    assert "find_tasks" in failures  # it reads every task row: the damaged pages among them
    for error in failures.values():
        assert_one_clear_line(error, db_path)
    closed(st)


def test_a_file_that_is_not_a_database_is_one_clear_line_from_the_store_and_the_preflight(db_path):
    db_path.write_bytes(b"this is not a database\n" * 300)
    with pytest.raises(AutologError) as info:
        MetadataStore(f"sqlite:///{db_path}").find_tasks()
    assert_one_clear_line(info.value, db_path)
    with pytest.raises(AutologError) as info:
        preflight_check(f"sqlite:///{db_path}")
    assert_one_clear_line(info.value, db_path)
    assert "locked" not in str(info.value)
