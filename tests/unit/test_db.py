"""The metadata store on a real SQLite file: WAL, indexes, schema versioning, clear errors, queries."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from autolog.db import MetadataStore, new_id
from autolog.db import schema as s
from autolog.errors import AutologError, NotFoundError, SchemaVersionError


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "meta.db"


@pytest.fixture
def store(db_path: Path) -> MetadataStore:
    st = MetadataStore(f"sqlite:///{db_path}")
    yield st
    if st._engine is not None:
        st._engine.dispose()


def make_task(store: MetadataStore, **overrides):
    values = dict(
        project="p", name="t", task_type="training", status="running", output_uri=None, tags=[],
        run_info={}, parameters={}, comment="",
    )
    values.update(overrides)
    return store.create_task(**values)


def make_model(store: MetadataStore, task_id: str | None, **overrides):
    values = dict(task_id=task_id, origin="api", name="m", project="p", framework=None)
    values.update(overrides)
    return store.create_model(**values)


def raw(db_path: Path, sql: str, *params):
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql, params).fetchall()


# -- the file ------------------------------------------------------------------------------


def test_sqlite_file_is_in_wal_mode(store, db_path):
    make_task(store)
    assert raw(db_path, "PRAGMA journal_mode")[0][0] == "wal"


def test_task_init_creates_a_wal_database_in_autolog_home(autolog_home):
    from autolog import Task

    Task.init(project_name="p", task_name="t").close()
    db = autolog_home / "autolog.db"
    assert db.is_file()
    assert raw(db, "PRAGMA journal_mode")[0][0] == "wal"


EXPECTED_INDEXES = {
    "tasks": {"ix_tasks_project_name_created", "ix_tasks_created"},
    "models": {"ix_models_task_updated", "ix_models_project_name"},
    "snapshots": {"ix_snapshots_digest", "ix_snapshots_status"},
    "model_loads": {"ix_model_loads_task", "ix_model_loads_model"},
}


def test_indexes_and_unique_constraints_exist(store, db_path):
    make_task(store)
    inspector = sa.inspect(sa.create_engine(f"sqlite:///{db_path}"))
    for table, expected in EXPECTED_INDEXES.items():
        names = {ix["name"] for ix in inspector.get_indexes(table)}
        assert expected <= names, (table, names)
    uniques = {
        (table, uc["name"])
        for table in ("snapshots", "artifacts", "model_loads")
        for uc in inspector.get_unique_constraints(table)
    }
    assert ("snapshots", "uq_snapshots_model_seq") in uniques
    assert ("artifacts", "uq_artifacts_task_name") in uniques
    assert ("model_loads", "uq_model_loads_link") in uniques


def test_query_plans_use_the_indexes(store, db_path):
    make_task(store)
    plan = raw(db_path, "EXPLAIN QUERY PLAN SELECT * FROM snapshots WHERE digest = ?", "blake3:" + "x" * 64)
    assert any("ix_snapshots_digest" in row[-1] for row in plan), plan
    # Whether any snapshot is still known by its sha256 (recorded before schema 4): an index probe too.
    plan = raw(db_path, "EXPLAIN QUERY PLAN SELECT digest FROM snapshots WHERE digest >= 'sha256:' "
                        "AND digest < 'sha256;' LIMIT 1")
    assert any("ix_snapshots_digest" in row[-1] for row in plan), plan


def test_sha256_identities_are_noticed_only_when_present(store):
    model = make_model(store, make_task(store).id)
    store.add_snapshot(model.id, status="stored", uri="/a", digest="blake3:" + "1" * 64)
    assert not store.holds_sha256_identities()
    store.add_snapshot(model.id, status="stored", uri="/b", digest="sha256:" + "2" * 64)
    assert store.holds_sha256_identities()


def test_schema_version_is_recorded_once(store, db_path):
    make_task(store)
    assert raw(db_path, "SELECT id, version FROM autolog_schema") == [(1, s.SCHEMA_VERSION)]
    # Reopening an up-to-date database changes nothing and keeps the data.
    again = MetadataStore(f"sqlite:///{db_path}")
    assert len(again.find_tasks()) == 1
    assert raw(db_path, "SELECT id, version FROM autolog_schema") == [(1, s.SCHEMA_VERSION)]
    again.engine.dispose()


def test_newer_schema_version_is_refused_clearly(store, db_path):
    make_task(store)
    store.engine.dispose()
    newer = s.SCHEMA_VERSION + 1
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE autolog_schema SET version = ?", (newer,))
    with pytest.raises(SchemaVersionError) as info:
        MetadataStore(f"sqlite:///{db_path}").find_tasks()
    message = str(info.value)
    assert str(newer) in message and str(s.SCHEMA_VERSION) in message
    assert str(db_path) in message
    assert "upgrade" in message.lower()
    assert isinstance(info.value, AutologError)


def test_task_init_in_a_new_process_refuses_a_newer_database(autolog_home, run_py):
    from autolog import Task

    Task.init(project_name="p", task_name="t").close()
    with sqlite3.connect(autolog_home / "autolog.db") as conn:
        conn.execute("UPDATE autolog_schema SET version = version + 5")
    proc = run_py(
        """
        from autolog import Task
        from autolog.errors import SchemaVersionError
        try:
            Task.init(project_name="p", task_name="t2")
        except SchemaVersionError as exc:
            print("REFUSED:", exc)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "REFUSED:" in proc.stdout
    assert f"schema version {s.SCHEMA_VERSION + 5}" in proc.stdout


