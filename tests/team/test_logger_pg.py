"""Logger on PostgreSQL: NaN, infinities and a batch of scalars round-trip, single values and reports
too; and `autolog push` carries them from an embedded store into PostgreSQL, once."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import sqlalchemy as sa

from autolog import Task

pytestmark = [pytest.mark.postgres]

NAN, INF = float("nan"), float("inf")


def report_everything(task: Task, n: int) -> None:
    logger = task.get_logger()
    for i in range(n):
        logger.report_scalar("loss", "train", 1.0 / (i + 1), i)
    for i, v in enumerate([NAN, INF, -INF, 0.5]):
        logger.report_scalar("odd", "values", v, i)
    logger.report_single_value("nan", NAN)
    logger.report_single_value("inf", -INF)
    logger.report_single_value("acc", 0.9)
    logger.report_text("on postgres", print_console=False)
    logger.report_table("t", "s", 0, table_plot=[["a", "b"], [1.0, NAN]])
    logger.report_confusion_matrix("cm", "s", [[1, NAN], [INF, 0]])
    logger.report_image("img", "s", 0, image=np.zeros((2, 2), dtype=np.uint8))


def check_read_back(task: Task, n: int) -> None:
    scalars = task.get_reported_scalars()
    assert scalars["loss"]["train"]["x"] == list(range(n))
    assert scalars["loss"]["train"]["y"] == [1.0 / (i + 1) for i in range(n)]
    odd = scalars["odd"]["values"]["y"]
    assert math.isnan(odd[0]) and odd[1:] == [INF, -INF, 0.5]
    assert task.get_last_scalar_metrics()["odd"]["values"] == {"last": 0.5, "min": -INF, "max": INF}
    singles = task.get_reported_single_values()
    assert math.isnan(singles["nan"]) and singles["inf"] == -INF and singles["acc"] == 0.9
    assert task.get_reported_console_output() == ["on postgres"]
    plots = {p["metric"]: json.loads(p["plot_str"]) for p in task.get_reported_plots()}
    assert plots["t"]["data"][0]["cells"]["values"] == [[1.0], ["NaN"]]
    assert plots["cm"]["data"][0]["z"] == [[1.0, None], [None, 0.0]]  # not JSON numbers: gaps
    [image] = task.get_debug_samples("img", "s")
    assert image["sha256"] and image["url"]


def stored_values(url: str, task_id: str) -> list:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT value FROM scalars WHERE task_id = :t AND title = 'odd' "
                                             "ORDER BY iteration"), {"t": task_id}).scalars())
    finally:
        engine.dispose()


def test_scalars_single_values_and_reports_round_trip_on_postgres(pg_url, monkeypatch):
    monkeypatch.setenv("AUTOLOG_DB_URL", pg_url)
    task = Task.init(project_name="pg", task_name="logger", auto_connect_frameworks=False)
    report_everything(task, 12_000)  # more than two batches of the writer
    check_read_back(task, 12_000)  # from the running task (its buffer written first)
    task.close()
    check_read_back(Task.get_task(task_id=task.id), 12_000)
    assert stored_values(pg_url, task.id) == [None, INF, -INF, 0.5]  # NaN as NULL, as on SQLite


def test_push_carries_reports_into_postgres_once(pg_url, tmp_path, child_env, monkeypatch):
    task = Task.init(project_name="pg", task_name="pushed", auto_connect_frameworks=False)
    report_everything(task, 100)
    task.close()
    storage = tmp_path / "team-storage"

    def push() -> dict:
        proc = subprocess.run([sys.executable, "-m", "autolog.cli", "push", "--to", pg_url, "--storage", str(storage),
                               "--json"], env=child_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    first = push()
    assert (first["scalars"]["new"], first["single_values"]["new"], first["reports"]["new"]) == (104, 3, 4)
    assert first["objects"]["copied"] == 1
    again = push()
    assert (again["scalars"], again["reports"]["new"], again["objects"]["copied"]) == (
        {"new": 0, "updated": 0, "existing": 104}, 0, 0)
    monkeypatch.setenv("AUTOLOG_DB_URL", pg_url)
    pushed = Task.get_task(task_id=task.id)
    check_read_back(pushed, 100)
    [image] = pushed.get_debug_samples("img", "s")
    assert image["url"].startswith(str(storage) + "/")


def test_a_models_reports_and_single_values_are_kept_apart_from_the_tasks_on_postgres(pg_url, monkeypatch):
    """The single values' two partial unique indexes are the upserts' conflict targets on PostgreSQL too."""
    from autolog import OutputModel

    monkeypatch.setenv("AUTOLOG_DB_URL", pg_url)
    task = Task.init(project_name="pg", task_name="model reports", auto_connect_frameworks=False)
    model = OutputModel(task=task)
    for value in (0.5, 0.75):  # each reported twice, in separate batches: the second replaces the first
        task.get_logger().report_single_value("accuracy", value)
        model.report_single_value("accuracy", value + 0.1)
        task.get_logger().flush()
    model.report_scalar("eval", "loss", NAN, 0)
    model.report_confusion_matrix("cm", "s", [[1, 0], [0, 1]])
    task.close()
    assert task.get_reported_single_values() == {"accuracy": 0.75}
    assert model.get_reported_single_values() == {"accuracy": 0.85}
    assert math.isnan(model.get_reported_scalars()["eval"]["loss"]["y"][0]) and task.get_reported_scalars() == {}
    assert [p["metric"] for p in model.get_reported_plots()] == ["cm"] and task.get_reported_plots() == []
