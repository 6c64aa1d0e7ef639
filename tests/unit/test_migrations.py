"""Schema migrations on SQLite: a database written with the frozen version-1 schema (fixtures/schema_v1.py)
and rows of a real run is opened by today's code and upgraded in place, once, by one process."""
from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from autolog import Model, Task
from autolog.db import migrations
from autolog.db.store import MetadataStore
from autolog.db.version import SCHEMA_VERSION
from autolog.errors import AutologError, SchemaVersionError
from autolog.storage.hashing import file_digest
from fixtures import v1_run
from fixtures.v1_run import (
    build_v1_database, dump_v1_columns, inspect, schema_version, set_schema_version, start_together,
    upgrade_while_openers_wait,
)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> v1_run.RealRun:
    return v1_run.record_real_run(tmp_path_factory.mktemp("v1-run"))


@pytest.fixture
def v1_url(real_run, autolog_home) -> str:
    """The default database of this test's AUTOLOG_HOME, as autolog version 1 left it."""
    url = f"sqlite:///{autolog_home / 'autolog.db'}"
    counts = build_v1_database(real_run, url)
    assert counts == {"file_hashes": 3, "tasks": 2, "artifacts": 2, "models": 4, "snapshots": 5, "model_loads": 2}
    return url


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- upgrading ----------------------------------------------------------------------------


def test_v1_database_is_upgraded_in_place_and_every_row_kept(v1_url, real_run):
    before = dump_v1_columns(v1_url)
    assert "stored_at" not in inspect(v1_url)["snapshots"][0]

    train = Task.get_task(task_id=real_run.ids["train"])  # the first use opens, and upgrades, the store

    assert schema_version(v1_url) == SCHEMA_VERSION == 4
    assert {"scalars", "single_values", "reports"} <= set(inspect(v1_url))  # schema 3: Logger's tables
    assert train.get_parameters_as_dict(cast=True)["General"] == {"lr": 0.1, "epochs": 2}
    assert dump_v1_columns(v1_url) == before
    tables = inspect(v1_url)
    assert tables["snapshots"][0]["stored_at"][1] is True  # nullable
    assert tables["models"][1]["ix_models_source_path"][0] == ("source_path",)
    # Everything the run recorded reads back through the API, hash-verified.
    assert (train.name, train.status, train.get_parameters(cast=True)) == ("train", "completed", {"General/lr": 0.1, "General/epochs": 2})
    assert train.artifacts["config"].get() == {"lr": 0.1, "layers": [3, 2], "name": "résumé ✨"}
    assert Path(train.artifacts["metrics"].get_local_copy()).read_text() == "epoch,loss\n1,0.5\n2,0.25\n"
    output = train.models["output"]
    assert sorted(m.name for m in output) == ["ckpt.pt", "final", "final.pt"]  # captured + explicit
    ckpt = output["ckpt.pt"]
    assert [(s.seq, s.status, s.stored_at) for s in ckpt.snapshots] == [(1, "stored", None), (2, "stored", None)]
    for snap in ckpt.snapshots:  # schema 4: the old sha256 became the snapshot's digest
        assert snap.digest == f"sha256:{snap.sha256}"
        assert hashlib.sha256(Path(ckpt.get_local_copy(snap.seq)).read_bytes()).hexdigest() == snap.sha256
        assert ckpt.sha256(snap.seq) == snap.sha256  # known already: not computed again
    assert [load.digest for load in MetadataStore(v1_url).loads_by_task(real_run.ids["eval"])] == [
        f"sha256:{load.sha256}" for load in MetadataStore(v1_url).loads_by_task(real_run.ids["eval"])]
    with sa.create_engine(v1_url).connect() as conn:  # the stat cache started over (it is only a cache)
        assert conn.execute(sa.text("SELECT count(*) FROM file_hashes")).scalar() == 0
    assert Path(output["final"].get_local_copy()).read_bytes() == (real_run.work / "final.pt").read_bytes()
    evaluate = Task.get_task(task_id=real_run.ids["eval"])
    assert {m.name for m in evaluate.models["input"]} == {"ckpt.pt", "pretrained"}
    assert ckpt.loaded_by == [real_run.ids["eval"]]
    assert Model(real_run.ids["imported"]).origin == "imported"