CORRUPT = {
    "random bytes": bytes(range(256)) * 40,
    "text file": b"this is not a database\n" * 100,
    "truncated header": b"SQLite format 3\x00" + b"\xff" * 84,
}


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_corrupted_file_raises_autolog_error_naming_it(db_path, content):
    db_path.write_bytes(content)
    with pytest.raises(AutologError) as info:
        MetadataStore(f"sqlite:///{db_path}").find_tasks()
    message = str(info.value)
    assert str(db_path) in message
    assert "corrupt" in message.lower()


def test_task_init_on_a_corrupted_database(autolog_home):
    from autolog import Task

    (autolog_home / "autolog.db").write_bytes(b"garbage" * 1000)
    with pytest.raises(AutologError, match="autolog.db"):
        Task.init(project_name="p", task_name="t")
    assert Task.current_task() is None


def test_unknown_database_driver_is_a_clear_error(tmp_path):
    with pytest.raises(AutologError, match="Cannot open metadata database"):
        MetadataStore("nosuchdialect://host/db").find_tasks()


# -- queries -------------------------------------------------------------------------------


def test_task_by_id_and_by_unique_prefix(store):
    task = make_task(store)
    assert store.get_task(task.id) == task
    assert store.get_task(task.id[:6]).id == task.id
    with pytest.raises(NotFoundError):
        store.get_task(new_id())


def test_ambiguous_prefix_is_not_found(store):
    ids = {make_task(store).id for _ in range(40)}
    shared = next(a[:1] for a in ids for b in ids if a != b and a[:1] == b[:1])
    with pytest.raises(NotFoundError, match="more than one"):
        store.get_task(shared)


def test_like_wildcards_in_a_prefix_are_literal(store):
    make_task(store)
    with pytest.raises(NotFoundError):
        store.get_task("%")
    with pytest.raises(NotFoundError):
        store.get_task("_")


def test_find_tasks_filters_and_orders_newest_first(store):
    a = make_task(store, name="train", tags=["x"], status="completed")
    b = make_task(store, name="train", tags=["x", "y"])
    make_task(store, name="eval", tags=["y"])
    make_task(store, project="other", name="train")
    assert [t.id for t in store.find_tasks(project="p", name="train")] == [b.id, a.id]
    assert [t.id for t in store.find_tasks(project="p", name="train", limit=1)] == [b.id]
    assert [t.id for t in store.find_tasks(project="p", tags=["x"])] == [b.id, a.id]
    assert [t.id for t in store.find_tasks(tags=["x", "y"])] == [b.id]
    assert [t.id for t in store.find_tasks(status="completed")] == [a.id]
    assert len(store.find_tasks()) == 4


