"""Schema migrations on a real PostgreSQL server: a database with the frozen version-1 tables and the
rows of a real run is upgraded in place by today's code, once, however many processes open it."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from autolog import Model, Task
from autolog.db import migrations
from autolog.db.store import MetadataStore
from autolog.db.version import SCHEMA_VERSION
from autolog.errors import AutologError, SchemaVersionError
from fixtures import v1_run
from fixtures.v1_run import (
    build_v1_database, dump_v1_columns, inspect, schema_version, set_schema_version, start_together,
    upgrade_while_openers_wait,
)

pytestmark = [pytest.mark.postgres]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> v1_run.RealRun:
    return v1_run.record_real_run(tmp_path_factory.mktemp("v1-run"))


@pytest.fixture
def v1_pg(real_run, pg_url, monkeypatch) -> str:
    """This test's PostgreSQL database as autolog version 1 left it, and AUTOLOG_DB_URL pointing at it."""
    counts = build_v1_database(real_run, pg_url)
    assert counts["snapshots"] == 5 and counts["model_loads"] == 2
    monkeypatch.setenv("AUTOLOG_DB_URL", pg_url)
    return pg_url


def test_v1_database_is_upgraded_in_place_and_every_row_kept(v1_pg, real_run):
    before = dump_v1_columns(v1_pg)
    assert "stored_at" not in inspect(v1_pg)["snapshots"][0]

    train = Task.get_task(task_id=real_run.ids["train"])

    assert schema_version(v1_pg) == SCHEMA_VERSION == 4
    assert {"scalars", "single_values", "reports"} <= set(inspect(v1_pg))  # schema 3: Logger's tables
    assert train.get_parameters_as_dict(cast=True)["General"] == {"lr": 0.1, "epochs": 2}
    assert dump_v1_columns(v1_pg) == before
    tables = inspect(v1_pg)
    assert tables["snapshots"][0]["stored_at"] == ("DOUBLE PRECISION", True)
    columns, options = tables["models"][1]["ix_models_source_path"]
    assert columns == ("source_path",) and options.get("postgresql_using") == "hash"
    assert train.artifacts["config"].get() == {"lr": 0.1, "layers": [3, 2], "name": "résumé ✨"}
    ckpt = train.models["output"]["ckpt.pt"]
    assert [(s.seq, s.status, s.stored_at) for s in ckpt.snapshots] == [(1, "stored", None), (2, "stored", None)]
    for snap in ckpt.snapshots:  # schema 4: the old sha256 became the digest ('sha256:' || sha256 on PostgreSQL)
        assert snap.digest == f"sha256:{snap.sha256}"
        assert hashlib.sha256(Path(ckpt.get_local_copy(snap.seq)).read_bytes()).hexdigest() == snap.sha256
    assert ckpt.loaded_by == [real_run.ids["eval"]]
    assert Model(real_run.ids["imported"]).origin == "imported"


def test_a_run_on_the_upgraded_database_records_stored_at(v1_pg, real_run, tmp_path):
    import torch

    started = time.time()
    task = Task.init(project_name="legacy", task_name="finetune", output_uri=str(tmp_path / "store"))
    state = torch.load(real_run.work / "ckpt.pt")
    torch.save(state, tmp_path / "tuned.pt")
    task.close()
    [tuned] = task.models["output"]
    [snap] = tuned.snapshots
    assert snap.status == "stored" and started <= snap.created <= snap.stored_at <= time.time()
    [source] = task.models["input"]
    assert source.name == "ckpt.pt" and source.task == real_run.ids["train"]