def test_a_run_on_the_upgraded_database_records_stored_at_and_links_old_snapshots(v1_url, real_run, run_py, tmp_path):
    started = time.time()
    proc = run_py(
        f"""
        import torch
        from autolog import Task
        task = Task.init(project_name="legacy", task_name="finetune", output_uri={str(tmp_path / 'store')!r})
        state = torch.load({str(real_run.work / 'ckpt.pt')!r})
        torch.save(state, {str(tmp_path / 'tuned.pt')!r})
        task.close()
        print(task.id)
        """
    )
    assert proc.returncode == 0, proc.stderr
    task = Task.get_task(task_id=proc.stdout.split()[-1])
    [tuned] = task.models["output"]
    [snap] = tuned.snapshots
    assert snap.status == "stored" and started <= snap.stored_at <= time.time()
    assert snap.created <= snap.stored_at
    # The load links to the version-1 snapshot of that path (a lookup through the new index).
    [source] = task.models["input"]
    assert source.name == "ckpt.pt" and source.task == real_run.ids["train"]
    assert all(s.stored_at is None for s in source.snapshots)


def test_a_snapshot_a_killed_v1_run_left_pending_is_finished_by_sync_after_the_upgrade(v1_url, tmp_path):
    """The journal survives the upgrade: a version-1 run killed before its upload left a `pending` row."""
    from autolog.context import default_context
    from autolog.db import new_id
    from autolog.snapshots import sync as journal
    from autolog.run_info import host_name
    from fixtures import schema_v1

    weights = tmp_path / "killed.pt"
    weights.write_bytes(b"saved just before the kill" * 10)
    st = weights.stat()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    task_id, model_id, snap_id, now = new_id(), new_id(), new_id(), time.time()
    engine = sa.create_engine(v1_url)
    with engine.begin() as conn:
        conn.execute(schema_v1.tasks.insert().values(
            id=task_id, project="legacy", name="killed", task_type="training", status="running",
            output_uri=str(tmp_path / "out"), tags=[], created=now, comment="", parameters={},
            run_info={"host": host_name(), "pid": int(dead.stdout)},
        ))
        conn.execute(schema_v1.models.insert().values(
            id=model_id, task_id=task_id, origin="capture", name="killed.pt", project="legacy",
            framework="PyTorch", source_path=str(weights), tags=[], comment="", meta={}, created=now, updated=now,
        ))
        conn.execute(schema_v1.snapshots.insert().values(
            id=snap_id, model_id=model_id, seq=1, status="pending", entry="", files=[], created=now,
            source_path=str(weights), source_stat={"files": [[str(weights), st.st_size, st.st_mtime_ns]]},
        ))
    engine.dispose()

    report = journal.sync(default_context())  # opens, so upgrades, the store first

    assert [s.id for s in report.stored] == [snap_id]
    snap = MetadataStore(v1_url).get_snapshot(snap_id)
    assert snap.status == "stored" and snap.stored_at is not None and snap.stored_at >= now
    assert Path(snap.uri).read_bytes() == weights.read_bytes()
    assert snap.digest == file_digest(weights) and snap.digest.startswith("blake3:")


def test_the_upgraded_schema_is_the_one_a_new_database_gets(v1_url, tmp_path):
    MetadataStore(v1_url).find_tasks()
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    MetadataStore(fresh).find_tasks()
    assert inspect(v1_url) == inspect(fresh)
    assert schema_version(fresh) == SCHEMA_VERSION
    assert len(migrations.STEPS) == SCHEMA_VERSION - 1


def test_upgrading_twice_is_a_no_op(v1_url, run_py):
    probe = f"""
        import sys
        from autolog.db.store import MetadataStore
        assert len(MetadataStore({v1_url!r}).find_tasks()) == 2
        print("alembic imported:", "alembic" in sys.modules)
    """
    first = run_py(probe)
    assert first.returncode == 0, first.stderr
    assert "alembic imported: True" in first.stdout  # it did run the step
    db = v1_url[len("sqlite:///"):]
    with sqlite3.connect(db) as conn:
        schema_sql = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        rows = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for (_, t, _) in schema_sql if _ == "table"}
    second = run_py(probe)
    assert second.returncode == 0, second.stderr
    assert "alembic imported: False" in second.stdout  # up to date: no step, no alembic import
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == schema_sql
        assert {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in rows} == rows
    assert schema_version(v1_url) == SCHEMA_VERSION