def test_snapshots_get_consecutive_seqs_and_bump_the_model(store):
    task = make_task(store)
    model = make_model(store, task.id)
    first = store.add_snapshot(model.id, status="stored", uri="/a", sha256="1" * 64, size=1)
    second = store.add_snapshot(model.id, status="stored", uri="/b", sha256="2" * 64, size=2, iteration=7)
    assert (first.seq, second.seq) == (1, 2)
    assert second.iteration == 7
    assert [x.id for x in store.snapshots_of(model.id)] == [first.id, second.id]
    assert store.get_model(model.id).updated == second.created
    other = make_model(store, task.id, name="other")
    assert store.add_snapshot(other.id, status="stored").seq == 1


def test_a_run_writes_a_snapshot_outcome_only_over_a_pending_row(store):
    """`autolog sync --force` beside a live run (or a sync that took an attached child's run for dead)
    may settle a snapshot first: a failed verdict removed the object at its key, so the run's own
    "stored", written after, must not stand over it; a pending row takes it."""
    task = make_task(store)
    model = make_model(store, task.id)
    settled = store.add_snapshot(model.id, status="pending")
    pending = store.add_snapshot(model.id, status="pending")
    assert store.update_pending_snapshot(settled.id, status="failed", reason="not recoverable (sync)")
    outcome = {"status": "stored", "uri": "/stored", "digest": "blake3:" + "1" * 64, "size": 1}
    store.finish_snapshots([(settled.id, outcome), (pending.id, outcome)])
    assert (store.get_snapshot(settled.id).status, store.get_snapshot(settled.id).uri) == ("failed", None)
    assert store.get_snapshot(pending.id).status == "stored"


def test_concurrent_snapshots_from_threads_never_share_a_seq(store):
    task = make_task(store)
    model = make_model(store, task.id)
    errors: list[BaseException] = []

    def worker():
        try:
            for _ in range(10):
                store.add_snapshot(model.id, status="stored")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [x.seq for x in store.snapshots_of(model.id)] == list(range(1, 81))


def test_put_artifact_replaces_the_same_name(store):
    task = make_task(store)
    common = dict(kind="json", filename="a.json", sha256=None, size=1, preview="")
    store.put_artifact(task.id, "a", uri="/first", **common)
    store.put_artifact(task.id, "b", uri="/b", **common)
    store.put_artifact(task.id, "a", uri="/second", **common)
    arts = store.artifacts_of(task.id)
    assert sorted(a.name for a in arts) == ["a", "b"]
    assert next(a for a in arts if a.name == "a").uri == "/second"


def test_stored_copy_matches_only_inside_the_prefix(store):
    task = make_task(store)
    model = make_model(store, task.id)
    sha = "blake3:" + "a" * 64
    journaled = {"source_stat": {"files": [["/w/model.pt", 1, 1]]}}  # written by autolog, as its rows are
    store.add_snapshot(model.id, status="stored", uri="/data/aXb/p/model.pt", digest=sha, **journaled)
    store.add_snapshot(model.id, status="stored", uri="/data/a_bc/p/model.pt", digest=sha, **journaled)
    store.add_snapshot(model.id, status="failed", uri="/data/a_b/p/failed.pt", digest=sha, **journaled)
    assert store.stored_copy(sha, "/data/a_b") is None  # '_' is not a wildcard; failed is ignored
    assert store.stored_copy(sha, "/data/a_bc").uri == "/data/a_bc/p/model.pt"
    assert store.stored_copy(sha, "/data/a%") is None


def test_stored_copy_is_never_a_file_recorded_in_place(store):
    """A registered file (update_weights(register_uri=)) or a save straight to a URL is the user's to
    overwrite: no later save is deduplicated onto it."""
    model = make_model(store, make_task(store).id)
    sha = "blake3:" + "c" * 64
    store.add_snapshot(model.id, status="stored", uri="/data/run/mine.pt", digest=sha)
    assert store.stored_copy(sha, "/data/run") is None
    assert store.stored_copies([sha], "/data/run") == []