def test_the_upgraded_schema_is_the_one_a_new_database_gets(v1_pg, pg_server_url):
    import services

    MetadataStore(v1_pg).find_tasks()
    name = "fresh_" + v1_pg.rsplit("/", 1)[1]
    fresh = services.create_database(pg_server_url, name)
    try:
        MetadataStore(fresh).find_tasks()
        assert inspect(v1_pg) == inspect(fresh)
        indexes = {ix: options for _, table_indexes in inspect(fresh).values() for ix, (_, options) in table_indexes.items()}
        assert indexes["ix_models_source_path"].get("postgresql_using") == "hash"
        assert "model_id IS NULL" in indexes["uq_single_values_task_name"].get("postgresql_where", "")
        assert "model_id IS NOT NULL" in indexes["ix_reports_model"].get("postgresql_where", "")
        assert schema_version(fresh) == SCHEMA_VERSION
    finally:
        services.drop_database(pg_server_url, name)  # WITH (FORCE): pooled connections do not block it


def test_upgrading_twice_is_a_no_op(v1_pg):
    MetadataStore(v1_pg).find_tasks()
    tables, rows = inspect(v1_pg), dump_v1_columns(v1_pg)
    again = MetadataStore(v1_pg)
    assert len(again.find_tasks()) == 2
    again.engine.dispose()
    assert inspect(v1_pg) == tables and dump_v1_columns(v1_pg) == rows
    assert schema_version(v1_pg) == SCHEMA_VERSION


@pytest.mark.parametrize("start", ["v1", "new"])
def test_several_processes_open_one_database_at_once(start, real_run, pg_url, monkeypatch, tmp_path, child_env):
    if start == "v1":
        build_v1_database(real_run, pg_url)
    monkeypatch.setenv("AUTOLOG_DB_URL", pg_url)
    results = start_together(4, tmp_path, child_env())
    for i, proc in enumerate(results):
        assert proc.returncode == 0, proc.stderr
        assert f"OK w{i}" in proc.stdout
    assert schema_version(pg_url) == SCHEMA_VERSION
    assert sorted(t.name for t in Task.get_tasks(project_name="concurrent")) == ["w0", "w1", "w2", "w3"]
    assert len(Task.get_tasks()) == (6 if start == "v1" else 4)


def test_openers_that_waited_for_an_upgrade_do_not_repeat_it(v1_pg, tmp_path, child_env):
    """Children read version 1, then wait on the advisory lock this test holds while it runs the step;
    they must re-read the version under the lock and find nothing left to do."""
    for proc in upgrade_while_openers_wait(v1_pg, tmp_path, child_env(), n=3):
        assert proc.returncode == 0, proc.stderr
        assert "tasks: 2" in proc.stdout
    assert schema_version(v1_pg) == SCHEMA_VERSION


def test_a_newer_database_is_refused_clearly_and_left_untouched(v1_pg, real_run):
    set_schema_version(v1_pg, 99)
    rows, tables = dump_v1_columns(v1_pg), inspect(v1_pg)
    with pytest.raises(SchemaVersionError) as info:
        MetadataStore(v1_pg).find_tasks()
    message = str(info.value)
    assert "schema version 99" in message and f"only up to {SCHEMA_VERSION}" in message
    assert "pip install -U autolog" in message
    password = sa.engine.make_url(v1_pg).password
    assert password and password not in message  # the URL is shown redacted
    with pytest.raises(SchemaVersionError, match="99"):
        Task.get_task(task_id=real_run.ids["train"])
    assert schema_version(v1_pg) == 99
    assert dump_v1_columns(v1_pg) == rows and inspect(v1_pg) == tables


def test_a_failing_step_leaves_the_database_at_the_previous_version(v1_pg, monkeypatch):
    real_step = migrations.STEPS[0]

    def half_done(op):
        real_step(op)
        op.execute("UPDATE no_such_table SET x = 1")

    monkeypatch.setattr(migrations, "STEPS", [half_done])
    before, tables = dump_v1_columns(v1_pg), inspect(v1_pg)
    with pytest.raises(AutologError, match="from schema version 1 to 2 failed"):
        MetadataStore(v1_pg).find_tasks()
    assert schema_version(v1_pg) == 1
    assert inspect(v1_pg) == tables and dump_v1_columns(v1_pg) == before