def test_a_new_database_is_created_at_the_latest_version_without_alembic(autolog_home, run_py):
    proc = run_py(
        """
        import sys
        from autolog import Task
        Task.init(project_name="p", task_name="t").close()
        print("alembic imported:", "alembic" in sys.modules)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "alembic imported: False" in proc.stdout
    url = f"sqlite:///{autolog_home / 'autolog.db'}"
    assert schema_version(url) == SCHEMA_VERSION
    assert "stored_at" in inspect(url)["snapshots"][0]


@pytest.mark.parametrize("start", ["v1", "new"])
def test_several_processes_open_one_database_at_once(start, real_run, autolog_home, tmp_path, child_env):
    url = f"sqlite:///{autolog_home / 'autolog.db'}"
    before = None
    if start == "v1":
        build_v1_database(real_run, url)
        before = dump_v1_columns(url)
    results = start_together(4, tmp_path, child_env())
    for i, proc in enumerate(results):
        assert proc.returncode == 0, proc.stderr
        assert f"OK w{i}" in proc.stdout
    assert schema_version(url) == SCHEMA_VERSION
    names = sorted(t.name for t in Task.get_tasks(project_name="concurrent"))
    assert names == ["w0", "w1", "w2", "w3"]
    if before is not None:
        after = dump_v1_columns(url)
        for table, rows in before.items():
            assert set(rows) <= set(after[table]), table


def test_openers_that_waited_for_an_upgrade_do_not_repeat_it(v1_url, tmp_path, child_env):
    """Children read version 1, then wait for the write lock this test holds while it runs the step;
    they must re-read the version under the lock and find nothing left to do."""
    for proc in upgrade_while_openers_wait(v1_url, tmp_path, child_env(), n=3):
        assert proc.returncode == 0, proc.stderr
        assert "tasks: 2" in proc.stdout
    assert schema_version(v1_url) == SCHEMA_VERSION


# -- refusing ----------------------------------------------------------------------------


def test_a_newer_database_is_refused_clearly_and_left_untouched(v1_url, real_run):
    set_schema_version(v1_url, 99)
    db = Path(v1_url[len("sqlite:///"):])
    rows, digest, tables = dump_v1_columns(v1_url), file_sha256(db), inspect(v1_url)

    with pytest.raises(SchemaVersionError) as info:
        MetadataStore(v1_url).find_tasks()
    message = str(info.value)
    assert "schema version 99" in message and f"only up to {SCHEMA_VERSION}" in message
    assert str(db) in message and "pip install -U autolog" in message
    with pytest.raises(SchemaVersionError, match="99"):
        Task.init(project_name="legacy", task_name="new")  # the stdlib preflight, before any thread
    with pytest.raises(SchemaVersionError, match="99"):
        Task.get_task(task_id=real_run.ids["train"])
    assert Task.current_task() is None

    assert schema_version(v1_url) == 99
    assert dump_v1_columns(v1_url) == rows
    assert inspect(v1_url) == tables  # no stored_at, no new index
    assert file_sha256(db) == digest


def test_a_failing_step_leaves_the_database_at_the_previous_version(v1_url, monkeypatch):
    v2_step, v3_step, v4_step = migrations.STEPS

    def half_done(op):
        v4_step(op)  # the columns are added, the stat cache dropped and created again, then the step fails
        op.execute("UPDATE no_such_table SET x = 1")

    monkeypatch.setattr(migrations, "STEPS", [v2_step, v3_step, half_done])
    with pytest.raises(AutologError) as info:
        MetadataStore(v1_url).find_tasks()  # steps 2 and 3 complete, step 4 fails
    message = str(info.value)
    assert "from schema version 3 to 4 failed" in message and "no_such_table" in message
    assert "left at version 3" in message
    assert schema_version(v1_url) == 3
    tables = inspect(v1_url)
    assert "digest" not in tables["snapshots"][0] and "digest" not in tables["model_loads"][0]
    assert "sha256" in tables["file_hashes"][0] and "ix_snapshots_sha256" in tables["snapshots"][1]
    before = dump_v1_columns(v1_url)

    monkeypatch.setattr(migrations, "STEPS", [v2_step, v3_step, v4_step])  # the fixed autolog upgrades it
    assert len(MetadataStore(v1_url).find_tasks()) == 2
    assert schema_version(v1_url) == 4
    assert dump_v1_columns(v1_url) == before