def test_producer_prefers_a_saved_model_over_an_import(store):
    task = make_task(store)
    sha = "blake3:" + "b" * 64
    imported = make_model(store, None, origin="imported", name="weights.bin")
    store.add_snapshot(imported.id, status="local", uri="/w", digest=sha)
    saved = make_model(store, task.id, name="weights.bin")
    snap = store.add_snapshot(saved.id, status="stored", uri="/s", digest=sha)
    assert store.producer_of(sha).id == snap.id


def test_records_round_trip_json_and_unicode(store):
    name = "模型 🚀 nul\x00byte"
    task = make_task(store, name=name, tags=["α", "β"], run_info={"argv": ["x", "--y=é"], "n": 1.5})
    got = store.get_task(task.id)
    assert got.name == name
    assert got.tags == ["α", "β"]
    assert got.run_info == {"argv": ["x", "--y=é"], "n": 1.5}


def test_new_ids_are_32_hex_and_unique():
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_an_sqlite_run_does_not_import_the_postgresql_dialect(tmp_path: Path, child_env):
    """PostgreSQL's index options are set only when a PostgreSQL database is opened: an SQLite
    run's background start does not pay for that dialect's import."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from autolog.db import MetadataStore\n"
        f"MetadataStore('sqlite:///{tmp_path / 'a.db'}').find_tasks()\n"
        "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy.dialects.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], env=child_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    dialects = out.stdout.strip().splitlines()[-1]
    assert "sqlalchemy.dialects.sqlite" in dialects and "postgresql" not in dialects


def test_a_pending_snapshot_is_settled_once(store):
    """A live run's late failure must not overwrite what `autolog sync --force` stored meanwhile."""
    model = make_model(store, make_task(store).id)
    snap = store.add_snapshot(model.id, status="pending")
    assert store.update_pending_snapshot(snap.id, status="stored", uri="/s/1")
    assert not store.update_pending_snapshot(snap.id, status="failed", reason="late")
    assert (store.get_snapshot(snap.id).status, store.get_snapshot(snap.id).uri) == ("stored", "/s/1")


def test_reads_inside_a_transaction_see_its_writes_without_waiting_for_its_lock(db_path, monkeypatch):
    """On SQLite a read opening a second connection of the writing thread waited for that thread's own
    write lock until the busy timeout (shortened here, so that a regression fails in a second)."""
    monkeypatch.setattr("autolog.db.connection.BUSY_TIMEOUT_MS", 1000)
    store = MetadataStore(f"sqlite:///{db_path}")
    task = make_task(store)
    with store.transaction():
        model, created = store.find_or_create_model(task.id, "capture", {"source_path": "/w/m.pt"}, name="m.pt",
                                                     project="p")
        snap = store.add_snapshot(model.id, status="pending")  # reads its row back: get_snapshot
        assert created and snap.model_id == model.id and store.get_model(model.id).name == "m.pt"
    assert [s.id for s in store.snapshots_of(model.id)] == [snap.id]
    store._engine.dispose()


def test_a_rehearsal_runs_its_statements_and_leaves_nothing(store, db_path):
    task = make_task(store, comment="before")
    with store.rehearsal():
        model, created = store.find_or_create_model(task.id, "capture", {"source_path": "/w/m.pt"}, name="m.pt",
                                                     project="p")
        seqs = store.add_snapshots([{"id": new_id(), "model_id": model.id, "status": "pending"}])
        store.update_task(task.id, comment="during")
        assert created and list(seqs.values()) == [1] and store.get_task(task.id).comment == "during"
    assert store.get_task(task.id).comment == "before"
    assert raw(db_path, "SELECT count(*) FROM models") == [(0,)]
    assert raw(db_path, "SELECT count(*) FROM snapshots") == [(0,)]
    make_model(store, task.id)  # the write lock was let go
    with pytest.raises(ValueError, match="inside"):  # an error inside goes on, with everything rolled back
        with store.rehearsal():
            store.update_task(task.id, comment="during")
            raise ValueError("inside")
    assert store.get_task(task.id).comment == "before"


@pytest.mark.parametrize("status", ["running", "completed"])
def test_a_tasks_process_is_alive_only_while_its_pid_names_the_same_process(store, status, monkeypatch):
    """A closed task's process may live on (a notebook) and still store its snapshots; a pid reused by
    another process since (after a crash: its snapshots are sync's to finish) is not it."""
    import os

    from autolog.run_info import host_name, process_started
    from autolog.snapshots import sync
    from autolog.snapshots.sync import process_alive

    me = {"host": host_name(), "pid": os.getpid(), "pid_started": process_started(os.getpid())}
    assert process_alive(make_task(store, status=status, run_info=me))
    reused = dict(me, pid_started=me["pid_started"] - 1)
    assert not process_alive(make_task(store, status=status, run_info=reused))  # a killed run's pid, reused
    unknown = dict(me, pid_started=None)  # recorded before start times were
    assert process_alive(make_task(store, status=status, run_info=unknown)) == (status == "running")
    elsewhere = dict(me, host="another-machine")
    assert process_alive(make_task(store, status=status, run_info=elsewhere)) == (status == "running")
    monkeypatch.setattr(sync, "process_started", lambda pid: None)  # /proc hides another user's process
    assert process_alive(make_task(store, status=status, run_info=me)) == (status == "running")


def test_a_child_forked_during_a_transaction_writes_once_it_is_over(db_path, run_py):
    """SQLite keeps each process's locks in memory shared by its connections: a child forked while a
    thread of the parent held a write transaction inherited that lock as its own, held for good, and
    every write of the child (a DataLoader worker's, a forked child's run) failed "locked" after the
    busy timeout. A fork waits for transactions under way and holds new ones back until it is done."""
    proc = run_py(f"""
        import os, threading, time
        from autolog.db import connection
        db = connection.Database("sqlite:///{db_path}")
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x)")
        inside, leave = threading.Event(), threading.Event()

        def writer():
            with db.write() as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")
                inside.set()
                leave.wait(10)

        thread = threading.Thread(target=writer)
        thread.start()
        inside.wait()
        threading.Timer(0.3, leave.set).start()
        pid = os.fork()
        if pid == 0:
            connection.BUSY_TIMEOUT_MS = 5000  # the child's own connections: the 60 s wait, shortened
            try:
                with db.write() as conn:
                    conn.exec_driver_sql("INSERT INTO t VALUES (2)")
            except Exception as exc:
                print("child:", exc, flush=True)
                os._exit(1)
            os._exit(0)
        thread.join()
        print("child exit", os.waitpid(pid, 0)[1] >> 8)
        with db.read() as conn:
            print("rows", sorted(r[0] for r in conn.exec_driver_sql("SELECT x FROM t")))
    """)
    assert proc.returncode == 0, proc.stderr
    assert "child exit 0" in proc.stdout, proc.stdout
    assert "rows [1, 2]" in proc.stdout


@pytest.mark.parametrize("holder", ["another thread", "the forking thread"])
def test_a_fork_waits_for_a_transaction_at_most_a_moment(db_path, run_py, holder):
    """A transaction held up (another process's lock) or the forking thread's own does not hold the
    fork up for longer than FORK_WAIT_S: DataLoader workers fork at each epoch."""
    proc = run_py(f"""
        import os, threading, time
        from autolog.db import connection
        db = connection.Database("sqlite:///{db_path}")
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x)")

        def fork_timed():
            start = time.monotonic()
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            print("fork took", time.monotonic() - start)

        if {holder!r} == "another thread":
            inside, leave = threading.Event(), threading.Event()

            def writer():
                with db.write():
                    inside.set()
                    leave.wait(30)

            thread = threading.Thread(target=writer)
            thread.start()
            inside.wait()
            fork_timed()
            leave.set()
            thread.join()
        else:
            with db.write():
                fork_timed()
    """)
    assert proc.returncode == 0, proc.stderr
    took = float(proc.stdout.split("fork took")[1])
    from autolog.db.connection import FORK_WAIT_S

    waited = FORK_WAIT_S if holder == "another thread" else 0.0
    assert waited <= took < waited + 5, took
